"""Scenario files: durations, every distribution and schedule form, profiles, overrides, the
shipped library and the JSON Schema."""
from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.airflow.config import AirflowConfig, Overheads, field_names
from sim.errors import ScenarioError
from sim.model import durations as dist
from sim.model import schedules as sch
from sim.scenario import (Scenario, json_schema, list_profiles, load_profile, load_scenario,
                          scenario_from_dict)
from sim.scenario.schema import AirflowSection, OverheadsSection
from sim.scenario.units import parse_duration

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def minimal(**task) -> dict:
    """A one-DAG, one-task scenario as parsed YAML."""
    return {"name": "t", "dags": [{"dag_id": "d", "schedule": {"every": "1h"},
                                   "tasks": {"A": {"duration": 1, **task}}}]}


# -- durations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [
    (30, 30.0), (1.5, 1.5), (0, 0.0), ("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0),
    ("1d", 86400.0), ("1.5h", 5400.0), ("250ms", 0.25), (" 10 s ", 10.0), (".5m", 30.0),
    ("1e3", 1000.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", [-1, "-5s", "5 minutes", "abc", "", "5x", True, None, [1],
                                 float("nan"), float("inf"), "1e400s"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError) as info:
        parse_duration(bad)
    assert re.search(r"must be >= 0|duration|finite", str(info.value))


def test_parse_duration_names_the_forms():
    with pytest.raises(ValueError, match=r"250ms, 30s, 5m, 2h, 1d"):
        parse_duration("soon")


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_parse_duration_units_agree(x):
    assert parse_duration(x) == x
    assert parse_duration(f"{x!r}s") == x
    assert parse_duration(f"{x!r}m") == pytest.approx(60 * x)
    assert parse_duration(f"{x!r}h") == pytest.approx(3600 * x)


# -- distributions and schedules build the model's objects -------------------------------------
@pytest.mark.parametrize("spec, expected", [
    (30, dist.Constant(30.0)),
    ("5m", dist.Constant(300.0)),
    ({"constant": "2s"}, dist.Constant(2.0)),
    ({"exponential": {"mean": "45s"}}, dist.Exponential(45.0)),
    ({"lognormal": {"mean": "1m", "cv": 0.5}}, dist.LogNormal(60.0, 0.5)),
    ({"uniform": {"low": "5s", "high": 15}}, dist.Uniform(5.0, 15.0)),
    ({"uniform": {"low": 5, "high": 5}}, dist.Uniform(5.0, 5.0)),
    ({"empirical": [12, "15s", "0.5m"]}, dist.Empirical((12.0, 15.0, 30.0))),
])
def test_duration_forms(spec, expected):
    s = scenario_from_dict(minimal(duration=spec))
    assert s.dags[0]["A"].duration == expected


@pytest.mark.parametrize("spec, expected", [
    ({"every": "10m"}, sch.Interval(600.0)),
    ({"cron": "0 * * * *"}, sch.Cron("0 * * * *")),
    ({"cron": "@daily"}, sch.Cron("@daily")),
    ({"poisson_per_hour": 30}, sch.Poisson(30.0)),
    ({"at": ["0s", 90]}, sch.At((0.0, 90.0))),
    ({"burst": {"runs": 50, "at": "0s"}}, sch.Burst(50, 0.0)),
    ({"burst": {"runs": 3}}, sch.Burst(3, 0.0)),
])
def test_schedule_forms(spec, expected):
    data = minimal()
    data["dags"][0]["schedule"] = spec
    assert scenario_from_dict(data).dags[0].schedule == expected


def test_task_and_dag_attributes_reach_the_model():
    data = minimal(queue="high_cpu", pool="etl", pool_slots=2, priority_weight=5,
                   weight_rule="absolute", retries=3, retry_delay="1m", retry_exponential_backoff=True,
                   max_retry_delay="1h", failure_probability=0.25, trigger_rule="all_done",
                   cpu_bound=True, cpu=0.5, memory=2048, executor="local",
                   max_active_tis_per_dag=4, max_active_tis_per_dagrun=2)
    data["airflow"] = {"pools": {"etl": 4}}
    data["dags"][0].update(max_active_runs=3, max_active_tasks=7, parse_time="250ms")
    s = scenario_from_dict(data)
    dag, t = s.dags[0], s.dags[0]["A"]
    assert (dag.max_active_runs, dag.max_active_tasks, dag.parse_time) == (3, 7, 0.25)
    assert (t.queue, t.pool, t.pool_slots, t.priority_weight, t.weight_rule) == \
        ("high_cpu", "etl", 2, 5, "absolute")
    assert (t.retries, t.retry_delay, t.retry_exponential_backoff, t.max_retry_delay) == (3, 60.0, True, 3600.0)
    assert (t.failure_probability, t.trigger_rule, t.cpu_bound, t.cpu, t.memory) == \
        (0.25, "all_done", True, 0.5, 2048.0)
    assert (t.executor, t.max_active_tis_per_dag, t.max_active_tis_per_dagrun) == ("local", 4, 2)


def test_unset_task_keys_keep_the_model_defaults():
    s = scenario_from_dict(minimal())
    t, dag = s.dags[0]["A"], s.dags[0]
    assert (t.queue, t.pool, t.retries, t.retry_delay, t.trigger_rule) == \
        ("default", "default_pool", 0, 300.0, "all_success")
    assert (dag.max_active_runs, dag.max_active_tasks, dag.parse_time) == (None, None, None)
    assert s.name == "t" and s.seed == 0 and s.horizon == 86400.0 and s.profile == "airflow-2.10"
    assert s.executor.kind == "local" and s.executor.settings == {}


def test_name_defaults_to_file_stem(tmp_path):
    data = minimal()
    del data["name"]
    f = tmp_path / "my-scenario.yaml"
    f.write_text(json.dumps(data))      # JSON is YAML
    assert load_scenario(f).name == "my-scenario"


def test_dependencies_as_a_list_of_lines():
    data = minimal()
    data["dags"][0]["tasks"] = {k: {"duration": 1} for k in "ABC"}
    data["dags"][0]["dependencies"] = ["A >> B", "B >> C"]
    dag = scenario_from_dict(data).dags[0]
    assert [t.task_id for t in dag.topological_order()] == ["A", "B", "C"]


# -- the seed diamond --------------------------------------------------------------------------
def test_seed_diamond():
    s = load_scenario(SCENARIOS / "seed-diamond.yaml")
    assert isinstance(s, Scenario)
    assert (s.name, s.seed, s.horizon, s.profile) == ("seed-diamond", 7, 7200.0, "airflow-2.10")
    assert s.source == str(SCENARIOS / "seed-diamond.yaml")
    assert s.airflow.parallelism == 32 and s.airflow.max_active_tasks_per_dag == 16
    assert s.executor.kind == "local"
    (dag,) = s.dags
    assert dag.dag_id == "diamond" and dag.schedule == sch.Interval(600.0) and dag.max_active_runs == 16
    down = {t.task_id: sorted(d.task_id for d in t.downstream) for t in dag.tasks.values()}
    assert down == {"T1": ["T2", "T3"], "T2": ["T4"], "T3": ["T4"], "T4": []}
    assert dag["T1"].duration == dist.Constant(30.0)
    assert dag["T2"].duration == dist.LogNormal(60.0, 0.5)
    assert (dag["T2"].queue, dag["T2"].retries) == ("high_cpu", 2)
    assert dag["T3"].duration == dist.Exponential(45.0) and dag["T3"].failure_probability == 0.01
    assert dag["T4"].duration == dist.Uniform(5.0, 15.0) and dag["T4"].trigger_rule == "all_done"
    assert dag.critical_path() == pytest.approx(30 + 60 + 10)


# -- profiles ----------------------------------------------------------------------------------
def test_builtin_profiles():
    assert {"ideal", "airflow-2.10"} <= set(list_profiles())
    ideal = load_profile("ideal")
    assert ideal["overheads"]["db_query_time"] == 0 and ideal["overheads"]["scheduler_host_cores"] is None
    assert ideal["airflow"]["max_tis_per_query"] == 0
    real = load_profile("airflow-2.10")
    assert real["airflow"]["max_tis_per_query"] == 16 and real["overheads"]["process_start_interpreter"] == 1.4


def test_profile_then_scenario_keys():
    data = minimal()
    data["profile"] = "ideal"
    data["airflow"] = {"parallelism": 4}
    data["overheads"] = {"db_query_time": "5ms", "scheduler_host_cores": 2}
    s = scenario_from_dict(data)
    assert s.airflow.parallelism == 4                      # scenario
    assert s.airflow.max_tis_per_query == 0                # profile
    assert s.airflow.max_active_runs_per_dag == 16         # neither: Airflow's default
    assert s.overheads.db_query_time == 0.005 and s.overheads.scheduler_host_cores == 2
    assert s.overheads.process_start_fork == 0


def test_scenario_can_set_a_profile_value_back_to_null():
    data = minimal()
    data["overheads"] = {"scheduler_host_cores": None}
    assert scenario_from_dict(data).overheads.scheduler_host_cores is None


def test_user_profile_extends_a_builtin(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.yaml").write_text(
        "extends: airflow-2.10\nairflow: {pools: {etl: 8}}\noverheads: {db_query_time: 10ms}\n")
    (tmp_path / "profiles" / "child.yaml").write_text(
        "extends: mine.yaml\nairflow: {pools: {ml: 2}}\n")
    data = minimal(pool="ml")
    data["profile"] = "profiles/child.yaml"
    (tmp_path / "s.yaml").write_text(json.dumps(data))
    s = load_scenario(tmp_path / "s.yaml")         # profile path relative to the scenario's folder
    assert s.overheads.db_query_time == 0.01                 # mine.yaml
    assert s.overheads.process_start_interpreter == 1.4      # airflow-2.10
    assert s.airflow.pools == {"etl": 8, "ml": 2}            # pools merge by name
    assert load_profile("mine.yaml", tmp_path / "profiles")["overheads"]["db_query_time"] == 0.01


def test_profile_errors_name_the_profile_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("airflow: {paralelism: 4}\n")
    with pytest.raises(ScenarioError) as info:
        load_profile(str(bad))
    assert str(info.value) == f"{bad}: airflow: unknown key 'paralelism'; did you mean 'parallelism'?"

    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ScenarioError, match=r"extends: profiles extend each other in a loop: "
                                            r"a.yaml -> b.yaml -> a.yaml"):
        load_profile("a.yaml", tmp_path)

    (tmp_path / "c.yaml").write_text("extends: nosuch\n")
    with pytest.raises(ScenarioError) as info:
        load_profile("c.yaml", tmp_path)
    assert info.value.file == str(tmp_path / "c.yaml")
    assert info.value.problems[0][0] == "extends" and "unknown profile 'nosuch'" in str(info.value)


def test_profile_flag_overrides_the_file():
    s = load_scenario(SCENARIOS / "seed-diamond.yaml", profile="ideal")
    assert s.profile == "ideal" and s.overheads.scheduler_loop_base == 0


def test_builtin_profiles_cover_known_keys_only():
    # Every key of the shipped profiles exists in the config dataclasses (validated by loading).
    for name in list_profiles():
        prof = load_profile(name)
        assert set(prof["airflow"]) <= set(field_names(AirflowConfig))
        assert set(prof["overheads"]) <= set(field_names(Overheads))


def test_sections_mirror_the_config_dataclasses():
    # If the engine adds a setting, the schema must learn it too (and vice versa).
    assert list(AirflowSection.model_fields) == field_names(AirflowConfig)
    assert list(OverheadsSection.model_fields) == field_names(Overheads)
    for cls, section in ((AirflowConfig, AirflowSection), (Overheads, OverheadsSection)):
        for f in fields(cls):
            assert section.model_fields[f.name].default == f.default, f.name


# -- command-line overrides --------------------------------------------------------------------
def test_sets_by_dag_id_index_and_new_keys():
    s = load_scenario(SCENARIOS / "seed-diamond.yaml", sets=[
        "dags.diamond.max_active_runs=3",
        "dags.0.tasks.T1.duration=2m",
        "dags.diamond.tasks.T2.duration.lognormal.cv=1.5",
        "horizon=4h",
        "airflow.parallelism=8",
        "airflow.pools.etl=4",                  # a new pool: pools is a free mapping
        "overheads.db_query_time=5ms",          # a new section
        "dags.diamond.schedule={cron: '0 * * * *'}",
        "description=a: b: c",                  # not YAML: kept as the typed string
    ])
    dag = s.dags[0]
    assert dag.max_active_runs == 3 and dag["T1"].duration == dist.Constant(120.0)
    assert dag["T2"].duration == dist.LogNormal(60.0, 1.5)
    assert s.horizon == 14400.0 and s.airflow.parallelism == 8 and s.airflow.pools == {"etl": 4}
    assert s.overheads.db_query_time == 0.005 and dag.schedule == sch.Cron("0 * * * *")
    assert s.description == "a: b: c"
    assert s.data["dags"][0]["max_active_runs"] == 3


def test_set_dotted_ids(tmp_path):
    data = minimal()
    data["dags"][0]["dag_id"] = "team.etl"
    data["dags"][0]["tasks"] = {"x.y": {"duration": 1}}
    s = scenario_from_dict(data, sets=["dags.team.etl.tasks.x.y.retries=2"])
    assert s.dags[0]["x.y"].retries == 2


def test_set_on_one_anchored_dag_leaves_the_others():
    s = load_scenario(SCENARIOS / "etl-fleet.yaml", sets=["dags.etl_01.tasks.extract.retries=7"])
    assert s.dags[0]["extract"].retries == 7
    assert all(d["extract"].retries == 2 for d in s.dags[1:])


def test_executor_and_seed_flags():
    s = load_scenario(SCENARIOS / "seed-diamond.yaml", seed=99, executor="local")
    assert s.seed == 99 and s.executor.kind == "local"
    s = load_scenario(SCENARIOS / "seed-diamond.yaml", executor="celery")
    assert s.executor.kind == "celery"
    assert s.executor.settings["celery"]["worker_concurrency"] == 16        # from the profile
    k = load_scenario(SCENARIOS / "seed-diamond.yaml", executor="kubernetes")
    assert k.executor.settings["kubernetes"]["worker_pods_creation_batch_size"] == 1   # the profile's
    with pytest.raises(ScenarioError, match="executor.kind"):
        load_scenario(SCENARIOS / "seed-diamond.yaml", executor="nomad")


def test_executor_settings_are_kept():
    from sim.scenario import schema
    data = minimal()
    data["executor"] = {"kind": "kubernetes", "kubernetes": {"worker_pods_creation_batch_size": 16}}
    spec = schema.ScenarioFile.model_validate(data)
    assert spec.executor.settings() == {"kubernetes": {"worker_pods_creation_batch_size": 16}}
    assert scenario_from_dict(data).executor.settings["kubernetes"]["worker_pods_creation_batch_size"] == 16
    data["executor"] = {"kind": "local", "host_cores": 8}
    assert scenario_from_dict(data).executor.settings == {"host_cores": 8.0}


def test_error_format():
    e = ScenarioError("scenarios/x.yaml", [("dags[0].tasks.T2.duration", "must be >= 0 (got -5)"),
                                           ("", "the file is empty")])
    assert str(e) == ("scenarios/x.yaml: dags[0].tasks.T2.duration: must be >= 0 (got -5)\n"
                      "scenarios/x.yaml: the file is empty")
    assert str(ScenarioError(None, [("seed", "bad")])) == "seed: bad"


# -- the library and the JSON Schema -----------------------------------------------------------
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def test_library_is_complete():
    names = {p.stem for p in SHIPPED}
    assert {"seed-diamond", "etl-fleet", "wide-fanout", "mmc-poisson"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_load(path):
    s = load_scenario(path)
    assert s.name == path.stem
    assert s.description and "\n" not in s.description
    for dag in s.dags:
        dag.topological_order()


def test_library_shapes():
    fleet = load_scenario(SCENARIOS / "etl-fleet.yaml")
    assert len(fleet.dags) == 20 and len({d.dag_id for d in fleet.dags}) == 20
    assert fleet.horizon == 86400.0
    assert all(isinstance(d.schedule, sch.Cron) and list(d.tasks) == ["extract", "transform", "load"]
               for d in fleet.dags)
    (wide,) = load_scenario(SCENARIOS / "wide-fanout.yaml").dags
    assert len(wide) == 202 and len(wide["start"].downstream) == 200 and len(wide["end"].upstream) == 200


def test_mmc_description_matches_theory():
    from sim.theory import mmc_wq
    s = load_scenario(SCENARIOS / "mmc-poisson.yaml")
    (dag,) = s.dags
    (task,) = dag.tasks.values()
    assert s.profile == "ideal" and isinstance(task.duration, dist.Exponential)
    lam, mu, c = dag.schedule.per_hour / 3600, 1 / task.duration.mean, s.airflow.parallelism
    wq = mmc_wq(lam, mu, c)
    assert f"c={c}" in s.description and f"Wq={wq:.2f} s" in s.description
    assert math.isclose(wq, 30.566, abs_tol=1e-3)


def test_json_schema_file_is_up_to_date():
    committed = (SCENARIOS / "scenario.schema.json").read_text()
    assert committed == json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", \
        "regenerate: python -c 'from sim.scenario import write_json_schema as w; " \
        "w(\"scenarios/scenario.schema.json\")'"


def test_json_schema_accepts_the_library():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml
    schema = json_schema()
    for path in SHIPPED:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


# -- Airflow's older setting names (issue #12) ----------------------------------------------------
OLD_NAMES = """name: names
horizon: 1h
airflow: {{{airflow}}}
executor: {{kind: celery, worker_pools: [{{name: w, concurrency: 2, crash_rate_per_hour: 6}}]}}
dags:
  - dag_id: d
    schedule: {{every: 10m}}
    tasks: {{a: {{duration: 30}}, b: {{duration: 30}}, c: {{duration: 30}}}}
"""


def test_airflow_older_setting_names_run_identically_with_a_note(tmp_path, capsys):
    from sim.cli import main
    old = tmp_path / "old.yaml"
    new = tmp_path / "new.yaml"
    old.write_text(OLD_NAMES.format(airflow="scheduler_zombie_task_threshold: 120, zombie_detection_interval: 7, "
                                            "stalled_task_timeout: 90, dag_concurrency: 2"))
    new.write_text(OLD_NAMES.format(airflow="task_instance_heartbeat_timeout: 120, "
                                            "task_instance_heartbeat_timeout_detection_interval: 7, "
                                            "task_queued_timeout: 90, max_active_tasks_per_dag: 2"))
    for f in (old, new):
        assert main(["run", str(f), "--no-progress", "--no-charts", "--out", str(tmp_path / f.stem)]) == 0
    err = capsys.readouterr().err
    assert "airflow.scheduler_zombie_task_threshold is Airflow's older name for " \
           "airflow.task_instance_heartbeat_timeout" in err and str(old) in err
    for name in ("task_instances.csv", "dag_runs.csv", "transitions.csv"):
        assert (tmp_path / "old" / name).read_bytes() == (tmp_path / "new" / name).read_bytes(), name
    s = load_scenario(old)
    assert s.airflow.task_instance_heartbeat_timeout == 120 and s.airflow.max_active_tasks_per_dag == 2


def test_older_name_in_set_and_both_names_at_once(tmp_path, capsys):
    from sim.cli import main
    f = tmp_path / "s.yaml"
    f.write_text(OLD_NAMES.format(airflow="parallelism: 4"))
    s = load_scenario(f, sets=["airflow.processor_poll_interval=2"])
    assert s.airflow.scheduler_idle_sleep_time == 2
    f.write_text(OLD_NAMES.format(airflow="dag_concurrency: 2, max_active_tasks_per_dag: 3"))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert "airflow.dag_concurrency" in err and "keep one" in err and "Traceback" not in err
