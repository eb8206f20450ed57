"""--out never destroys a user's files (issue #12): sim writes into a folder only if it is absent,
empty, or a results folder sim wrote before (the .sim-result marker); everything else is refused
with exit 2 before any work. The new results take the old ones' place in one step, and a killed
run's temporary folder is cleaned up by the next run."""
import os
from pathlib import Path

import pytest

from sim.cli import main
from sim.errors import SimError
from sim.results import MARKER, _exchange, atomic_folder, safe_name

ROOT = Path(__file__).resolve().parents[1]
DIAMOND = ROOT / "scenarios" / "seed-diamond.yaml"
SMALL = "name: {name}\nhorizon: 10m\ndags:\n  - dag_id: d\n    schedule: {{every: 5m}}\n    tasks: {{a: {{duration: 1}}}}\n"


def run(out, capsys, scenario=DIAMOND):
    code = main(["run", str(scenario), "--out", str(out), "--no-progress", "--no-charts"])
    return code, capsys.readouterr()


def test_a_folder_of_the_users_own_files_is_refused_and_left_alone(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    code, io = run(mine, capsys)
    assert code == 2 and "Traceback" not in io.err
    assert str(mine) in io.err and MARKER in io.err
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("kind", ["file", "fifo", "symlink"])
def test_a_file_a_fifo_or_a_link_is_refused(tmp_path, capsys, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("data")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        (tmp_path / "real").mkdir()
        target.symlink_to(tmp_path / "real")
    code, io = run(target, capsys)
    assert code == 2 and "Traceback" not in io.err and str(target) in io.err
    assert target.is_symlink() if kind == "symlink" else target.exists()
    if kind == "fifo":
        import stat
        assert stat.S_ISFIFO(os.stat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_parent_that_is_a_file_or_cannot_be_created_is_exit_2(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, io = run(tmp_path / "f" / "out", capsys)
    assert code == 2 and "is not a folder" in io.err
    code, io = run(Path("/proc/sim-cannot-write-here/out"), capsys)
    assert code == 2 and "Traceback" not in io.err and "/proc/sim-cannot-write-here" in io.err


def test_empty_folder_and_previous_results_are_written(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert run(out, capsys)[0] == 0
    assert (out / MARKER).is_file() and (out / "task_instances.csv").is_file()
    (out / "task_instances.csv").write_text("stale")
    assert run(out, capsys)[0] == 0                        # our own previous results: replaced
    assert (out / "task_instances.csv").read_text() != "stale"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]     # no temporary or old folder left


def test_scenario_names_become_safe_folder_names(tmp_path, capsys, monkeypatch):
    assert safe_name("../../x") == "_.._x" and "/" not in safe_name("/etc/passwd")
    assert safe_name("..") == "scenario" and safe_name(".hidden") == "hidden"
    assert safe_name("a" * 300) == "a" * 100 and safe_name("ok-name_1.2") == "ok-name_1.2"
    f = tmp_path / "evil.yaml"
    f.write_text(SMALL.format(name="'../../escape'"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["run", str(f), "--no-progress", "--no-charts"]) == 0
    written = [p for p in work.rglob(MARKER)]
    assert len(written) == 1 and written[0].parent.parent.parent == work / "results"
    assert not (tmp_path / "escape").exists()


def test_a_killed_runs_temporary_folder_is_cleaned_up(tmp_path, capsys):
    out = tmp_path / "out"
    dead = tmp_path / ".out.sim-tmp-999999999-abc"        # no such process
    live = tmp_path / f".out.sim-tmp-{os.getpid()}-xyz"    # a run still writing
    for d in (dead, live):
        d.mkdir()
        (d / "task_instances.csv").write_text("half")
    assert run(out, capsys)[0] == 0
    assert not dead.exists() and live.exists()


def test_a_failure_while_writing_leaves_the_previous_results(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as tmp:
            (tmp / "task_instances.csv").write_text("half")
            raise RuntimeError("killed")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_the_swap_is_one_exchange_where_linux_has_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("new")
    (b / "x").write_text("old")
    if not _exchange(a, b):
        pytest.skip("this file system or kernel has no RENAME_EXCHANGE; the two-rename fallback is used")
    assert (b / "x").read_text() == "new" and (a / "x").read_text() == "old"


def test_atomic_folder_refuses_before_yielding(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SimError):
        with atomic_folder(tmp_path / "f"):
            raise AssertionError("must not be reached")


def test_run_says_how_many_dag_runs_failed(tmp_path, capsys):
    f = tmp_path / "failing.yaml"
    f.write_text("name: failing\nhorizon: 30m\ndags:\n  - dag_id: d\n    schedule: {every: 10m}\n"
                 "    tasks: {a: {duration: 1, failure_probability: 1.0}, b: {duration: 1}}\n"
                 "    dependencies: a >> b\n")
    code, io = run(tmp_path / "out", capsys, f)
    assert code == 0
    assert "3 of 3 DAG runs failed (3 task instances failed, 3 upstream_failed)" in io.out
