"""How long Airflow 3's supervisor held each task process, from the logs of a harness run.

Airflow 3.x logs ``Workload finished ... duration=<s> ... workload_id=<task instance id>`` when a
supervisor returns (``sdk/execution_time/supervisor.py``). Beside the try's own run (``end_date -
start_date`` in the export) this shows when the supervisor noticed the task process's exit: a
share of tries are held about ``[workers] min_heartbeat_interval`` (5 s) longer, because the
supervisor's ``select`` waits that long once the process's sockets are closed (issue #11; the model's
``overheads.supervisor_late_exit_share``).

    python bench/real_airflow/supervisor_exits.py CONFIG_FOLDER LOG [LOG ...]

writes ``CONFIG_FOLDER/supervisor.csv`` (one row per try found in both) and prints the share of
tries held at least 3 s longer than their run plus the median fast-path hold. The logs are the
scheduler's (LocalExecutor) or the Celery workers'; the harness does not keep them in the results.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

FINISHED = re.compile(r"Workload finished.*?duration=([\d.]+).*?workload_id=([0-9a-f-]+)")
LATE = 3.0      # seconds beyond the run: the late path is ~5 s, the fast one well under 1 s


def supervisor_table(folder: Path, logs: list[Path]) -> pd.DataFrame:
    ti = pd.read_csv(folder / "task_instances.csv")
    for c in ("start_date", "end_date"):
        ti[c] = pd.to_datetime(ti[c], format="ISO8601")
    ti["run_seconds"] = (ti["end_date"] - ti["start_date"]).dt.total_seconds()
    held = {}
    for log in logs:
        for line in open(log, errors="replace"):
            m = FINISHED.search(line)
            if m:
                held[m.group(2)] = float(m.group(1))
    ti = ti[ti["id"].isin(held)].copy()
    ti["supervisor_seconds"] = ti["id"].map(held)
    ti["beyond_run"] = (ti["supervisor_seconds"] - ti["run_seconds"]).round(3)
    ti["late"] = ti["beyond_run"] >= LATE
    return ti[["dag_id", "run_id", "task_id", "try_number", "run_seconds", "supervisor_seconds",
               "beyond_run", "late"]].sort_values(["run_id", "task_id"])


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        sys.exit(__doc__)
    folder = Path(args[0])
    table = supervisor_table(folder, [Path(a) for a in args[1:]])
    table.to_csv(folder / "supervisor.csv", index=False, float_format="%.3f")
    fast = table.loc[~table["late"], "beyond_run"]
    late = table.loc[table["late"], "beyond_run"]
    print(f"{folder.name}: {int(table['late'].sum())} of {len(table)} tries late "
          f"({table['late'].mean():.2f}); beyond the run: fast median {fast.median():.2f} s, "
          f"late median {late.median():.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
