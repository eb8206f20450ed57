"""Bounded work (issue #12): what a scenario would cost is estimated before it runs, memory does
not grow with settings that only count (retries, parallelism), and hostile YAML is refused fast."""
from __future__ import annotations

import random
import time
import tracemalloc
from pathlib import Path

import pytest

from sim.bench import bench_scenario
from sim.errors import ScenarioError, SimError
from sim.limits import (DEFAULT_MAX_TASK_INSTANCES, WAKEUPS_PER_TRY, check_work, estimate, expected_runs,
                        expected_tries)
from sim.model.dag import DAG
from sim.model.runtime import EAGER_TRIES, DagPlan, DagRun, LazyDraws
from sim.model.schedules import Cron
from sim.scenario import load_scenario
from sim.scenario.schema import read_yaml

from test_bad_inputs import bomb  # tests/test_bad_inputs.py

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "scenarios").glob("*.yaml"))


def run_of(task_kwargs, seed=1):
    dag = DAG("d")
    dag.task("t", duration=1.0, **task_kwargs)
    run = DagRun(DagPlan(dag, 0, 16, 16, 0.0), 0, due_at=0.0, created_at=0.0)
    run.create_task_instances(0, random.Random(seed))
    return run.tis[0]


def test_many_retries_are_drawn_lazily():
    """retries: 10**8 used 867 MB: one duration and one failure draw per possible try."""
    tracemalloc.start()
    ti = run_of({"retries": 10**8, "failure_probability": 0.5})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000
    assert isinstance(ti.durations, LazyDraws) and isinstance(ti.failure_draws, LazyDraws)
    again = run_of({"retries": 10**8, "failure_probability": 0.5})
    assert [ti.failure_draws[i] for i in (0, 31, 32, 1000)] == [again.failure_draws[i] for i in (0, 31, 32, 1000)]
    assert 0 <= ti.failure_draws[5000] < 1


def test_few_retries_draw_as_before():
    """Up to EAGER_TRIES tries the draws are the DAG stream's, in the old order (pinned numbers
    of every scenario stay)."""
    ti = run_of({"retries": EAGER_TRIES - 1, "failure_probability": 0.5})
    rng = random.Random(1)
    durations = [1.0] * EAGER_TRIES                     # a constant duration draws nothing
    failures = [rng.random() for _ in range(EAGER_TRIES)]
    assert ti.durations == durations and ti.failure_draws == failures


def test_expected_tries():
    class T:
        sensor = deferrable = None
        failure_probability, retries, failed_tries = 0.5, 2, 0
    assert expected_tries(T) == pytest.approx(1.75)
    T.failure_probability, T.retries = 1.0, 10**9
    assert expected_tries(T) == 10**9 + 1
    T.failure_probability = 0.0
    assert expected_tries(T) == 1.0
    T.failed_tries, T.retries = 2, 3              # two tries known to fail, then one that succeeds
    assert expected_tries(T) == 3.0
    T.failure_probability = 0.5                   # ... then 1 + p of the two left
    assert expected_tries(T) == pytest.approx(3.5)
    T.failed_tries = 9                            # more than it has: every try, and no more
    assert expected_tries(T) == 4.0


def test_tries_known_to_fail_fail_and_draw_nothing():
    """failed_tries (replaying recorded runs whose tasks failed first): the first tries fail, the
    next follows failure_probability, and with no probability the DAG's stream is not touched."""
    ti = run_of({"retries": 2, "failed_tries": 1})
    assert ti.failure_draws == ()
    outcomes = []
    for n in (1, 2, 3):
        ti.try_number = n
        outcomes.append(ti.fails_this_try())
    assert outcomes == [True, False, False]
    with_p = run_of({"retries": 2, "failed_tries": 1, "failure_probability": 0.5})
    assert with_p.failure_draws == run_of({"retries": 2, "failure_probability": 0.5}).failure_draws


def test_a_scenario_task_known_to_fail_first_is_retried_after_its_delay(tmp_path):
    from sim import run
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nseed: 1\nhorizon: 600\nexecutor: {kind: local}\ndags:\n  - dag_id: d\n"
                 "    schedule: {at: [0]}\n    tasks:\n"
                 "      a: {duration: 2s, retries: 2, retry_delay: 5s, failed_tries: 1}\n"
                 "      b: {duration: 1s, failed_tries: 1}\n    dependencies: a >> b\n")
    tis = run(load_scenario(f)).task_instances
    assert list(zip(tis["task_id"].astype(str), tis["try_number"], tis["state"].astype(str))) == \
        [("a", 1, "up_for_retry"), ("a", 2, "success"), ("b", 1, "failed")]
    first, second = tis["ended_at"].iloc[0], tis["queued_at"].iloc[1]
    assert 5.0 <= second - first < 7.0              # the retry delay, then a loop or two


def test_cron_runs_are_counted_then_extrapolated():
    hourly = Cron("0 * * * *")
    assert expected_runs(hourly, 2 * 3600) == 2
    assert expected_runs(hourly, 100 * 86400) == pytest.approx(2400, rel=1e-3)   # past 1,000 fires


def test_estimate_is_exact_for_the_seed_diamond():
    est = estimate(load_scenario(ROOT / "scenarios" / "seed-diamond.yaml"))
    assert est["runs"] == 12 and est["task_instances"] == 48
    assert est["tries"] == pytest.approx(48, abs=0.01)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_are_within_the_default_limit(path):
    check_work(load_scenario(path))


@pytest.mark.parametrize("n", [200_000, 1_000_000])
def test_bench_sizes_users_use_are_allowed(n):
    est = check_work(bench_scenario(n))
    assert est["tries"] <= DEFAULT_MAX_TASK_INSTANCES and est["wakeups"] <= WAKEUPS_PER_TRY * DEFAULT_MAX_TASK_INSTANCES


def test_limit_message_names_estimate_limit_and_flag(tmp_path):
    f = tmp_path / "burst.yaml"
    f.write_text("dags: [{dag_id: d, schedule: {burst: {runs: 10000000}}, tasks: {t: {duration: 1s}}}]\n")
    with pytest.raises(SimError) as info:
        check_work(load_scenario(f))
    msg = str(info.value)
    assert str(f) in msg and "10,000,000 task-instance tries" in msg and "5,000,000" in msg
    assert "--max-task-instances" in msg
    check_work(load_scenario(f), limit=20_000_000)      # the flag raises it


def test_a_20000_task_chain_loads_fast():
    dag = DAG("chain")
    for i in range(20_000):
        dag.task(f"t{i}", duration=1.0)
    dag.set_dependencies(" >> ".join(f"t{i}" for i in range(20_000)))
    t0 = time.perf_counter()
    w = dag.priority_weights()
    assert time.perf_counter() - t0 < 10
    assert w["t0"] == 20_000 and w["t19999"] == 1


def test_priority_weights_with_mixed_rules():
    dag = DAG("d")
    for name, kw in (("a", {"priority_weight": 3}), ("b", {"priority_weight": 5, "weight_rule": "upstream"}),
                     ("c", {"priority_weight": 7}), ("d", {"weight_rule": "absolute", "priority_weight": 2})):
        dag.task(name, duration=1.0, **kw)
    dag.set_dependencies("a >> [b, c] >> d")
    assert dag.priority_weights() == {"a": 3 + 5 + 7 + 2, "b": 5 + 3, "c": 7 + 2, "d": 2}


billion_laughs = bomb          # one generator of alias bombs, in tests/test_bad_inputs.py


def test_yaml_alias_bomb_is_refused_fast():
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="expands to more than"):
        read_yaml(billion_laughs(), "bomb.yaml")
    assert time.perf_counter() - t0 < 1


def test_anchors_used_sensibly_still_load():
    assert read_yaml("t: &t {duration: 1s}\nu: *t\nv: *t\n", "ok.yaml") == {"t": {"duration": "1s"},
                                                                          "u": {"duration": "1s"},
                                                                          "v": {"duration": "1s"}}


def test_parallelism_of_a_billion_allocates_nothing_per_slot(tmp_path):
    from sim.simulation import Simulation
    f = tmp_path / "p.yaml"
    f.write_text("airflow: {parallelism: 1000000000}\n"
                 "dags: [{dag_id: d, schedule: {at: [0]}, tasks: {t: {duration: 1s}}}]\n")
    tracemalloc.start()
    result = Simulation(load_scenario(f)).run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(result.task_instances) == 1 and peak < 50_000_000


def test_a_cron_that_never_fires_is_estimated_at_no_runs():
    """The schema refuses it in scenario files; an imported DAG may still bring one."""
    assert expected_runs(Cron("0 0 30 2 *"), 86400 * 365) == 0
