"""The notebooks of ``notebooks/`` must be there and be committed without outputs (issue #7).

The default test run executes them too: pyproject's pytest options collect ``notebooks/`` with
nbmake (``--nbmake --nbmake-timeout=120``), each in a fresh kernel with the notebook's folder as
the working directory; a cell that raises, or a notebook slower than two minutes, fails.
"""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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
