"""A try's way in, from its queueing to its start_date, from the logs of a harness run (Airflow 2.10).

The process that runs a task logs when it gets it (the LocalExecutor's worker: ``QueuedLocalWorker
running [...]`` in the scheduler's log; a Celery worker's child: ``Executing command in Celery:
[...]`` in the worker's log), then the forked task process logs ``Filling up the DagBag`` (its
``airflow tasks run`` set-up done, the DAG file's parse begins) and ``Running <TaskInstance: ...
[queued]>`` (parsed). Per try, in seconds:

- ``queued_to_handed``: ``queued_dttm`` to the worker's line (the hand-off);
- ``handed_to_parsing``: the fork and the command line's set-up;
- ``parsing``: the DAG file's parse;
- ``parsed_to_started``: the LocalTaskJob's start, up to ``start_date``;
- ``handed_to_parsed``: the two before it together.

The hand-off and parsed lines name their try; ``Filling up the DagBag`` does not (nor its process,
in the LocalExecutor's log), so it is given to the one try handed off and not yet parsing, and
left unknown (the two columns it splits, NaN; ``handed_to_parsed`` still known) while several
are: tries started together, as a fan-out's are.

A Celery worker imports the expensive modules once before it forks its children (the provider's
``on_celery_import_modules``: jinja2.ext, the LocalTaskJob runner, macros, the bash and python
operators, numpy, kubernetes.client); a LocalExecutor worker does not, so its task processes import
them while parsing.

    python bench/real_airflow/task_start_path.py CONFIG_FOLDER LOG [LOG ...]

writes ``CONFIG_FOLDER/task_start_path.csv`` and prints the medians per DAG.
"""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pandas as pd

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d[.,]\d{3})(?:\+0000\]|:)")
HANDED = re.compile(r"(?:QueuedLocalWorker running|Executing command in Celery:) \['airflow', 'tasks', 'run', "
                    r"'([^']+)', '([^']+)', '([^']+)'")
PARSED = re.compile(r"Running <TaskInstance: ([^.]+)\.(\S+) (\S+) \[queued\]>")
COLUMNS = ["queued_to_handed", "handed_to_parsing", "parsing", "parsed_to_started", "handed_to_parsed"]


def _stamp(line: str):
    m = STAMP.match(line)
    if not m:
        return None
    return pd.Timestamp(m.group(1).replace(",", ".").replace(" ", "T"), tz="UTC")   # the harness runs in UTC


def log_steps(logs) -> dict:
    """(dag_id, task_id, run_id) -> {handed, parsing, parsed}: each try's first lines ("parsing"
    only where one try was waiting for it)."""
    steps: dict = {}
    for log in logs:
        waiting: list = []                       # handed off, no parse line yet
        unsure: set = set()                      # waited beside another: its parse line is not known
        for line in open(log, errors="replace"):
            t = _stamp(line)
            if t is None:
                continue
            m = HANDED.search(line)
            if m:
                key = (m.group(1), m.group(2), m.group(3))
                if "handed" not in steps.setdefault(key, {}):
                    steps[key]["handed"] = t
                    waiting.append(key)
            elif "Filling up the DagBag" in line:
                if len(waiting) == 1 and not unsure:
                    steps[waiting.pop()].setdefault("parsing", t)
                elif waiting:
                    unsure.update(waiting)
            else:
                m = PARSED.search(line)
                if m:
                    key = (m.group(1), m.group(2), m.group(3))
                    steps.setdefault(key, {}).setdefault("parsed", t)
                    if key in waiting:
                        waiting.remove(key)
                    unsure.discard(key)
    return steps


def start_path_table(folder: Path, logs) -> pd.DataFrame:
    ti = pd.read_csv(folder / "task_instances.csv")
    for c in ("queued_dttm", "start_date"):
        ti[c] = pd.to_datetime(ti[c], format="ISO8601", utc=True)
    steps = log_steps(logs)
    rows = []
    for r in ti.itertuples(index=False):
        s = steps.get((r.dag_id, r.task_id, r.run_id), {})
        if not {"handed", "parsed"} <= set(s) or not s["handed"] <= s["parsed"]:
            continue
        split = "parsing" in s and s["handed"] <= s["parsing"] <= s["parsed"]
        rows.append({"dag_id": r.dag_id, "run_id": r.run_id, "task_id": r.task_id, "try_number": r.try_number,
                     "queued_to_handed": (s["handed"] - r.queued_dttm).total_seconds(),
                     "handed_to_parsing": (s["parsing"] - s["handed"]).total_seconds() if split else math.nan,
                     "parsing": (s["parsed"] - s["parsing"]).total_seconds() if split else math.nan,
                     "parsed_to_started": (r.start_date - s["parsed"]).total_seconds(),
                     "handed_to_parsed": (s["parsed"] - s["handed"]).total_seconds()})
    return pd.DataFrame(rows, columns=["dag_id", "run_id", "task_id", "try_number", *COLUMNS]).sort_values(
        ["run_id", "task_id"])


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        sys.exit(__doc__)
    folder = Path(args[0])
    table = start_path_table(folder, [Path(a) for a in args[1:]])
    table.to_csv(folder / "task_start_path.csv", index=False, float_format="%.4f")
    med = table.groupby("dag_id")[COLUMNS].median()
    print(f"{folder.name}: {len(table)} tries; medians per DAG (s):\n{med.round(4).to_string()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
