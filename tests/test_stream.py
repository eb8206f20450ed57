"""sim run --stream (issue #13): transitions and events go to their files while the simulation
runs, a block at a time, and the results folder is byte for byte the one written from memory."""
import hashlib
import sys
from pathlib import Path

import pytest

from sim import records, scenario_from_dict
from sim.cli import main
from sim.records import TableStream
from sim.scenario import load_scenario
from sim.simulation import RunResult, Simulation

ROOT = Path(__file__).resolve().parents[1]
DIAMOND = ROOT / "scenarios" / "seed-diamond.yaml"
sys.path.insert(0, str(ROOT / "tests"))
from test_determinism import generate  # noqa: E402


def digests(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def both(scenario, tmp_path, **kwargs):
    """The results folder written from memory and with streaming (blocks of 50 rows)."""
    Simulation(scenario, **kwargs).run().write(tmp_path / "memory", charts=False)
    (tmp_path / "stream").mkdir()
    result = Simulation(scenario, stream_to=tmp_path / "stream", **kwargs).run()
    assert len(result.transitions) == 0 and len(result.events) == 0      # not in memory
    result.write(tmp_path / "streamed", charts=False)
    return digests(tmp_path / "memory"), digests(tmp_path / "streamed")


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(records, "STREAM_BLOCK", 50)


@pytest.mark.parametrize("executor", ["local", "celery", "kubernetes"])
def test_streamed_results_are_the_same_bytes(executor, tmp_path):
    memory, streamed = both(load_scenario(DIAMOND, executor=executor), tmp_path)
    assert memory == streamed
    assert "transitions.csv" in streamed and ("events.csv" in streamed) == (executor != "local")


@pytest.mark.parametrize("seed", range(0, 40, 5))
def test_streamed_generated_scenarios_are_the_same_bytes(seed, tmp_path):
    memory, streamed = both(scenario_from_dict(generate(seed)), tmp_path)
    assert memory == streamed


def test_without_transitions_only_events_are_streamed(tmp_path):
    memory, streamed = both(load_scenario(DIAMOND, executor="celery"), tmp_path, record_transitions=False)
    assert memory == streamed and "transitions.csv" not in streamed and "events.csv" in streamed


def test_the_recorder_holds_one_block_at_most(tmp_path, monkeypatch):
    held = []
    flush = TableStream.flush

    def watching(self, rec):
        held.append((rec.rows("tr_time"), rec.rows("ev_time")))
        flush(self, rec)
        assert rec.rows("tr_time") == rec.rows("ev_time") == 0
    monkeypatch.setattr(TableStream, "flush", watching)
    (tmp_path / "s").mkdir()
    result = Simulation(load_scenario(DIAMOND, executor="celery"), stream_to=tmp_path / "s").run()
    assert len(held) >= 4                               # written in parts while the run went
    assert max(max(h) for h in held[:-1]) < 50 + 20     # a block and the last try's rows
    lines = (tmp_path / "s" / "transitions.csv").read_text().count("\n")
    assert lines == 1 + sum(h[0] for h in held)         # one header, every row once
    assert isinstance(result, RunResult) and result.streamed["events"].name == "events.csv"


def test_cli_stream_leaves_no_temporary_folder(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", str(DIAMOND), "--out", str(out), "--no-progress", "--no-charts"]) == 0
    want = digests(out)
    assert main(["run", str(DIAMOND), "--out", str(out), "--no-progress", "--no-charts", "--stream"]) == 0
    assert digests(out) == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_cli_stream_failure_removes_its_folder(tmp_path, capsys, monkeypatch):
    def broken(self, out_dir, charts=True):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(RunResult, "write", broken)
    assert main(["run", str(DIAMOND), "--out", str(tmp_path / "r"), "--no-progress", "--stream"]) == 1
    assert list(tmp_path.iterdir()) == []
