"""Writing a run's results: CSV files and ``summary.json``, atomically.

Everything is written into a fresh temporary folder beside the target, which then replaces the
target in one rename: a reader never sees a half-written results folder, and a crash leaves the
previous results intact.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _to_csv(df, path: Path) -> None:
    df.to_csv(path, index=False, float_format="%.6f", lineterminator="\n")


@contextmanager
def atomic_folder(out_dir):
    """Yield a fresh temporary folder beside ``out_dir``; on success it replaces ``out_dir`` in one
    rename, on failure it is removed and ``out_dir`` is left as it was."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rmdir(old)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_results(result, out_dir, charts: bool = True) -> Path:
    """Write CSVs, summary.json and (unless ``charts=False``) PNG charts and report.html."""
    with atomic_folder(out_dir) as tmp:
        _to_csv(result.task_instances, tmp / "task_instances.csv")
        _to_csv(result.dag_runs, tmp / "dag_runs.csv")
        for name, frame in (("transitions", result.transitions), ("events", result.events),
                            ("workers", result.workers), ("pods", result.pods), ("nodes", result.nodes)):
            if len(frame):
                _to_csv(frame, tmp / f"{name}.csv")
        with open(tmp / "summary.json", "w") as f:
            json.dump(result.summary, f, indent=2, sort_keys=False)
            f.write("\n")
        if charts:
            from .report.charts import write_charts
            from .report.html import write_report
            write_charts(result, tmp / "charts")
            write_report(result, tmp)
    return Path(out_dir)
