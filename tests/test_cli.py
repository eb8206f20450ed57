"""The command line: runs, results on disk, exit codes, determinism."""
import argparse
import json
import subprocess

import pytest
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


def test_bench_end_to_end_times_the_results_folder(capsys):
    assert main(["bench", "--end-to-end", "--task-instances", "2000", "--executor", "celery", "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["executor"] == "celery" and fig["task_instances"] == 2000
    assert fig["simulation_seconds"] > 0 and fig["results_seconds"] > 0
    assert fig["end_to_end_seconds"] == pytest.approx(fig["simulation_seconds"] + fig["results_seconds"], abs=0.02)
    assert fig["overhead_percent"] == pytest.approx(100 * fig["results_seconds"] / fig["simulation_seconds"], rel=0.1)
    assert fig["results_mib"] > 1          # the CSVs, the charts and the report were written


def test_bench_end_to_end_all_executors_in_fresh_processes(capsys):
    assert main(["bench", "--end-to-end", "--task-instances", "200", "--executor", "all"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["executor", "task"]
    assert [line.split()[0] for line in out[1:4]] == ["local", "celery", "kubernetes"]
    assert all(line.split()[1] == "200" for line in out[1:4]) and "target: at most 25 %" in out[4]


# -- rough edges a new user hits (issue #12) -------------------------------------------------------
def _walk(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _walk(sub)


def test_no_option_is_prefix_matched_and_every_option_has_help():
    from sim.cli import _parser
    parsers = list(_walk(_parser()))
    assert len(parsers) >= 10
    for p in parsers:
        assert p.allow_abbrev is False, p.prog
        for action in p._actions:
            if action.option_strings:
                assert action.help, f"{p.prog} {action.option_strings} has no help"


def test_compare_seed_is_the_first_seed_not_a_prefix_of_seeds(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(DIAMOND), "--seed", "7", "--seeds", "2", "--executors", "local",
                 "--jobs", "1", "--no-charts", "--out", str(out)]) == 0
    runs = (out / "runs.csv").read_text().splitlines()
    seeds = [line.split(",")[1] for line in runs[1:]]
    assert seeds == ["7", "8"]
    with pytest.raises(SystemExit) as e:
        main(["compare", str(DIAMOND), "--seedz", "3"])
    assert e.value.code == 2


def test_version_and_debug_after_the_subcommand(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("sim ")
    assert main(["run", str(DIAMOND), "--no-progress", "--no-charts", "--out", str(tmp_path / "o"), "--debug"]) == 0
    assert main(["validate", str(DIAMOND), "--debug"]) == 0


def test_sweep_with_failed_points_prints_the_rest_and_exits_non_zero(tmp_path, capsys, monkeypatch):
    import sim.sweep as sw
    real = sw._one

    def flaky(args):
        if "airflow.parallelism=2" in args[3]:
            raise RuntimeError("boom")
        return real(args)
    monkeypatch.setattr(sw, "_one", flaky)
    code = main(["sweep", str(DIAMOND), "--grid", "airflow.parallelism=1,2", "--seeds", "1", "--jobs", "1",
                 "--no-charts", "--out", str(tmp_path / "sw")])
    io = capsys.readouterr()
    assert code == 1                                # a bug-like failure; a user error would be 2
    assert "1 failed" in io.out and "makespan_mean_s" in io.out
    assert "failed: seed" in io.err and "boom" in io.err
