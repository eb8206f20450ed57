"""sim sweep: grids refused before running, failed points reported, processes and Dask agree."""
from pathlib import Path

import pytest

from sim.cli import main
from sim.errors import ScenarioError
from sim.sweep import parse_grid, points_of, sweep

ROOT = Path(__file__).resolve().parents[1]
DIAMOND = ROOT / "scenarios" / "seed-diamond.yaml"
GRID = {"airflow.parallelism": ["1", "4"], "executor": ["local", "celery"]}


def test_grid_parsing_and_points():
    assert parse_grid(["airflow.parallelism=1,2", "executor=local"]) == {
        "airflow.parallelism": ["1", "2"], "executor": ["local"]}
    pts = points_of(DIAMOND, GRID, seeds=2)
    assert len(pts) == 2 * 2 * 2
    assert {p["executor"] for p in pts} == {"local", "celery"}
    for bad in (["airflow.parallelism"], ["=1,2"], ["x=1", "x=2"], []):
        with pytest.raises(ScenarioError):
            parse_grid(bad)


@pytest.mark.parametrize("grid,phrase", [({"airflow.paralelism": ["1"]}, "did you mean 'parallelism'"),
                                         ({"airflow.parallelism": ["0"]}, "must be >= 1"),
                                         ({"airflow.parallelism": ["many"]}, "airflow.parallelism"),
                                         ({"executor": ["nomad"]}, "executor.kind")])
def test_bad_grid_refused_before_any_point_runs(grid, phrase, monkeypatch):
    import sim.sweep as sw
    monkeypatch.setattr(sw, "_one", lambda a: pytest.fail("a point ran"))
    with pytest.raises(ScenarioError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        sweep(DIAMOND, grid, seeds=1, jobs=1)


def test_cli_bad_grid_exits_2(capsys):
    assert main(["sweep", str(DIAMOND), "--grid", "airflow.paralelism=1,2"]) == 2
    assert "did you mean 'parallelism'" in capsys.readouterr().err


def test_failed_point_is_reported_and_the_rest_land(monkeypatch):
    import sim.sweep as sw
    real = sw._one

    def flaky(args):
        if args[1] == "celery" and "airflow.parallelism=4" in args[3]:
            raise RuntimeError("boom")
        return real(args)
    monkeypatch.setattr(sw, "_one", flaky)
    t = sweep(DIAMOND, GRID, seeds=1, jobs=1).table
    assert len(t) == 4
    failed = t[t["error"] != ""]
    assert len(failed) == 1 and "boom" in failed["error"].iloc[0]
    assert t[t["error"] == ""]["makespan_mean_s"].notna().all()


def test_processes_and_dask_give_identical_tables(tmp_path):
    pytest.importorskip("distributed")
    from dask.distributed import Client, LocalCluster
    local = sweep(DIAMOND, GRID, seeds=2, jobs=2).table
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = sweep(DIAMOND, GRID, seeds=2, dask=client).table
    assert local.equals(remote)
    out = sweep(DIAMOND, GRID, seeds=2, jobs=1)
    path = out.write(tmp_path / "sw")
    assert (path / "sweep.csv").exists() and (path / "charts" / "airflow_parallelism.png").exists()
