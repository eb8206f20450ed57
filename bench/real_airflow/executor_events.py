"""When the scheduler processed each try's executor event, from the scheduler's log of a harness run.

Airflow logs ``Received executor event with state <state> for task instance TaskInstanceKey(...)``
(2.x: ``[time] {file} INFO - ...``; 3.x: ``time [info] ...``) in ``_process_executor_events``, in the loop whose executor heartbeat collected the event. Beside
the export this shows what the loop did next: in 2.10.5 and 3.3.2 ``_process_executor_events``
returns ``len(event_buffer)`` *after* popping every event it processed, so a loop that only
processed events counts as idle and sleeps ``scheduler_idle_sleep_time`` before the next critical
section can queue into the slots those events freed (issue #11).

    python bench/real_airflow/executor_events.py CONFIG_FOLDER SCHEDULER_LOG

writes ``CONFIG_FOLDER/executor_events.csv`` (one row per try with a ``success`` or ``failed``
event: its ``end_date``, when the event was processed, and when the next task instance of its DAG
run was queued after that) and prints, per DAG, the share of events followed by a queueing within
0.5 s. The harness does not keep the logs in the results.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

EVENT = re.compile(r"^\[?([0-9][0-9T:.+Z-]+)\]?\s.*Received executor event with state (success|failed) for task instance "
                   r"TaskInstanceKey\(dag_id='([^']+)', task_id='([^']+)', run_id='([^']+)', try_number=(\d+)")
SOON = 0.5      # seconds: the next loop at once (~0.1-0.2 s) against a sleep later (~1.05 s)


def events_table(folder: Path, log: Path) -> pd.DataFrame:
    ti = pd.read_csv(folder / "task_instances.csv")
    for c in ("queued_dttm", "end_date"):
        ti[c] = pd.to_datetime(ti[c], format="ISO8601", utc=True)
    seen = {}
    for line in open(log, errors="replace"):
        m = EVENT.match(line)
        if m:
            seen[(m.group(3), m.group(4), m.group(5), int(m.group(6)))] = pd.Timestamp(m.group(1))
    keys = list(zip(ti["dag_id"], ti["task_id"], ti["run_id"], ti["try_number"]))
    ti["event_at"] = pd.to_datetime(pd.Series([seen.get(k) for k in keys], index=ti.index), utc=True)
    queued = ti[["run_id", "queued_dttm"]].dropna()
    queued = queued.assign(t=queued["queued_dttm"].map(pd.Timestamp.timestamp))
    by_run = {r: np.sort(g["t"].to_numpy()) for r, g in queued.groupby("run_id")}
    ti = ti[ti["event_at"].notna()].copy()
    nxt = []
    for run_id, ev in zip(ti["run_id"], ti["event_at"]):
        q = by_run.get(run_id, np.array([]))
        i = np.searchsorted(q, ev.timestamp(), side="right")
        nxt.append(q[i] - ev.timestamp() if i < len(q) else np.nan)
    ti["event_to_next_queued"] = np.round(nxt, 3)
    ti["end_to_event"] = (ti["event_at"] - ti["end_date"]).dt.total_seconds().round(3)
    return ti[["dag_id", "run_id", "task_id", "try_number", "end_to_event",
               "event_to_next_queued"]].sort_values(["run_id", "task_id"])


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit(__doc__)
    folder = Path(args[0])
    table = events_table(folder, Path(args[1]))
    table.to_csv(folder / "executor_events.csv", index=False, float_format="%.3f")
    for dag, g in table.groupby("dag_id"):
        nxt = g["event_to_next_queued"].dropna()
        print(f"{folder.name} {dag}: {len(g)} events; next queueing within {SOON} s after "
              f"{(nxt < SOON).mean():.2f} of them (median {nxt.median():.2f} s); "
              f"end -> event median {g['end_to_event'].median():.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
