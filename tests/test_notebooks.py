"""The notebooks of ``notebooks/`` are executed by the default test run, so that they cannot rot,
and must be committed without outputs (issue #7).

Each notebook runs in a fresh Jupyter kernel with the notebook's own folder as the working
directory (as Jupyter and ``pytest --nbmake`` run it), importing this checkout's ``sim``. A cell
that raises fails the test with the cell's traceback; a notebook slower than ``TIME_LIMIT`` fails
too. ``python -m pytest --nbmake notebooks/`` runs them the same way through nbmake.
"""
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Each notebook runs a small workload; two minutes is the hard limit (they take well under one).
TIME_LIMIT = 120.0


def run_notebook(path: Path, monkeypatch) -> float:
    """Execute the notebook at ``path`` in memory (the file is not changed); return the seconds it took."""
    # the kernel inherits the environment: make it import this checkout's sim, like the tests do
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIME_LIMIT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    client.execute()
    return time.monotonic() - start


def test_the_six_notebooks_of_issue_7_are_there():
    names = [p.stem for p in NOTEBOOKS]
    for stem in ("01-architecture-tour", "02-scheduler-and-local-executor", "03-celery", "04-kubernetes",
                 "05-head-to-head", "06-capacity-planning"):
        assert stem in names, f"notebooks/{stem}.ipynb is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
            f"{path.name}: code cell {i} has outputs or an execution count; strip them with "
            f"`jupyter nbconvert --clear-output --inplace notebooks/*.ipynb`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch):
    elapsed = run_notebook(path, monkeypatch)
    assert elapsed < TIME_LIMIT, f"{path.name} took {elapsed:.0f} s; keep its workload small"


def test_a_notebook_that_raises_fails(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('broken cell')")]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(Exception, match="broken cell"):
        run_notebook(path, monkeypatch)
