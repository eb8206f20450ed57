"""From a task instance's queueing to its Celery child executing it, from the logs of a harness run.

Airflow 2.10's Celery worker logs ``[<celery task id>] Executing command in Celery: ['airflow',
'tasks', 'run', DAG, TASK, RUN_ID, ...]`` when a prefork child starts a task
(``providers/celery/executors/celery_executor_utils.py``, ``execute_command``). Against the
export's ``queued_dttm`` this is the whole hand-off: the rest of the critical section, the commit,
the executor heartbeat's ``apply_async``, the broker and the worker's dispatch to a child; against
``start_date``, the child's fork and ``airflow tasks run`` set-up up to the running state.

    python bench/real_airflow/celery_handoff.py CONFIG_FOLDER WORKER_LOG [WORKER_LOG ...]

writes ``CONFIG_FOLDER/celery_handoff.csv`` (one row per try found in both) and prints the medians
per DAG. The harness does not keep the logs in the results. (Airflow 3's worker logs another line;
not read here.)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

EXECUTING = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/ForkPoolWorker-\d+\] \[[0-9a-f-]+\] "
                       r"Executing command in Celery: \['airflow', 'tasks', 'run', '([^']+)', '([^']+)', '([^']+)'")


def handoff_table(folder: Path, logs: list[Path]) -> pd.DataFrame:
    rows = []
    for log in logs:
        for line in open(log, errors="replace"):
            m = EXECUTING.match(line)
            if m:
                at = pd.Timestamp(m.group(1).replace(",", "."), tz="UTC")    # the harness runs in UTC
                rows.append((m.group(2), m.group(3), m.group(4), at))
    ex = pd.DataFrame(rows, columns=["dag_id", "task_id", "run_id", "executing"])
    ti = pd.read_csv(folder / "task_instances.csv")
    for c in ("queued_dttm", "start_date"):
        ti[c] = pd.to_datetime(ti[c], format="ISO8601", utc=True)
    m = ti.merge(ex, on=["dag_id", "task_id", "run_id"])
    # the child that ran this try: the first execution at or after its queueing (a log has ms)
    m = m[m["executing"] >= m["queued_dttm"].dt.floor("ms")]
    m = m.sort_values("executing").drop_duplicates(["dag_id", "task_id", "run_id", "try_number"])
    m["queued_to_executing"] = (m["executing"] - m["queued_dttm"]).dt.total_seconds()
    m["executing_to_started"] = (m["start_date"] - m["executing"]).dt.total_seconds()
    return m[["dag_id", "run_id", "task_id", "try_number", "queued_to_executing",
              "executing_to_started"]].sort_values(["run_id", "task_id"])


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        sys.exit(__doc__)
    folder = Path(args[0])
    table = handoff_table(folder, [Path(a) for a in args[1:]])
    table.to_csv(folder / "celery_handoff.csv", index=False, float_format="%.3f")
    med = table.groupby("dag_id")[["queued_to_executing", "executing_to_started"]].median()
    print(f"{folder.name}: {len(table)} tries; medians per DAG (s):\n{med.round(3).to_string()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
