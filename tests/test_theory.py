"""Tests for sim.theory: the closed-form / exact ground truth from validation.md."""

import heapq
import math

import numpy as np
import pytest
from scipy import stats

from sim import theory as th


# --------------------------------------------------------------------------- M/M/c
def test_mmc_worked_example():
    # validation.md: λ=1.5, μ=1, c=2 -> P(wait)=4.5/7, Wq=9/7, W=16/7.
    assert th.mmc_p_wait(1.5, 1.0, 2) == pytest.approx(4.5 / 7, rel=1e-12)
    assert th.mmc_p_wait(1.5, 1.0, 2) == pytest.approx(0.642857, abs=1e-6)
    assert th.mmc_wq(1.5, 1.0, 2) == pytest.approx(1.285714, abs=1e-6)
    assert th.mmc_w(1.5, 1.0, 2) == pytest.approx(2.285714, abs=1e-6)


@pytest.mark.parametrize("a", [0.01, 0.3, 0.5, 0.9, 0.999])
def test_erlang_c_single_server_is_rho(a):
    assert th.erlang_c(1, a) == pytest.approx(a, rel=1e-12)


@pytest.mark.parametrize("c, a", [(2, 1.5), (5, 3.7), (10, 9.5), (30, 20.0)])
def test_erlang_c_matches_textbook_formula(c, a):
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    direct = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    assert th.erlang_c(c, a) == pytest.approx(direct, rel=1e-10)


def test_erlang_c_large_c_is_stable():
    # a**c / c! would overflow a float here; the Erlang B recursion must not.
    p = th.erlang_c(2000, 1950.0)
    assert 0.0 < p < 1.0 and math.isfinite(p)
    assert th.erlang_c(3, 0.0) == 0.0


# --------------------------------------------------------------------------- M/D/c
@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8, 0.9, 0.95])
@pytest.mark.parametrize("D", [1.0, 2.5])
def test_md1_exact_equals_pollaczek_khinchine(rho, D):
    lam = rho / D
    pk = rho * D / (2 * (1 - rho))
    assert th.mdc_wq_exact(lam, D, 1) == pytest.approx(pk, rel=1e-9, abs=1e-12)
    assert th.mdc_p_wait_exact(lam, D, 1) == pytest.approx(rho, rel=1e-9)


def test_mdc_scales_with_D():
    # Time-scale invariance: Wq(λ, D, c) = D · Wq(λD, 1, c).
    assert th.mdc_wq_exact(0.7, 3.0, 3) == pytest.approx(3.0 * th.mdc_wq_exact(2.1, 1.0, 3), rel=1e-9)


GRID = [(c, rho) for c in (2, 4, 8) for rho in (0.5, 0.7, 0.9)]


@pytest.mark.parametrize("c, rho", GRID)
def test_mdc_exact_below_mmc_and_cosmetatos_close(c, rho):
    lam, D = rho * c, 1.0
    exact = th.mdc_wq_exact(lam, D, c)
    mmc = th.mmc_wq(lam, 1.0 / D, c)
    # Deterministic service halves the service variability, so waits are shorter ...
    assert 0.5 * mmc < exact < mmc
    # ... and Cosmetatos tracks the exact value (worst observed on this grid: 0.76 %,
    # at c=8, ρ=0.5).
    assert th.cosmetatos_mdc_wq(lam, D, c) == pytest.approx(exact, rel=0.015)
    # M/D/c waits less often than M/M/c too.
    assert th.mdc_p_wait_exact(lam, D, c) < th.mmc_p_wait(lam, 1.0 / D, c)


def _simulate_mdc_waits(lam, D, c, n, seed):
    """Independent Monte-Carlo of FCFS M/D/c (Kiefer–Wolfowitz workload recursion).

    A heap holds the c servers' next-free instants; each arrival takes the earliest-free
    server, waits max(0, free − t) and makes that server free again D after it starts.
    """
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / lam, n)).tolist()
    free = [0.0] * c
    waits = np.empty(n)
    for i, t in enumerate(arrivals):
        start = max(free[0], t)
        heapq.heapreplace(free, start + D)
        waits[i] = start - t
    return waits


@pytest.mark.parametrize("c, rho, seed", [(2, 0.5, 11), (4, 0.5, 12), (2, 0.7, 13)])
def test_mdc_exact_matches_monte_carlo(c, rho, seed):
    # Fixed seed, 600k customers: the run-to-run s.d. of the mean is ≈ 0.5–0.9 % here, so
    # the 3 % tolerance is a > 3σ check of the exact solver, not a fit to this seed.
    lam, D = rho * c, 1.0
    waits = _simulate_mdc_waits(lam, D, c, 600_000, seed)[5_000:]   # drop warm-up
    assert waits.mean() == pytest.approx(th.mdc_wq_exact(lam, D, c), rel=0.03)
    assert np.mean(waits > 0) == pytest.approx(th.mdc_p_wait_exact(lam, D, c), abs=0.01)
    # Batch means over the long run give a CI that should cover the exact value.
    assert th.covers(th.batch_means(waits, 20), th.mdc_wq_exact(lam, D, c), level=0.99)


def test_mdc_truncation_cap_raises():
    with pytest.raises(RuntimeError):
        th.mdc_wq_exact(0.95, 1.0, 1, n_max=50)


# --------------------------------------------------------------------------- DAG bounds
def test_dag_bounds_hand_example():
    # Tasks A=3 -> B=2 (a chain), C=4 and D=1 independent: Wk = 10, CP = A+B = 5.
    wk, cp = 10.0, 5.0
    assert th.dag_lower_bound(wk, cp, 1) == 10.0 and th.graham_bound(wk, cp, 1) == 10.0
    assert th.dag_lower_bound(wk, cp, 2) == 5.0            # max(10/2, 5)
    assert th.graham_bound(wk, cp, 2) == 7.5                # 10/2 + (1/2)·5
    assert th.dag_lower_bound(wk, cp, 3) == 5.0             # max(3.33, 5)
    assert th.graham_bound(wk, cp, 3) == pytest.approx(10 / 3 + 2 / 3 * 5)
    # Unlimited slots: both bounds tend to CP.
    assert th.graham_bound(wk, cp, 10**9) == pytest.approx(cp, rel=1e-6)


# --------------------------------------------------------------------------- statistics
def test_mean_ci_hand_values():
    mean, hw = th.mean_ci([1, 2, 3, 4, 5])
    # t_{0.975, 4} = 2.776445, s = sqrt(2.5).
    assert mean == 3.0
    assert hw == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert th.covers([1, 2, 3, 4, 5], 4.9) and not th.covers([1, 2, 3, 4, 5], 5.0)


def test_mean_ci_on_normal_sample():
    rng = np.random.default_rng(7)
    x = rng.normal(10.0, 2.0, size=50)
    mean, hw = th.mean_ci(x, level=0.9)
    assert mean == pytest.approx(x.mean())
    assert hw == pytest.approx(stats.t.ppf(0.95, 49) * x.std(ddof=1) / math.sqrt(50))
    # Coverage: over many small samples the 95 % interval covers the true mean ~95 % of
    # the time (binomial s.d. ≈ 0.5 % over 2000 trials).
    hits = [th.covers(rng.normal(10.0, 2.0, size=6), 10.0) for _ in range(2000)]
    assert np.mean(hits) == pytest.approx(0.95, abs=0.02)


def test_batch_means():
    # 10 values, 3 batches: the leading leftover value is dropped.
    assert th.batch_means(np.arange(1, 11), 3) == [3.0, 6.0, 9.0]
    assert th.batch_means([1.0, 3.0], 1) == [2.0]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call", [
    lambda: th.erlang_c(0, 0.5),
    lambda: th.erlang_c(2.5, 1.0),
    lambda: th.erlang_c(True, 0.5),
    lambda: th.erlang_c(2, 2.0),              # ρ = 1
    lambda: th.erlang_c(2, -0.1),
    lambda: th.mmc_wq(2.0, 1.0, 2),           # ρ = 1
    lambda: th.mmc_wq(-1.0, 1.0, 2),
    lambda: th.mmc_w(1.0, 0.0, 2),
    lambda: th.mdc_wq_exact(1.0, 1.0, 1),     # ρ = 1
    lambda: th.mdc_wq_exact(0.5, 0.0, 1),
    lambda: th.mdc_wq_exact(0.5, 1.0, 0),
    lambda: th.mdc_wq_exact(0.5, 1.0, 1, tol=0.0),
    lambda: th.mdc_p_wait_exact(3.0, 1.0, 2),
    lambda: th.cosmetatos_mdc_wq(2.0, 1.0, 2),
    lambda: th.dag_lower_bound(10.0, 5.0, 0),
    lambda: th.graham_bound(4.0, 5.0, 2),     # CP > total work
    lambda: th.graham_bound(-1.0, 0.0, 2),
    lambda: th.mean_ci([1.0]),
    lambda: th.mean_ci([1.0, 2.0], level=1.5),
    lambda: th.covers([], 0.0),
    lambda: th.batch_means([1.0, 2.0], 0),
    lambda: th.batch_means([1.0, 2.0], 3),
])
def test_invalid_inputs_raise(call):
    with pytest.raises(ValueError):
        call()


def test_critical_path_is_the_longest_weighted_path():
    dur = {"a": 2.0, "b": 5.0, "c": 1.0, "d": 3.0}
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert th.critical_path(dur, edges) == 10.0            # a, b, d
    assert th.critical_path({"x": 4.0, "y": 1.0}, []) == 4.0
    with pytest.raises(ValueError, match="cycle"):
        th.critical_path({"a": 1.0, "b": 1.0}, [("a", "b"), ("b", "a")])


def test_mmc_relaxation_time():
    # 1 / (c mu (1 - sqrt(rho))^2) with mu = 1/60 s, c = 2, rho = 0.81: 60 / (2 * 0.01) = 3000 s
    assert th.mmc_relaxation_time(2, 0.81, 60.0) == pytest.approx(3000.0)
    with pytest.raises(ValueError):
        th.mmc_relaxation_time(2, 1.0, 60.0)
