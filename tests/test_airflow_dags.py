"""Real Airflow DAG files read by Airflow's DagBag (the optional [airflow] extra). Skipped unless
apache-airflow is installed; checked with Airflow 2.10.5 in a separate virtualenv:

    python -m venv /tmp/afvenv && /tmp/afvenv/bin/pip install apache-airflow==2.10.5 \\
        simpy pandas numpy scipy matplotlib pyyaml pydantic tqdm croniter pytest hypothesis
    AIRFLOW_HOME=/tmp/afhome PYTHONPATH=. /tmp/afvenv/bin/python -m pytest -q tests/test_airflow_dags.py
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

# A task's executor must be one Airflow is configured with (DAG.validate_executor_field).
os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
airflow = pytest.importorskip("airflow")

from sim import run                                          # noqa: E402
from sim.errors import ScenarioError                         # noqa: E402
from sim.importers import dag_from_export                    # noqa: E402
from sim.importers import load_airflow_dags     # noqa: E402
from sim.model.durations import Constant, Empirical          # noqa: E402
from sim.model.schedules import At, Cron, Interval           # noqa: E402
from sim.scenario import load_scenario                       # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "data" / "airflow-runs"
BENCH_DAGS = RUNS / "bench_dags.py"
TI_CSV = RUNS / "local-p8" / "task_instances.csv"


def edges_of(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d.task_id) for t in dag.tasks.values() for d in t.downstream}


def test_bench_dags_match_the_rest_structures():
    dags = {d.dag_id: d for d in load_airflow_dags(BENCH_DAGS, task_instances=TI_CSV)}
    assert set(dags) == {"diamond", "chain", "fanout", "fanout0"}
    for dag_id, dag in dags.items():
        rest = dag_from_export(TI_CSV, RUNS / "rest" / f"{dag_id}.tasks.json")
        assert set(dag.tasks) == set(rest.tasks) and edges_of(dag) == edges_of(rest)
        for tid, t in dag.tasks.items():
            r = rest[tid]
            assert t.duration == r.duration and isinstance(t.duration, Empirical)
            for attr in ("queue", "pool", "pool_slots", "priority_weight", "weight_rule", "retries",
                         "retry_delay", "trigger_rule"):
                assert getattr(t, attr) == getattr(r, attr), (dag_id, tid, attr)
        assert isinstance(dag.schedule, At)                 # schedule=None: one run at 0
    assert dags["fanout"].max_active_tasks == 64 and dags["diamond"].max_active_tasks is None


def test_operator_settings_and_schedules(tmp_path):
    f = tmp_path / "my_dags.py"
    f.write_text(textwrap.dedent("""
        from datetime import timedelta
        import pendulum
        from airflow import DAG
        from airflow.operators.bash import BashOperator
        from airflow.operators.empty import EmptyOperator
        from airflow.sensors.time_delta import TimeDeltaSensor

        start = pendulum.datetime(2025, 1, 1, tz="UTC")
        with DAG("hourly", schedule="0 * * * *", start_date=start, max_active_runs=2, catchup=False):
            a = BashOperator(task_id="a", bash_command="true", queue="gpu", pool="big", pool_slots=2,
                             priority_weight=5, weight_rule="absolute", retries=3,
                             retry_delay=timedelta(seconds=30), retry_exponential_backoff=True,
                             max_retry_delay=timedelta(minutes=10), executor="LocalExecutor",
                             max_active_tis_per_dag=4)
            b = EmptyOperator(task_id="b", trigger_rule="all_done")
            c = TimeDeltaSensor(task_id="c", delta=timedelta(seconds=5), mode="reschedule")
            a >> [b, c]
        with DAG("every_5m", schedule=timedelta(minutes=5), start_date=start, catchup=False):
            BashOperator(task_id="x", bash_command="true")
    """))
    dags = {d.dag_id: d for d in load_airflow_dags(f, default_duration=7.0)}
    hourly, five = dags["hourly"], dags["every_5m"]
    assert hourly.schedule == Cron("0 * * * *") and five.schedule == Interval(300.0)
    assert hourly.max_active_runs == 2 and five.max_active_runs is None
    a = hourly["a"]
    assert (a.queue, a.pool, a.pool_slots, a.priority_weight, a.weight_rule, a.retries, a.retry_delay,
            a.retry_exponential_backoff, a.max_retry_delay, a.executor, a.max_active_tis_per_dag) == \
        ("gpu", "big", 2, 5, "absolute", 3, 30.0, True, 600.0, "LocalExecutor", 4)
    assert a.duration == Constant(7.0) and hourly["c"].duration == Constant(7.0)
    assert hourly["b"].duration == Constant(0.0) and hourly["b"].trigger_rule == "all_done"
    assert edges_of(hourly) == {("a", "b"), ("a", "c")}
    only = load_airflow_dags(f, default_duration=1, dag_ids=["every_5m"], schedule=At((0.0, 60.0)))
    assert [d.dag_id for d in only] == ["every_5m"] and only[0].schedule == At((0.0, 60.0))


def test_import_errors_name_the_file_and_line(tmp_path):
    f = tmp_path / "broken.py"
    f.write_text("from airflow import DAG\n\nx = 1 +\n")
    with pytest.raises(ScenarioError) as info:
        load_airflow_dags(f, default_duration=1)
    msg = str(info.value)
    assert str(f) in msg and "line 3" in msg and "SyntaxError" in msg and "Traceback" not in msg


def test_scenario_structure_can_be_a_dag_file(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text(f"name: s\ndescription: x\ndags:\n  - dag_id: diamond\n    schedule: {{at: [0]}}\n"
                 f"    airflow_export: {{task_instances: {os.path.relpath(TI_CSV, tmp_path)}, "
                 f"structure: {os.path.relpath(BENCH_DAGS, tmp_path)}}}\n")
    (dag,) = load_scenario(s).dags
    assert set(dag.tasks) == {"t1", "t2", "t3", "t4"}
    r = run(load_scenario(s))
    assert set(r.task_instances.state) == {"success"}
