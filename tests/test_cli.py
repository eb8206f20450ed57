"""The command line: runs, results on disk, exit codes, determinism."""
import json
import subprocess
import sys
from pathlib import Path


from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
DIAMOND = ROOT / "scenarios" / "seed-diamond.yaml"


def test_run_writes_results_atomically(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", str(DIAMOND), "--out", str(out), "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} == {".sim-result", "task_instances.csv", "dag_runs.csv", "transitions.csv",
                                              "summary.json", "charts", "report.html"}
    assert {p.name for p in (out / "charts").iterdir()} == {"delay_breakdown.png", "busy_slots.png",
                                                          "gantt_first_run.png"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dag_runs"]["count"] == 12
    header = (out / "task_instances.csv").read_text().splitlines()[0].split(",")
    for col in ("dag_id", "run_id", "task_id", "map_index", "try_number", "state", "executor", "queue",
                "pool", "worker", "ready_at", "scheduled_at", "queued_at", "launched_at", "started_at", "ended_at"):
        assert col in header
    assert (out / "dag_runs.csv").read_text().splitlines()[0].startswith("dag_id,run_id")
    # no temporary folders left beside the results
    assert [p.name for p in tmp_path.iterdir()] == ["res"]
    assert "results in" in capsys.readouterr().out


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path):
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert main(["run", str(DIAMOND), "--out", str(tmp_path / name), "--no-progress", "--seed", seed]) == 0
    for f in ("task_instances.csv", "dag_runs.csv", "transitions.csv", "summary.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "task_instances.csv").read_bytes() != (tmp_path / "c" / "task_instances.csv").read_bytes()


def test_set_overrides_a_setting(tmp_path):
    assert main(["run", str(DIAMOND), "--out", str(tmp_path / "o"), "--no-progress",
                 "--set", "airflow.parallelism=1", "--set", "dags.diamond.max_active_runs=1"]) == 0
    tis = (tmp_path / "o" / "task_instances.csv").read_text().splitlines()
    assert len(tis) == 1 + 48


def test_bad_input_exits_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nairflow: {parallelism: 0}\ndags: []\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "parallelism" in err and "Traceback" not in err
    assert main(["run", str(tmp_path / "missing.yaml"), "--no-progress"]) == 2
    assert main(["run", str(DIAMOND), "--set", "airflow.paralelism=3", "--no-progress"]) == 2


def test_validate_ok_and_profile_listing(capsys):
    assert main(["validate", str(DIAMOND)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["profile"]) == 0
    assert {"ideal", "airflow-2.10"} <= set(capsys.readouterr().out.split())
    assert main(["profile", "airflow-2.10"]) == 0
    assert "parallelism: 32" in capsys.readouterr().out


def test_python_dash_m_and_console_script():
    r = subprocess.run([sys.executable, "-m", "sim", "validate", str(DIAMOND)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_bench_prints_its_figures(capsys):
    assert main(["bench", "--task-instances", "2000", "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["task_instances"] >= 2000 and fig["task_instances_per_second"] > 0 and fig["peak_memory_mib"] > 0
