"""The real-Airflow harness's pure parts (bench/real_airflow/harness.py); running it needs Airflow,
PostgreSQL and Redis and minutes per configuration, so CI does not."""
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "bench" / "real_airflow" / "harness.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("harness", HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("matrix", sorted((ROOT / "bench" / "real_airflow" / "matrices").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_matrices_are_well_formed(matrix):
    m = yaml.safe_load(matrix.read_text())
    names = [c["name"] for c in m["configurations"]]
    assert len(names) == len(set(names)) and m["runs"] >= 1
    dag_file = (ROOT / "bench" / "real_airflow" / "bench_dags.py").read_text()
    for c in m["configurations"]:
        assert c["executor"] in ("LocalExecutor", "CeleryExecutor")
        for dag in c.get("dags") or m["dags"]:
            assert f'DAG("{dag}"' in dag_file, dag
            if dag == "pooled":                    # its tasks name a pool the matrix must make
                assert m["pools"]["bench_pool"] >= 1


def test_the_four_shared_dags_are_unchanged():
    """New measurements must compare with data/airflow-runs: the first four DAGs are identical."""
    shared = (ROOT / "data" / "airflow-runs" / "bench_dags.py").read_text()
    ours = (ROOT / "bench" / "real_airflow" / "bench_dags.py").read_text()
    for dag in ("diamond", "fanout", "chain", "fanout0"):
        start = shared.index(f'with DAG("{dag}"')
        block = shared[start:shared.index("\n\n", start) if "\n\n" in shared[start:] else None].strip()
        lines = [line for line in block.splitlines() if not line.strip().startswith("#")]
        for line in lines:
            assert line in ours, line


def test_config_txt_picks_the_settings_calibration_reads(harness):
    listing = "[core]\nexecutor = CeleryExecutor\nparallelism = 16\n[celery]\nworker_concurrency = 4\n" \
              "# a comment = no\n[scheduler]\nscheduler_idle_sleep_time = 1\n"
    text = harness._config_txt(listing)
    assert "core.executor = CeleryExecutor\n" in text and "core.parallelism = 16\n" in text
    assert "celery.worker_concurrency = 4\n" in text and "scheduler.scheduler_idle_sleep_time = 1\n" in text
    assert "scheduler.standalone_dag_processor = <not present in this Airflow version>" in text


def test_contention_window_and_environment(harness, tmp_path):
    s = harness.Sampler()
    s.samples = [(10.0, 1.0, 0.1, 0.5), (11.0, 1.2, 0.5, 0.6), (12.0, 0.8, 0.0, 0.7), (20.0, 0.0, 2.0, 1.0)]
    c = s.between(9.5, 11.5)
    assert c["n_samples_1s"] == 3 and c["other_cores_mean"] == 0.2 and c["other_cores_max"] == 0.5
    s.samples = [(10.0, 0.5, 0.1, 3.0, 1.9), (11.0, 0.7, 0.1, 3.0, 2.0)]
    assert s.between(9.5, 10.5)["busy_cores_mean"] == 1.95     # the whole machine's busy cores
    # the machine's busy cores, sampled for real: between 0 and the number of cores
    live = harness.Sampler()
    live.start()
    time.sleep(2.3)
    live.done.set()
    live.join()
    assert live.samples and all(0.0 <= x[4] <= os.cpu_count() + 0.1 for x in live.samples)
    env = harness.env_for(tmp_path, {"executor": "CeleryExecutor", "parallelism": 4, "worker_concurrency": 2,
                                     "airflow_cfg": {"scheduler.max_tis_per_query": 8}})
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4" and env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "2"
    assert env["AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY"] == "8"
    assert "127.0.0.1" in env["AIRFLOW__CELERY__BROKER_URL"] and "127.0.0.1" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_airflow_3_has_its_own_venv_database_and_api_settings(harness, tmp_path):
    try:
        harness.use_version("3")
        env = harness.env_for(tmp_path, {"executor": "LocalExecutor", "parallelism": 8})
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/airflow3")
        assert str(tmp_path / "venv3" / "bin") in env["PATH"] and env["AIRFLOW_HOME"].endswith("airflow3_home")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://127.0.0.1:")
        assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
        af3 = harness.dag_file_text()
        assert "from airflow.sdk import DAG" in af3 and "from airflow import DAG" not in af3
        for dag in ("diamond", "chain", "fanout", "fanout0", "cpufanout", "widefan", "etl", "pooled", "capped",
                    "retry", "sensed"):
            assert f'DAG("{dag}"' in af3
        assert "from airflow.providers.standard.sensors.python import PythonSensor" in af3
    finally:
        harness.use_version("2.10")
    env = harness.env_for(tmp_path, {})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/airflow")
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in env


def _module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "real_airflow" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_executor_events_reads_both_log_formats_and_measures_the_refill(tmp_path):
    ev = _module("executor_events")
    (tmp_path / "task_instances.csv").write_text(
        "dag_id,run_id,task_id,try_number,queued_dttm,end_date\n"
        "f,r1,a,1,2026-12-05T09:00:00+00:00,2026-12-05T09:00:01.000+00:00\n"
        "f,r1,b,1,2026-12-05T09:00:02.500+00:00,2026-12-05T09:00:03.000+00:00\n"
        "f,r2,a,1,2026-12-05T09:01:00+00:00,2026-12-05T09:01:01.000+00:00\n")
    key = "TaskInstanceKey(dag_id='f', task_id='a', run_id='{}', try_number=1, map_index=-1)"
    log = tmp_path / "scheduler.log"
    log.write_text(
        "[2026-12-05T09:00:01.400+0000] {scheduler_job_runner.py:776} INFO - Received executor event "
        f"with state success for task instance {key.format('r1')}\n"
        "2026-12-05T09:01:01.200000Z [info     ] Received executor event with state success for task "
        f"instance {key.format('r2')} [airflow.jobs.scheduler_job_runner]\n")
    table = ev.events_table(tmp_path, log).set_index("run_id")
    assert list(table.index) == ["r1", "r2"]
    assert table.loc["r1", "end_to_event"] == pytest.approx(0.4)
    assert table.loc["r1", "event_to_next_queued"] == pytest.approx(1.1)     # b queued 1.1 s later
    assert table.loc["r2", "end_to_event"] == pytest.approx(0.2)
    assert table["event_to_next_queued"].isna()["r2"]                          # nothing queued after


def test_celery_handoff_pairs_each_try_with_the_first_execution_after_its_queueing(tmp_path):
    ch = _module("celery_handoff")
    (tmp_path / "task_instances.csv").write_text(
        "dag_id,run_id,task_id,try_number,queued_dttm,start_date\n"
        "c,r1,c0,1,2026-12-05T09:00:00.000+00:00,2026-12-05T09:00:00.300+00:00\n"
        "c,r1,c0,2,2026-12-05T09:01:00.000+00:00,2026-12-05T09:01:00.350+00:00\n")
    line = ("[2026-12-05 {}: INFO/ForkPoolWorker-3] [6f0c-aa] Executing command in Celery: ['airflow', "
            "'tasks', 'run', 'c', 'c0', 'r1', '--local', '--subdir', 'DAGS_FOLDER/bench_dags.py']\n")
    log = tmp_path / "worker0.log"
    log.write_text(line.format("09:00:00,008") + "[2026-12-05 09:00:05,000: INFO/MainProcess] other\n"
                   + line.format("09:01:00,010"))
    table = ch.handoff_table(tmp_path, [log]).set_index("try_number")
    assert list(table.index) == [1, 2]
    assert table.loc[1, "queued_to_executing"] == pytest.approx(0.008)
    assert table.loc[1, "executing_to_started"] == pytest.approx(0.292)
    assert table.loc[2, "queued_to_executing"] == pytest.approx(0.010)     # not try 1's execution


def test_task_exit_path_reads_each_steps_first_line_after_the_rows_end_in_the_tries_own_log(tmp_path):
    tp = _module("task_exit_path")
    (tmp_path / "task_instances.csv").write_text(
        "dag_id,run_id,task_id,try_number,end_date,updated_at\n"
        "c,r1,c0,1,2026-12-07T01:52:08.837+00:00,2026-12-07T01:52:08.849+00:00\n"
        "c,r1,c9,1,2026-12-07T01:52:20.000+00:00,2026-12-07T01:52:20.010+00:00\n"
        "c,r1,c5,1,2026-12-07T01:52:30.000+00:00,2026-12-07T01:52:30.010+00:00\n"
        "c,r1,s,1,2026-12-07T01:52:40.0004+00:00,2026-12-07T01:52:40.010+00:00\n")
    logs = tmp_path / "logs"
    for task, lines in {"c0": ["01:52:08.871] {local_task_job_runner.py:266} INFO - Task exited with return code 0",
                               "01:52:08.896] {taskinstance.py:3901} INFO - 1 downstream tasks scheduled from "
                               "follow-on schedule check",
                               "01:52:09.500] {x.py:1} INFO - Task exited with return code 0"],
                        "c9": ["01:52:20.030] {local_task_job_runner.py:266} INFO - Task exited with return code 0"],
                        # a sensor rescheduled between pokes: one log for the try, the row its last poke's
                        "s": ["01:52:35.020] {local_task_job_runner.py:266} INFO - Task exited with return code 0",
                              "01:52:35.040] {taskinstance.py:3901} INFO - 0 downstream tasks scheduled from "
                              "follow-on schedule check",
                              "01:52:40.025] {local_task_job_runner.py:266} INFO - Task exited with return code 0",
                              "01:52:40.045] {taskinstance.py:3901} INFO - 1 downstream tasks scheduled from "
                              "follow-on schedule check"]}.items():
        d = logs / "dag_id=c" / "run_id=r1" / f"task_id={task}"
        d.mkdir(parents=True)
        (d / "attempt=1.log").write_text("".join(f"[2026-12-07T{x.replace(']', '+0000]', 1)}\n" for x in lines))
    t = tp.exit_path_table(tmp_path, logs).set_index("task_id")
    assert list(t.index) == ["c0", "c9", "s"]                # c5 has no log: left out
    assert t.loc["c0", "end_to_committed"] == pytest.approx(0.012)
    assert t.loc["c0", "end_to_exited"] == pytest.approx(0.034)   # the first such line
    assert t.loc["c0", "end_to_mini_done"] == pytest.approx(0.059)
    assert t.loc["c9", "end_to_exited"] == pytest.approx(0.030) and np.isnan(t.loc["c9", "end_to_mini_done"])
    assert t.loc["s", "end_to_exited"] == pytest.approx(0.0246)       # the last poke's, not the first's
    assert t.loc["s", "end_to_mini_done"] == pytest.approx(0.0446)


def test_task_start_path_pairs_a_parse_line_with_the_one_try_waiting_for_it(tmp_path):
    sp = _module("task_start_path")
    (tmp_path / "task_instances.csv").write_text(
        "dag_id,run_id,task_id,try_number,queued_dttm,start_date\n"
        "c,r1,c0,1,2026-12-07T01:52:07.780+00:00,2026-12-07T01:52:08.130+00:00\n"
        "c,r1,c1,1,2026-12-07T01:52:09.000+00:00,2026-12-07T01:52:09.300+00:00\n")
    hand = "] {local_executor.py:93} INFO - QueuedLocalWorker running ['airflow', 'tasks', 'run', 'c', '{}', 'r1', '--local']"
    local = tmp_path / "scheduler.log"
    local.write_text("".join(f"[2026-12-07T{t}+0000{x}\n" for t, x in [
        ("01:52:07.783", hand.replace("{}", "c0")),
        ("01:52:07.810", "] {dagbag.py:588} INFO - Filling up the DagBag from /dags/bench_dags.py"),
        ("01:52:08.041", "] {task_command.py:467} INFO - Running <TaskInstance: c.c0 r1 [queued]> on host vm")]))
    celery = tmp_path / "worker0.log"                      # Celery's log format, for the other try
    celery.write_text("[2026-12-07 01:52:09,010: INFO/ForkPoolWorker-1] [6f0c] Executing command in Celery: "
                      "['airflow', 'tasks', 'run', 'c', 'c1', 'r1', '--local']\n"
                      "[2026-12-07 01:52:09,050: INFO/ForkPoolWorker-1] Filling up the DagBag from /dags/b.py\n"
                      "[2026-12-07 01:52:09,230: INFO/ForkPoolWorker-1] Running <TaskInstance: c.c1 r1 [queued]> on host vm\n")
    t = sp.start_path_table(tmp_path, [local, celery]).set_index("task_id")
    assert t.loc["c0", "queued_to_handed"] == pytest.approx(0.003)
    assert t.loc["c0", "handed_to_parsing"] == pytest.approx(0.027)
    assert t.loc["c0", "parsing"] == pytest.approx(0.231)
    assert t.loc["c0", "parsed_to_started"] == pytest.approx(0.089)
    assert t.loc["c1", "queued_to_handed"] == pytest.approx(0.010) and t.loc["c1", "parsing"] == pytest.approx(0.18)


def test_task_start_path_leaves_the_parse_line_unknown_while_several_tries_wait_for_it(tmp_path):
    """The DagBag line names neither its try nor its process: with two tries handed off together (a
    fan-out's), it cannot be told whose it is, so their split is NaN; hand-off to parsed is still
    known, as both ends name the try."""
    sp = _module("task_start_path")
    (tmp_path / "task_instances.csv").write_text(
        "dag_id,run_id,task_id,try_number,queued_dttm,start_date\n"
        "f,r1,p0,1,2026-12-07T05:00:00.000+00:00,2026-12-07T05:00:02.000+00:00\n"
        "f,r1,p1,1,2026-12-07T05:00:00.000+00:00,2026-12-07T05:00:02.500+00:00\n"
        "f,r1,end,1,2026-12-07T05:00:05.000+00:00,2026-12-07T05:00:05.400+00:00\n")
    hand = "] {local_executor.py:93} INFO - QueuedLocalWorker running ['airflow', 'tasks', 'run', 'f', '{}', 'r1', '--local']"
    bag = "] {dagbag.py:588} INFO - Filling up the DagBag from /dags/bench_dags.py"
    ran = "] {task_command.py:467} INFO - Running <TaskInstance: f.{} r1 [queued]> on host vm"
    log = tmp_path / "scheduler.log"
    log.write_text("".join(f"[2026-12-07T{t}+0000{x}\n" for t, x in [
        ("05:00:00.010", hand.replace("{}", "p0")), ("05:00:00.020", hand.replace("{}", "p1")),
        ("05:00:00.100", bag), ("05:00:00.150", bag),
        ("05:00:01.700", ran.replace("{}", "p1")), ("05:00:01.800", ran.replace("{}", "p0")),
        ("05:00:05.010", hand.replace("{}", "end")), ("05:00:05.040", bag),
        ("05:00:05.300", ran.replace("{}", "end"))]))
    t = sp.start_path_table(tmp_path, [log]).set_index("task_id")
    assert np.isnan(t.loc["p0", "parsing"]) and np.isnan(t.loc["p1", "handed_to_parsing"])
    assert t.loc["p0", "handed_to_parsed"] == pytest.approx(1.79)
    assert t.loc["p1", "parsed_to_started"] == pytest.approx(0.8)
    assert t.loc["end", "parsing"] == pytest.approx(0.26)            # alone again: known
    assert t.loc["end", "handed_to_parsed"] == pytest.approx(0.29)


def test_a_loaded_start_stretches_its_db_and_job_step_about_as_much_as_its_parse():
    """data/airflow-runs/start-load (LocalExecutor p16 and p32, the fan-outs' 40 tasks at once, the
    diamond's alone; 264 tries each, every one paired in the scheduler's log): from the hand-off to
    the parsed line (the fork, set-up and the DAG file's parse: CPU) a loaded try took 7.4x and 15.4x
    a lone one, and from there to start_date (the LocalTaskJob's start: DB round trips, the job's
    row) 6.5x and 14.4x, about as much. On a 2-core host with PostgreSQL beside it, the start's waiting
    contends like its computing."""
    import pandas as pd
    for config, at_least in (("local-p16", 5.0), ("local-p32", 10.0)):
        d = pd.read_csv(ROOT / "data/airflow-runs/start-load" / config / "task_start_path.csv")
        assert len(d) == 264
        lone = d["task_id"].isin(["t1", "t4", "start", "end"])
        loaded = d["dag_id"].isin(["fanout", "fanout0"]) & ~lone
        stretch = {c: d.loc[loaded, c].median() / d.loc[lone, c].median()
                   for c in ("handed_to_parsed", "parsed_to_started")}
        assert stretch["handed_to_parsed"] >= at_least, stretch
        assert stretch["parsed_to_started"] >= 0.7 * stretch["handed_to_parsed"], stretch


def test_the_committed_exit_path_medians_are_what_the_profile_says():
    """airflow-2.10's task_exit_latency and mini_scheduler_cpu are read off exit-path's task logs:
    recompute them from the committed task_exit_path.csv files (the profile's comments give how)."""
    import pandas as pd
    from sim.scenario import load_profile
    d = pd.concat([pd.read_csv(f) for f in sorted((ROOT / "data/airflow-runs/exit-path").glob("*/task_exit_path.csv"))])
    chain = d[d["dag_id"] == "chain"]
    assert len(chain) == 160
    ov = load_profile("airflow-2.10")["overheads"]
    four = 4 * 0.00171                                       # 4 queries at db_query_time when measured
    assert ov["task_exit_latency"] == pytest.approx(chain["end_to_exited"].median() - four, abs=2e-4)
    mini = chain["end_to_mini_done"] - chain["end_to_exited"]
    assert ov["mini_scheduler_cpu"] == pytest.approx((mini.median() - four) * 1.226, abs=2e-4)
    # a leaf's (c9: nothing to schedule), which the model does not run, about half a non-leaf's
    # (background, "The mini-scheduler")
    leaf = mini[chain["task_id"] == "c9"]
    assert leaf.notna().sum() == 16 and leaf.median() == pytest.approx(0.0165)
    assert mini[chain["task_id"] != "c9"].median() == pytest.approx(0.0300)
    # Celery's preloaded imports: hand-off line to start_date, LocalExecutor worker against Celery child
    way_in = {}
    for executor in ("local", "celery"):
        d = pd.concat([pd.read_csv(f) for f in sorted((ROOT / "data/airflow-runs/exit-path").glob(
            f"{executor}-*/task_start_path.csv"))])
        c = d[d["dag_id"] == "chain"]
        assert len(c) == 80
        way_in[executor] = (c["handed_to_parsing"] + c["parsing"] + c["parsed_to_started"]).median()
    celery = load_profile("airflow-2.10")["celery"]
    assert celery["worker_preload_cpu"] == pytest.approx((way_in["local"] - way_in["celery"]) * 1.226, abs=5e-4)


def test_machine_yaml_names_the_session_calibration_reads(harness, tmp_path):
    """Each configuration's machine.yaml carries its session (calibrate-all fits one cpu_speed per
    session) and a CPU probe, a positive time that grows with the work asked."""
    from sim.calibration.joint import _session
    small, big = harness.cpu_probe(loops=50_000, repeat=3), harness.cpu_probe(loops=400_000, repeat=3)
    assert 0 < small < big
    text = harness.machine_yaml("af210-wide-2026-12-05T09:13Z", small, big, harness.steal_seconds())
    doc = yaml.safe_load(text)
    assert doc["cores"] == os.cpu_count() and doc["cpu_probe_seconds_before"] == small
    folder = tmp_path / "runs" / "local-p4"
    folder.mkdir(parents=True)
    assert _session(folder) == "runs"                      # no record: one session per results folder
    (folder / "machine.yaml").write_text(text)
    assert _session(folder) == "af210-wide-2026-12-05T09:13Z"


def test_runs_an_aborted_attempt_left_unfinished_are_failed_before_the_scheduler_starts(harness, monkeypatch):
    sent = []
    monkeypatch.setattr(harness, "psql", lambda sql, csv_out=False: sent.append(sql) or "2\n")
    assert harness.fail_leftover_runs() == 2
    runs, tis = sent
    assert "update dag_run set state='failed'" in runs and "'running'" in runs and "'queued'" in runs
    assert "update task_instance set state='failed'" in tis and "'running'" in tis
    # and run_configuration does it before it starts the scheduler
    src = HARNESS.read_text()
    assert src.index("fail_leftover_runs()\n        if left") < src.index('procs.start("scheduler"')
    # and the matrix's pools are made (and exported for calibration) before that too
    assert src.index('"airflow", "pools", "set"') < src.index('"airflow", "pools", "export"') \
        < src.index('procs.start("scheduler"')


def test_run_refuses_a_python_without_the_analyses_modules_before_measuring(harness, monkeypatch, tmp_path):
    """Run from the Airflow virtualenv (no NumPy), the harness measured a whole configuration and
    then failed in the logs' analyses, losing the rest of the matrix: it now stops first."""
    import argparse
    monkeypatch.setitem(sys.modules, "numpy", None)          # import numpy raises ImportError
    args = argparse.Namespace(workdir=str(tmp_path / "w"), matrix=str(ROOT / "bench" / "real_airflow" / "matrices"
                                                                        / "features.yaml"),
                              out=str(tmp_path / "out"), add=False, runs=None, only=None)
    with pytest.raises(SystemExit, match="numpy is missing: run the harness with the project's Python"):
        harness.cmd_run(args)
    assert not (tmp_path / "w").exists() and not (tmp_path / "out").exists()


def _tables(text: str) -> dict:
    """process_cpu.py analyze's printed tables: {title: {row: [numbers]}}."""
    out, title = {}, None
    for line in text.splitlines():
        if line.startswith("(") or line.isupper() or line.startswith("COVERAGE") or line.startswith("IDLE"):
            title = line.split(":")[0].strip()
            out.setdefault(title, {})
            continue
        parts = line.split()
        if title and len(parts) > 1:
            try:
                out[title][parts[0]] = [float(x) for x in parts[1:]]
            except ValueError:
                pass
    return out


def test_process_cpu_analysis_of_the_committed_session_says_what_the_readme_does():
    """bench/real_airflow/process_cpu.py analyze on data/airflow-runs/process-cpu (10 s): the
    sampler accounts for most of the machine's busy time, the try's supervisor spends most of its
    CPU starting up before start_date (on the try's path), the raw task during the run, and from
    Celery concurrency 8 to 16 no process spends more per fan-out try (data/airflow-runs/README.md)."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "real_airflow" / "process_cpu.py"), "analyze",
                          str(ROOT / "data" / "airflow-runs" / "process-cpu")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    t = _tables(run.stdout)
    for config in ("celery-p16-c16", "celery-p16-c8", "local-p8"):
        assert t["COVERAGE over the clean runs' windows [queued_at, end_date] (core-seconds; cores = / seconds)"][
            config][3] > 0.85
    chain = t["(b) chain, celery-p16-c8"]
    q_s, s_e = 1, 2                                        # columns [q,s) and [s,e)
    assert chain["task-supervisor"][q_s] == max(row[q_s] for name, row in chain.items() if not name.startswith(
        ("=", "machine", "window", "sampler")))
    assert chain["task-supervisor"][q_s] > 0.3 and chain["task-raw"][s_e] > 0.15 and chain["task-raw"][q_s] < 0.01
    for dag in ("fanout", "fanout0"):
        c16_minus_c8 = {role: row[-1] for role, row in t[f"(c) {dag}"].items()
                        if role in ("task-supervisor", "task-raw", "scheduler", "celery-main", "celery-pool")}
        assert all(abs(d) < 0.02 for d in c16_minus_c8.values()), c16_minus_c8


def test_export_takes_only_the_runs_of_this_invocation(harness, tmp_path, monkeypatch):
    """The database keeps the runs of earlier or aborted attempts at a configuration under the same
    run_id prefix; the export names this invocation's runs (process-cpu's first export took them all)."""
    seen = []

    def psql(sql, csv_out=False):
        seen.append(sql)
        if "information_schema" in sql:
            return "dag_id|character varying\nrun_id|character varying\nstart_date|timestamp with time zone\n"
        return "dag_id,run_id,start_date\n"

    monkeypatch.setattr(harness, "psql", psql)
    harness._export([("chain", "local_p8__chain__0__1"), ("chain", "local_p8__chain__101__2"),
                     ("catchup_local_p16_0", "scheduled__2026-12-07T19:07:00+00:00")], tmp_path)
    selects = [s for s in seen if s.startswith("select dag_id") or " from task_instance " in s or " from dag_run " in s]
    assert len(selects) == 2
    for s in selects:
        # (dag_id, run_id) pairs: a scheduled run's id is unique within its DAG only (catch-up)
        assert ("(dag_id, run_id) in (('chain', 'local_p8__chain__0__1'), ('chain', 'local_p8__chain__101__2'), "
                "('catchup_local_p16_0', 'scheduled__2026-12-07T19:07:00+00:00'))") in s and " like " not in s
    assert (tmp_path / "task_instances.csv").exists() and (tmp_path / "dag_runs.csv").exists()


def test_examine_cost_writes_a_dag_file_that_compiles_and_inverts_the_loops_cpu(monkeypatch):
    """examine_cost.py (the loop's cost per waiting task instance): its DAG file is valid Python
    with the waiting tasks that never run, and cores -> CPU per loop inverts a loop of ``cpu``
    seconds of CPU and DB_WAIT of round trips after a 1 s sleep."""
    monkeypatch.syspath_prepend(str(ROOT / "bench" / "real_airflow"))
    ex = _module("examine_cost")
    text = ex.DAG_FILE.format(sizes=ex.SIZES, hold=ex.HOLD)
    compile(text, "examine_dags.py", "exec")
    assert 'trigger_rule="all_failed"' in text and "sleep 40" in text
    for cpu in (0.0167, 0.54):
        cores = cpu / (1.0 + cpu + ex.DB_WAIT)
        assert abs(ex.cpu_per_loop(cores) - cpu) < 1e-12


def test_catchup_dags_name_the_session_and_tell_the_dag_file_how_many_runs_are_due(harness):
    """A matrix's ``catchup``: the DAG ids carry when they were made (an earlier session's DAG of
    the same id would find its runs in the database), and BENCH_CATCHUP gives the DAG file the
    tag, the runs due, the repetitions, a start_date far enough back and the optional limit."""
    from datetime import datetime, timezone
    env = {}
    assert harness.catchup_dags({"name": "x"}, "local_p16", env) == [] and env == {}
    ids = harness.catchup_dags({"catchup": {"runs": 30, "reps": 2, "max_active_runs": 1}}, "local_p16", env)
    tag, runs, reps, first, limit = env["BENCH_CATCHUP"].split("|")
    assert ids == [f"catchup_{tag}_0", f"catchup_{tag}_1"] and tag.startswith("local_p16_") and len(tag) == 18
    assert (runs, reps, limit) == ("30", "2", "1")
    ago = datetime.now(timezone.utc) - datetime.fromisoformat(first)
    assert 35 * 60 <= ago.total_seconds() < 37 * 60          # all 30 intervals ended, with minutes to spare
    env = {}
    harness.catchup_dags({"catchup": {"runs": 2, "reps": 12, "together": True}}, "c", env)
    assert env["BENCH_CATCHUP"].count("|") == 3               # no limit: the DAGs' default
