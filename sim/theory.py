"""Closed-form and numerically exact queueing results used to validate the simulator.

Every formula here is taken from ``validation.md`` (``shared/reference/validation.md``,
also carried in the repo as ``docs/reference/validation.md``). With all overheads set to
zero the simulator must reproduce these values; this module is the "ground truth" side of
that comparison, so it is pure Python + numpy/scipy and independent of the simulator code.

Notation (validation.md): arrival rate ``lam`` (Poisson), mean service time ``1/mu`` (or
constant ``D``), ``c`` servers/slots, offered load ``a = lam/mu``, utilisation
``rho = a/c < 1``.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Sequence

import numpy as np
from scipy import linalg, optimize, stats

__all__ = [
    "erlang_c", "mmc_p_wait", "mmc_wq", "mmc_w",
    "mdc_wq_exact", "mdc_p_wait_exact", "cosmetatos_mdc_wq",
    "dag_lower_bound", "graham_bound",
    "mean_ci", "covers", "batch_means",
]


# --------------------------------------------------------------------------- validation
def _check_int(name: str, x) -> int:
    if isinstance(x, bool) or not isinstance(x, Integral) or x < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {x!r}")
    return int(x)


def _check_positive(name: str, x: float) -> float:
    x = float(x)
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"{name} must be a finite positive number, got {x!r}")
    return x


def _check_stable(rho: float) -> None:
    if rho >= 1:
        raise ValueError(f"unstable system: utilisation rho={rho:.6g} >= 1")


# --------------------------------------------------------------------------- M/M/c
def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c with offered load ``a``.

    validation.md: C(c, a) = [aᶜ/c!·1/(1−ρ)] / [Σ_{k<c} aᵏ/k! + aᶜ/c!·1/(1−ρ)], ρ = a/c.
    Evaluated through the Erlang B recursion B(0)=1, B(k) = a·B(k−1)/(k + a·B(k−1)) and
    C = B/(1 − ρ(1 − B)), which is algebraically identical but never forms aᶜ or c!
    (those overflow for c in the hundreds).
    """
    c = _check_int("c", c)
    a = float(a)
    if not (a >= 0 and math.isfinite(a)):
        raise ValueError(f"offered load a must be finite and >= 0, got {a!r}")
    rho = a / c
    _check_stable(rho)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - rho * (1.0 - b))


def mmc_p_wait(lam: float, mu: float, c: int) -> float:
    """P(wait) for M/M/c = C(c, λ/μ) (validation.md, Erlang C)."""
    lam, mu = _check_positive("lam", lam), _check_positive("mu", mu)
    return erlang_c(c, lam / mu)


def mmc_wq(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue for M/M/c: Wq = C(c, a)/(cμ − λ) (validation.md)."""
    p = mmc_p_wait(lam, mu, c)
    return p / (c * mu - lam)


def mmc_relaxation_time(c: int, rho: float, service: float) -> float:
    """The M/M/c queue's relaxation time 1/(cμ(1−√ρ)²), μ = 1/service: how long a queue started
    empty takes to forget its start (tests discard several of them as warm-up)."""
    c = _check_int("c", c)
    _check_stable(rho)
    return _check_positive("service", service) / (c * (1.0 - math.sqrt(rho)) ** 2)


def mmc_w(lam: float, mu: float, c: int) -> float:
    """Mean time in system for M/M/c: W = Wq + 1/μ (validation.md)."""
    return mmc_wq(lam, mu, c) + 1.0 / mu


# --------------------------------------------------------------------------- M/D/c
def _mdc_stationary(lam: float, D: float, c: int, tol: float, n_max: int | None) -> np.ndarray:
    """Stationary law of Crommelin's chain N(t+D) = max(N(t)−c, 0) + Poisson(λD).

    validation.md, M/D/c "Exact". With FCFS and constant service D, exactly min(N(t), c)
    customers leave in (t, t+D] (those in service at t all finish, nobody who starts later
    can), so the chain is Markov for *any* starting instant t; its stationary law is thus
    the time-stationary law of the number in system, which by PASTA is also what arrivals
    see. Returns π on {0..N}, mass beyond N lumped into N, with π_N < tol.
    """
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    a = lam * D
    # Tail decay: π_n ~ z0^(-n), z0 > 1 the root of z^c = exp(a(z−1)) (Crommelin). Used only
    # to pick a first truncation level; the loop below checks the tail numerically.
    # g is concave with g(1)=0, g'(1)=c−a>0 and its maximum at c/a, so z0 lies above c/a.
    g = lambda z: c * math.log(z) - a * (z - 1.0)
    lo = hi = c / a
    while g(hi) > 0:
        hi *= 2.0
    z0 = optimize.brentq(g, lo, hi)
    log_r = -math.log(z0)
    cap = 10**6 if n_max is None else int(n_max)
    n = c + int(math.ceil(math.log(tol) / log_r)) + int(a + 10 * math.sqrt(a) + 20)

    # Poisson(λD) pmf cut where its upper tail drops below 1e-18 (far under any useful tol);
    # what is cut is added back to the last reachable state so every row sums to 1.
    ks = np.arange(int(a + 12.0 * math.sqrt(a) + 40.0))
    hits = np.flatnonzero(stats.poisson.sf(ks, a) < 1e-18)
    kmax = max(1, int(hits[0]) if hits.size else int(ks[-1]))
    pk = stats.poisson.pmf(np.arange(kmax + 1), a)
    # Pin π_k = 1 at a well-populated state (≈ busy servers ≈ λD) instead of adding a dense
    # Σπ = 1 row: the system then stays banded (lower bw kmax, upper bw c) and is solved by
    # banded LU in O(N·kmax·(kmax + c)); pinning π_0 would underflow for large λD.
    lo_bw, up_bw = kmax, c

    while True:
        n = min(n, cap)
        k0 = min(int(a), n)
        # ab[up_bw + row - col, col] = M[row, col], M = Pᵀ − I (row j: balance of state j).
        ab = np.zeros((lo_bw + up_bw + 1, n + 1))
        for i in range(n + 1):                     # column i = transitions out of state i
            base = max(i - c, 0)
            m = min(kmax, n - base)                # arrivals that still land inside {0..n}
            v = pk[: m + 1].copy()
            v[-1] += max(0.0, 1.0 - v.sum())       # cut mass -> last reachable state
            r0 = up_bw + base - i
            ab[r0: r0 + m + 1, i] = v
        ab[up_bw, :] -= 1.0
        # Balance equations are linearly dependent; replace state k0's by π_k0 = 1.
        for col in range(max(0, k0 - lo_bw), min(n, k0 + up_bw) + 1):
            ab[up_bw + k0 - col, col] = 0.0
        ab[up_bw, k0] = 1.0
        rhs = np.zeros(n + 1)
        rhs[k0] = 1.0
        pi = linalg.solve_banded((lo_bw, up_bw), ab, rhs, overwrite_ab=True)
        pi = np.clip(pi, 0.0, None)
        pi /= pi.sum()
        if pi[-1] < tol:
            return pi
        if n >= cap:
            raise RuntimeError(
                f"M/D/c tail mass {pi[-1]:.3g} still >= tol={tol:g} at truncation n_max={cap}")
        n *= 2


def _mdc_args(lam, D, c):
    lam, D, c = _check_positive("lam", lam), _check_positive("D", D), _check_int("c", c)
    _check_stable(lam * D / c)
    return lam, D, c


def mdc_wq_exact(lam: float, D: float, c: int, *, tol: float = 1e-12,
                 n_max: int | None = None) -> float:
    """Exact mean wait in queue of M/D/c (validation.md, M/D/c "Exact", Crommelin).

    Solves the embedded chain N(t+D) = max(N(t)−c, 0) + Poisson(λD) on {0..N}, with N
    chosen automatically (first guess from the geometric tail rate, then doubling) until
    the neglected tail mass is < ``tol``; ``n_max`` caps N (default 10⁶; RuntimeError if
    the tail is still too heavy there). Then Lq = Σ max(n−c, 0)·π_n and, by Little's law
    (validation.md), Wq = Lq/λ. For c = 1 this reproduces Pollaczek–Khinchine,
    Wq = ρD/(2(1−ρ)), to ~1e-11 relative even at ρ = 0.999. π is computed in double
    precision, so a Wq far below ~1e-20·D (many servers, tiny ρ) may come back as 0.
    """
    lam, D, c = _mdc_args(lam, D, c)
    pi = _mdc_stationary(lam, D, c, tol, n_max)
    lq = float(np.dot(np.maximum(np.arange(pi.size) - c, 0), pi))
    return lq / lam


def mdc_p_wait_exact(lam: float, D: float, c: int, *, tol: float = 1e-12,
                     n_max: int | None = None) -> float:
    """P(an arrival waits) in M/D/c = P(N >= c) under the time-stationary law (PASTA).

    Same Crommelin chain as :func:`mdc_wq_exact` (validation.md).
    """
    lam, D, c = _mdc_args(lam, D, c)
    pi = _mdc_stationary(lam, D, c, tol, n_max)
    return float(pi[c:].sum())


def cosmetatos_mdc_wq(lam: float, D: float, c: int) -> float:
    """Cosmetatos' approximation to the M/D/c mean wait (validation.md):

    Wq(M/D/c) ≈ ½·[1 + (1−ρ)(c−1)(√(4+5c) − 2)/(16ρc)]·Wq(M/M/c), with μ = 1/D.

    Good (< 1 % vs :func:`mdc_wq_exact`) for ρ ≳ 0.5 with c ≤ 8, but the correction grows
    like 1/ρ: at light load it overshoots badly (c=8: +26 % at ρ=0.2, +93 % at ρ=0.1) and
    can even exceed Wq(M/M/c). Prefer the exact solver for validation.
    """
    lam, D, c = _mdc_args(lam, D, c)
    rho = lam * D / c
    corr = 1.0 + (1.0 - rho) * (c - 1) * (math.sqrt(4 + 5 * c) - 2) / (16 * rho * c)
    return 0.5 * corr * mmc_wq(lam, 1.0 / D, c)


# --------------------------------------------------------------------------- DAG bounds
def _dag_args(total_work, critical_path, m):
    m = _check_int("m", m)
    wk, cp = float(total_work), float(critical_path)
    if not (wk >= 0 and cp >= 0 and math.isfinite(wk) and math.isfinite(cp)):
        raise ValueError("total_work and critical_path must be finite and >= 0")
    if cp > wk * (1 + 1e-12):
        # The critical path is a set of tasks, so it can never exceed the total work.
        raise ValueError(f"critical_path={cp} exceeds total_work={wk}")
    return wk, cp, m


def critical_path(durations: dict, edges) -> float:
    """The longest path through a DAG, weighted by its tasks' durations: its makespan with
    unlimited slots and no overheads (validation.md). ``edges`` are (upstream, downstream) pairs
    of keys of ``durations``. Computed here independently of the model's own DAG code."""
    preds: dict = {t: [] for t in durations}
    succs: dict = {t: [] for t in durations}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    waiting = {t: len(p) for t, p in preds.items()}
    ready = [t for t, n in waiting.items() if n == 0]
    finish: dict = {}
    while ready:                                  # Kahn's order: every task after its upstream
        t = ready.pop()
        finish[t] = float(durations[t]) + max((finish[p] for p in preds[t]), default=0.0)
        for s in succs[t]:
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    if len(finish) != len(durations):
        raise ValueError("the edges contain a cycle")
    return max(finish.values(), default=0.0)


def dag_lower_bound(total_work: float, critical_path: float, m: int) -> float:
    """Makespan lower bound for any schedule on m slots: max(Wk/m, CP) (validation.md)."""
    wk, cp, m = _dag_args(total_work, critical_path, m)
    return max(wk / m, cp)


def graham_bound(total_work: float, critical_path: float, m: int) -> float:
    """Graham's upper bound for any greedy list schedule: Wk/m + (1 − 1/m)·CP (validation.md)."""
    wk, cp, m = _dag_args(total_work, critical_path, m)
    return wk / m + (1.0 - 1.0 / m) * cp


# --------------------------------------------------------------------------- statistics
def mean_ci(samples: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Sample mean and Student-t confidence half-width (validation.md, "Statistics done right").

    half_width = t_{(1+level)/2, n−1} · s/√n with s the sample standard deviation (ddof=1).
    Needs ≥ 2 samples (one per independent replication or batch).
    """
    x = np.asarray(samples, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"mean_ci needs at least 2 samples, got {x.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    q = stats.t.ppf(0.5 * (1.0 + level), x.size - 1)
    return float(x.mean()), float(q * x.std(ddof=1) / math.sqrt(x.size))


def covers(samples: Sequence[float], value: float, level: float = 0.95) -> bool:
    """True if the t confidence interval of ``samples`` contains the theoretical ``value``."""
    mean, hw = mean_ci(samples, level)
    return abs(mean - float(value)) <= hw


def batch_means(values: Sequence[float], n_batches: int) -> list[float]:
    """Averages of ``n_batches`` equal consecutive batches of one long (post-warm-up) run.

    validation.md allows batch means inside one long run; feed the result to
    :func:`mean_ci`. When len(values) is not a multiple of n_batches the leftover
    *leading* observations are dropped (they are the ones closest to the warm-up).
    """
    n_batches = _check_int("n_batches", n_batches)
    x = np.asarray(values, dtype=float).ravel()
    if x.size < n_batches:
        raise ValueError(f"need at least n_batches={n_batches} values, got {x.size}")
    size = x.size // n_batches
    x = x[x.size - size * n_batches:]
    return [float(v) for v in x.reshape(n_batches, size).mean(axis=1)]
