"""Malformed scenario files: each is rejected with a ScenarioError naming the file, the field and
the problem, in words a person understands (no pydantic boilerplate)."""
from __future__ import annotations

import pytest

from sim.errors import ScenarioError
from sim.scenario import load_scenario

BASE = """\
name: bad
description: A scenario with one thing wrong.
seed: 7
horizon: 2h
profile: airflow-2.10
airflow: {parallelism: 32, max_active_tasks_per_dag: 16}
executor: {kind: local}
dags:
  - dag_id: diamond
    schedule: {every: 10m}
    max_active_runs: 16
    tasks:
      T1: {duration: 30s}
      T2: {duration: {lognormal: {mean: 60s, cv: 0.5}}, queue: high_cpu, retries: 2}
      T3: {duration: {exponential: {mean: 45s}}, failure_probability: 0.01}
      T4: {duration: {uniform: {low: 5s, high: 15s}}, trigger_rule: all_done}
    dependencies: "T1 >> [T2, T3] >> T4"
"""
SECOND_DAG = """\
  - dag_id: diamond
    schedule: {cron: "0 * * * *"}
    tasks: {A: {duration: 1s}}
"""


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


T2 = "T2: {duration: {lognormal: {mean: 60s, cv: 0.5}}, queue: high_cpu, retries: 2}"
T3 = "T3: {duration: {exponential: {mean: 45s}}, failure_probability: 0.01}"
T4 = "T4: {duration: {uniform: {low: 5s, high: 15s}}, trigger_rule: all_done}"

# (case id, file text, extra load_scenario kwargs, expected field path ("" = whole file), phrase)
CASES = [
    ("unknown-top-level-key", edit("description:", "descripton:"), {}, "",
     "unknown key 'descripton'; did you mean 'description'?"),
    ("unknown-airflow-key", edit("{parallelism: 32", "{paralelism: 32"), {}, "airflow",
     "unknown key 'paralelism'; did you mean 'parallelism'?"),
    ("unknown-task-key", edit("retries: 2", "retires: 2"), {}, "dags[0].tasks.T2",
     "unknown key 'retires'; did you mean 'retries'?"),
    ("wrong-type", edit("parallelism: 32", "parallelism: many"), {}, "airflow.parallelism",
     "expected an integer (got 'many')"),
    ("bool-for-int", edit("retries: 2", "retries: yes"), {}, "dags[0].tasks.T2.retries",
     "expected an integer (got true)"),
    ("parallelism-0", edit("parallelism: 32", "parallelism: 0"), {}, "airflow.parallelism",
     "must be >= 1 (got 0)"),
    ("negative-duration", edit("T1: {duration: 30s}", "T1: {duration: -5}"), {},
     "dags[0].tasks.T1.duration", "must be >= 0 (got -5)"),
    ("bad-duration-string", edit("T1: {duration: 30s}", "T1: {duration: 30 sec}"), {},
     "dags[0].tasks.T1.duration", "not a duration: '30 sec'"),
    ("missing-duration", edit("T1: {duration: 30s}", "T1: {queue: q}"), {},
     "dags[0].tasks.T1", "missing required key 'duration'"),
    ("lognormal-missing-cv", edit("{mean: 60s, cv: 0.5}", "{mean: 60s}"), {},
     "dags[0].tasks.T2.duration.lognormal", "missing required key 'cv'"),
    ("exponential-mean-0", edit("{mean: 45s}", "{mean: 0s}"), {},
     "dags[0].tasks.T3.duration.exponential.mean", "must be > 0"),
    ("unknown-distribution", edit("{exponential: {mean: 45s}}", "{exponentail: {mean: 45s}}"), {},
     "dags[0].tasks.T3.duration", "did you mean 'exponential'?"),
    ("uniform-low-gt-high", edit("{low: 5s, high: 15s}", "{low: 15s, high: 5s}"), {},
     "dags[0].tasks.T4.duration.uniform", "low must be <= high"),
    ("empty-empirical", edit("T1: {duration: 30s}", "T1: {duration: {empirical: []}}"), {},
     "dags[0].tasks.T1.duration.empirical", "must not be empty"),
    ("negative-empirical-sample", edit("T1: {duration: 30s}", "T1: {duration: {empirical: [3, -1]}}"),
     {}, "dags[0].tasks.T1.duration.empirical[1]", "must be >= 0"),
    ("two-schedule-kinds", edit("{every: 10m}", "{every: 10m, cron: '0 * * * *'}"), {},
     "dags[0].schedule", "give exactly one schedule kind, not every and cron"),
    ("empty-schedule", edit("{every: 10m}", "{}"), {}, "dags[0].schedule", "empty schedule"),
    ("missing-schedule", edit("    schedule: {every: 10m}\n", ""), {}, "dags[0]",
     "missing required key 'schedule'"),
    ("bad-cron", edit("{every: 10m}", "{cron: '0 * * *'}"), {}, "dags[0].schedule.cron",
     "not a valid cron expression"),
    ("poisson-rate-0", edit("{every: 10m}", "{poisson_per_hour: 0}"), {},
     "dags[0].schedule.poisson_per_hour", "must be > 0 (got 0)"),
    ("burst-runs-0", edit("{every: 10m}", "{burst: {runs: 0, at: 0s}}"), {},
     "dags[0].schedule.burst.runs", "must be >= 1 (got 0)"),
    ("cycle", edit('"T1 >> [T2, T3] >> T4"', '"T1 >> [T2, T3] >> T4 >> T1"'), {},
     "dags[0].dependencies", "has a cycle"),
    ("unknown-task-in-dependencies", edit('"T1 >> [T2, T3] >> T4"', '"T1 >> [T2, T5] >> T4"'), {},
     "dags[0].dependencies", "unknown task 'T5'"),
    ("bad-dependency-syntax", edit('"T1 >> [T2, T3] >> T4"', '"T1 >> [T2, T3 >> T4"'), {},
     "dags[0].dependencies", "unclosed '['"),
    ("duplicate-dag-id", BASE + SECOND_DAG, {}, "dags[1].dag_id", "duplicate dag_id 'diamond'"),
    ("empty-dags", BASE[:BASE.index("dags:")] + "dags: []\n", {}, "dags", "must not be empty"),
    ("no-dags", BASE[:BASE.index("dags:")], {}, "", "missing required key 'dags'"),
    ("empty-tasks", BASE[:BASE.index("    tasks:")] + "    tasks: {}\n", {}, "dags[0].tasks",
     "must not be empty"),
    ("bad-dag-id", edit("dag_id: diamond", "dag_id: my diamond"), {}, "dags[0].dag_id",
     "may only contain letters, digits"),
    ("bad-task-id", edit("T1: {duration: 30s}", "T 1: {duration: 30s}"), {}, "dags[0].tasks.T 1",
     "may only contain letters, digits"),
    ("failure-probability-1.5", edit("failure_probability: 0.01", "failure_probability: 1.5"), {},
     "dags[0].tasks.T3.failure_probability", "must be <= 1 (got 1.5)"),
    ("unknown-trigger-rule", edit("trigger_rule: all_done", "trigger_rule: all_dne"), {},
     "dags[0].tasks.T4.trigger_rule", "did you mean 'all_done'?"),
    ("unknown-weight-rule", edit(T2, T2[:-1] + ", weight_rule: heaviest}"), {},
     "dags[0].tasks.T2.weight_rule", "must be one of downstream, upstream, absolute"),
    ("pool-slots-0", edit(T2, T2[:-1] + ", pool_slots: 0}"), {}, "dags[0].tasks.T2.pool_slots",
     "must be >= 1 (got 0)"),
    ("unknown-pool", edit(T2, T2[:-1] + ", pool: etl}"), {}, "dags[0].tasks.T2.pool",
     "unknown pool 'etl'"),
    ("pool-too-small", edit(T2, T2[:-1] + ", pool: etl, pool_slots: 3}").replace(
        "max_active_tasks_per_dag: 16}", "max_active_tasks_per_dag: 16, pools: {etl: 2}}"), {},
     "dags[0].tasks.T2.pool_slots", "can never be free"),
    ("pool-size-0", edit("max_active_tasks_per_dag: 16}", "pools: {etl: 0}}"), {},
     "airflow.pools.etl", "must be >= 1 (got 0)"),
    ("unknown-executor-kind", edit("{kind: local}", "{kind: dask}"), {}, "executor.kind",
     "must be one of local, celery, kubernetes, celery_kubernetes (got 'dask')"),
    ("kubernetes-unknown-key", edit("{kind: local}", "{kind: kubernetes, nodes: 4}"), {},
     "executor", "unknown key 'nodes' for the kubernetes executor"),
    ("kubernetes-batch-zero", edit("{kind: local}", "{kind: kubernetes, kubernetes: "
                                                    "{worker_pods_creation_batch_size: 0}}"), {},
     "executor.kubernetes.worker_pods_creation_batch_size", ">= 1"),
    ("kubernetes-bad-autoscaler", edit("{kind: local}", "{kind: kubernetes, cluster: {autoscaler: magic}}"), {},
     "executor.cluster.autoscaler", "karpenter"),
    ("celery-unknown-key", edit("{kind: local}", "{kind: celery, workers: 4}"), {},
     "executor", "unknown key 'workers' for the celery executor"),
    ("celery-bad-broker", edit("{kind: local}", "{kind: celery, celery: {broker: kafka}}"), {},
     "executor.celery.broker", "redis"),
    ("keda-min-above-max", edit("{kind: local}", "{kind: celery, worker_pools: [{name: w, autoscaling: "
                                                 "{min_replicas: 5, max_replicas: 2}}]}"), {},
     "executor.worker_pools[0].autoscaling", "exceeds max_replicas"),
    ("outage-backwards", edit("{kind: local}", "{kind: celery, broker_outages: [{start: 2h, end: 1h}]}"), {},
     "executor.broker_outages[0]", "must end after it starts"),
    ("local-with-celery-keys", edit("{kind: local}", "{kind: local, worker_pools: []}"), {},
     "executor", "unknown key 'worker_pools' for the local executor"),
    ("executor-flag-unknown", BASE, {"executor": "nomad"}, "executor.kind", "local"),
    ("local-executor-unknown-key", edit("{kind: local}", "{kind: local, workers: 4}"), {},
     "executor", "unknown key 'workers' for the local executor"),
    ("host-cores-0", edit("{kind: local}", "{kind: local, host_cores: 0}"), {},
     "executor.host_cores", "must be > 0"),
    ("unknown-profile", edit("profile: airflow-2.10", "profile: airflow-2.9"), {}, "profile",
     "unknown profile 'airflow-2.9'"),
    ("overhead-negative", edit("executor:", "overheads: {db_query_time: -2ms}\nexecutor:"), {},
     "overheads.db_query_time", "must be >= 0"),
    ("background-shares-over-1", edit("executor:", "overheads: {task_background_at_launch: 0.7, "
                                      "task_background_in_run: 0.5}\nexecutor:"), {},
     "overheads", "task_background_at_launch + task_background_in_run must be at most 1"),
    ("background-share-negative", edit("executor:", "overheads: {task_background_in_run: -0.1}\nexecutor:"), {},
     "overheads.task_background_in_run", "must be >= 0"),
    ("yaml-syntax-error", edit("T1: {duration: 30s}", "T1: {duration: 30s"), {}, "",
     "YAML syntax error at line 14, column 9"),
    ("yaml-duplicate-key", edit("T1: {duration: 30s}", "T1: {duration: 30s}\n      T1: {duration: 5s}"),
     {}, "", "duplicate key 'T1' at line 14, column 7"),
    ("top-level-not-mapping", "- name: a\n- name: b\n", {}, "", "the top level must be a mapping"),
    ("empty-file", "# nothing here\n", {}, "", "the file is empty"),
    ("negative-seed", edit("seed: 7", "seed: -1"), {}, "seed", "must be >= 0 (got -1)"),
    ("negative-seed-flag", BASE, {"seed": -3}, "seed", "must be >= 0 (got -3)"),
    ("bad-horizon", edit("horizon: 2h", "horizon: forever"), {}, "horizon",
     "not a duration: 'forever'"),
    ("name-not-string", edit("name: bad", "name: [a, b]"), {}, "name", "expected a string"),
    ("set-unknown-dag", BASE, {"sets": ["dags.nosuch.max_active_runs=3"]},
     "--set dags.nosuch.max_active_runs", "no DAG with dag_id 'nosuch'"),
    ("set-unknown-key", BASE, {"sets": ["airflow.paralelism=8"]}, "--set airflow.paralelism",
     "did you mean 'parallelism'?"),
    ("set-into-scalar", BASE, {"sets": ["seed.value=8"]}, "--set seed.value", "not a mapping"),
    ("set-no-equals", BASE, {"sets": ["horizon"]}, "--set horizon", "expected dotted.key=value"),
    ("set-bad-value", BASE, {"sets": ["dags.diamond.max_active_runs=0"]},
     "dags[0].max_active_runs", "must be >= 1 (got 0)"),
]


@pytest.mark.parametrize("text, kwargs, path, phrase", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_rejected_with_message(tmp_path, text, kwargs, path, phrase):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(f, **kwargs)
    err, msg = info.value, str(info.value)
    assert err.file == str(f)
    prefix = f"{f}: {path}: " if path else f"{f}: "
    lines = [line for line in msg.splitlines() if line.startswith(prefix) and phrase in line]
    assert lines, f"expected a line starting {prefix!r} containing {phrase!r}, got:\n{msg}"
    for noise in ("Input should", "errors.pydantic.dev", "Value error", "Traceback"):
        assert noise not in msg


def test_table_is_big_enough():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


def test_every_problem_is_reported(tmp_path):
    """Several mistakes in one file: all of them, one line each, not just the first."""
    f = tmp_path / "many.yaml"
    f.write_text(edit("parallelism: 32", "parallelism: 0").replace("seed: 7", "seed: -1")
                 .replace("retries: 2", "retries: -2"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    paths = [p for p, _ in info.value.problems]
    assert set(paths) == {"airflow.parallelism", "seed", "dags[0].tasks.T2.retries"}
    assert len(str(info.value).splitlines()) == 3


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_scenario(tmp_path / "nope.yaml")
