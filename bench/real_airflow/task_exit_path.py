"""A try's way out, from its end_date to its downstream being scheduled, from the task logs of a harness run.

Airflow 2.10's task log (``<logs>/dag_id=D/run_id=R/task_id=T/attempt=N.log``) has, after the
task's ``end_date``, the LocalTaskJob's ``Task exited with return code`` (the raw task process has
exited and the job noticed) and the mini-scheduler's ``N downstream tasks scheduled from follow-on
schedule check`` (``schedule_after_task_execution``: it locked the DAG run's row, scheduled what
it could and committed). The export's ``updated_at`` is the outcome write's flush (the log row,
the task instance's merge and update, then the commit). So, per try, seconds after ``end_date``:

- ``end_to_committed``: ``updated_at`` (the scheduler can now see the outcome);
- ``end_to_exited``: the job saw the raw process's return code;
- ``end_to_mini_done``: the mini-scheduler committed (no such line: it found the row locked, or
  the task has no downstream).

    python bench/real_airflow/task_exit_path.py CONFIG_FOLDER TASK_LOGS_FOLDER

writes ``CONFIG_FOLDER/task_exit_path.csv`` for the tries of the folder's ``task_instances.csv``
and prints the medians per DAG. The harness runs it after each Airflow 2.10 configuration; the
logs stay in the work folder.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

LINE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\+0000\] \{[^}]*\} INFO - (.*)")
STEPS = {"Task exited with return code": "exited", "downstream tasks scheduled from follow-on schedule check": "mini_done"}


def log_times(path: Path, after=None) -> dict:
    """The first time each step's line appears in one try's log (UTC, ms), at or after ``after``
    (a sensor rescheduled between pokes logs every poke in its try's one file, and the export's
    row is the last poke's: its steps come after its own ``end_date``; the log's times are whole
    milliseconds, so a millisecond before counts)."""
    found: dict = {}
    if not path.is_file():
        return found
    since = None if after is None else after - pd.Timedelta(milliseconds=1)
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        for text, step in STEPS.items():
            if step not in found and text in m.group(2):
                t = pd.Timestamp(m.group(1), tz="UTC")
                if since is None or t >= since:
                    found[step] = t
    return found


def exit_path_table(folder: Path, logs: Path) -> pd.DataFrame:
    ti = pd.read_csv(folder / "task_instances.csv")
    for c in ("end_date", "updated_at"):
        ti[c] = pd.to_datetime(ti[c], format="ISO8601", utc=True)
    rows = []
    for r in ti.itertuples(index=False):
        t = log_times(logs / f"dag_id={r.dag_id}" / f"run_id={r.run_id}" / f"task_id={r.task_id}"
                      / f"attempt={r.try_number}.log", after=r.end_date)
        if "exited" not in t:
            continue
        end = r.end_date
        rows.append({"dag_id": r.dag_id, "run_id": r.run_id, "task_id": r.task_id, "try_number": r.try_number,
                     "end_to_committed": (r.updated_at - end).total_seconds(),
                     "end_to_exited": (t["exited"] - end).total_seconds(),
                     "end_to_mini_done": (t["mini_done"] - end).total_seconds() if "mini_done" in t else float("nan")})
    return pd.DataFrame(rows, columns=["dag_id", "run_id", "task_id", "try_number", "end_to_committed",
                                       "end_to_exited", "end_to_mini_done"]).sort_values(["run_id", "task_id"])


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit(__doc__)
    folder = Path(args[0])
    table = exit_path_table(folder, Path(args[1]))
    table.to_csv(folder / "task_exit_path.csv", index=False, float_format="%.4f")
    med = table.groupby("dag_id")[["end_to_committed", "end_to_exited", "end_to_mini_done"]].median()
    print(f"{folder.name}: {len(table)} tries; medians per DAG (s after end_date):\n{med.round(4).to_string()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
