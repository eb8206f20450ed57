"""Import Airflow's own history: exports of the metadata database's ``task_instance`` and
``dag_run`` tables (CSV, Airflow's column names) and a DAG's structure.

- :func:`read_task_instances` and :func:`read_dag_runs` read and check the CSV exports;
- :func:`read_rest_tasks` reads a DAG's structure as Airflow's REST API returns it
  (``GET /api/v1/dags/{dag_id}/tasks``: ``task_id``, ``downstream_task_ids``, pool, queue, ...);
- :func:`dag_from_export` builds a :class:`~sim.model.dag.DAG` whose tasks resample the durations
  of their successful tries (:class:`~sim.model.durations.Empirical`);
- :func:`observed_runs` and :func:`observed_dag_runs` give what really happened, per task
  instance and per DAG run, in the terms the simulator reports (ready -> queued -> started).

Timestamps must carry their time zone (``2026-11-24T08:56:49.877502+00:00``, ``...+00``, ``...Z``),
as Airflow's ``timestamptz`` columns do; they are returned as tz-aware UTC ``pandas.Timestamp``.
Every problem raises :class:`~sim.errors.ScenarioError` naming the file, the line (the header is
line 1; a row's line is where its record starts), the 1-based data row and the column.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..errors import ScenarioError
from ..files import MAX_DATA_BYTES, check_regular
from ..model.dag import (DAG, DEFAULT_POOL, DEFAULT_QUEUE, DEFAULT_RETRY_DELAY, TRIGGER_RULES, WEIGHT_RULES,
                         DagError, Task)
from ..model.durations import Empirical
from ..model.schedules import At
from .airflow_dags import structures
from .wfcommons import MAX_PROBLEMS, _Problems, read_json

#: Columns of the ``task_instance`` export that the import needs.
TI_REQUIRED = ("dag_id", "task_id", "run_id", "try_number", "state", "queued_dttm", "start_date",
               "end_date", "duration")
#: Columns it uses when present (``map_index`` defaults to -1, the others to missing).
TI_OPTIONAL = ("map_index", "queue", "pool", "hostname", "operator")
#: Columns of the ``dag_run`` export that the import needs.
DR_REQUIRED = ("dag_id", "run_id", "state", "queued_at", "start_date", "end_date")
#: Timestamp columns parsed (and checked) whenever present.
TI_TIMESTAMPS = ("queued_dttm", "start_date", "end_date", "updated_at")
DR_TIMESTAMPS = ("queued_at", "start_date", "end_date", "execution_date", "logical_date",
                 "data_interval_start", "data_interval_end", "last_scheduling_decision", "updated_at")
#: Integer columns converted when every value is an integer (left as text otherwise).
_SOFT_INTS = ("pid", "job_id", "queued_by_job_id", "max_tries", "pool_slots", "priority_weight", "id",
              "creating_job_id", "log_template_id", "clear_number")
#: Airflow 2's task-instance states (``none``: Airflow's None; an empty cell reads as ``none``).
TI_STATES = frozenset({"none", "scheduled", "queued", "running", "success", "failed", "up_for_retry",
                       "up_for_reschedule", "deferred", "upstream_failed", "skipped", "removed",
                       "restarting", "shutdown"})
DR_STATES = frozenset({"queued", "running", "success", "failed"})
#: Cells read as missing.
_MISSING = frozenset({"", "none", "null", "nan", "nat", "\\n"})
_TZ = re.compile(r"\d(?:\.\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
#: Airflow's aliases of trigger rules the model knows by another name.
_TRIGGER_ALIASES = {"none_failed_or_skipped": "none_failed_min_one_success", "dummy": "always"}


# -- reading the CSV exports --------------------------------------------------------------------
class _Rows:
    """Names a data row: ``line L (row R), column C``. Line numbers come from re-reading the file
    with the csv module (a quoted field may span lines), only when there is something to report."""

    def __init__(self, path: str | None):
        self.path = path
        self._starts: list[int] | None = None

    def line(self, pos: int) -> int | None:
        if self.path is None:
            return None
        if self._starts is None:
            self._starts = []
            try:
                with open(self.path, newline="", encoding="utf-8") as f:
                    reader = csv.reader(f)
                    last = 0
                    for rec in reader:
                        start, last = last + 1, reader.line_num
                        if rec:                      # pandas skips blank lines too
                            self._starts.append(start)
            except (OSError, UnicodeDecodeError, csv.Error):
                pass
        return self._starts[pos + 1] if pos + 1 < len(self._starts) else None

    def where(self, pos: int, column: str) -> str:
        line = self.line(pos)
        row = f"row {pos + 1}"
        return f"{f'line {line} ({row})' if line is not None else row}, column {column}"


def _read_csv(path, what: str) -> pd.DataFrame:
    file = str(path)
    check_regular(path, MAX_DATA_BYTES, what)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except FileNotFoundError:
        raise ScenarioError(file, f"cannot read the {what}: no such file") from None
    except OSError as e:
        raise ScenarioError(file, f"cannot read the {what}: {e.strerror or e}") from None
    except pd.errors.EmptyDataError:
        raise ScenarioError(file, f"the {what} is empty (expected a CSV file with a header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise ScenarioError(file, f"not a readable CSV file ({what}): {str(e).strip()}") from None
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["source"] = file
    return df


def _require(df: pd.DataFrame, required: Iterable[str], what: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        have = ", ".join(df.columns) or "none"
        raise ScenarioError(df.attrs["source"], [
            (f"line 1 (the header), column {c}", f"missing column {c!r}: an export of Airflow's {what} "
                                                 f"table needs {', '.join(required)} (the file has: {have})")
            for c in missing])


def _blank(s: pd.Series) -> pd.Series:
    return s.str.strip().str.lower().isin(_MISSING)


def _timestamps(df: pd.DataFrame, col: str, rows: _Rows, problems: _Problems) -> None:
    raw = df[col].str.strip()
    blank = _blank(raw)
    parsed = pd.to_datetime(raw.where(~blank), utc=True, format="ISO8601", errors="coerce")
    bad = ~blank & (parsed.isna() | ~raw.str.contains(_TZ))
    for pos in _positions(bad):
        value = raw.iloc[pos]
        why = ("has no time zone (Airflow's timestamps do: add the offset, e.g. +00:00)"
               if not pd.isna(parsed.iloc[pos]) else "cannot be read as a timestamp")
        problems.add(rows.where(pos, col), f"{value!r} {why}; expected ISO 8601 with a time zone, "
                                           "e.g. 2026-11-24T08:56:49.877502+00:00")
    df[col] = parsed.astype("datetime64[us, UTC]")


def _numbers(df: pd.DataFrame, col: str, rows: _Rows, problems: _Problems, *, integer: bool,
             required: bool, minimum: float | None = None, default=None) -> None:
    raw = df[col].str.strip()
    blank = _blank(raw)
    num = pd.to_numeric(raw.where(~blank), errors="coerce")
    ok_value = num.notna() & num.map(lambda v: math.isfinite(v) if pd.notna(v) else True)
    if integer:
        ok_value &= num.map(lambda v: float(v).is_integer() if pd.notna(v) else True)
    if minimum is not None:
        ok_value &= ~(num < minimum)
    bad = ~blank & ~ok_value
    kind = "an integer" if integer else "a number"
    limit = f" >= {minimum:g}" if minimum is not None else ""
    for pos in _positions(bad):
        problems.add(rows.where(pos, col), f"{raw.iloc[pos]!r} is not {kind}{limit}")
    if required:
        for pos in _positions(blank):
            problems.add(rows.where(pos, col), f"missing value (expected {kind}{limit})")
    if default is not None:
        num = num.where(~blank, default)
    if integer and not (bad.any() or (required and blank.any())):
        df[col] = num.astype("Int64") if num.isna().any() else num.astype("int64")
    else:
        df[col] = num.astype("float64")


def _strings(df: pd.DataFrame, col: str, rows: _Rows, problems: _Problems, *, required: bool) -> None:
    raw = df[col].str.strip()
    if required:
        for pos in _positions(raw == ""):
            problems.add(rows.where(pos, col), "missing value")
    df[col] = raw.mask(raw == "")


def _states(df: pd.DataFrame, rows: _Rows, problems: _Problems, allowed: frozenset[str]) -> None:
    raw = df["state"].str.strip().str.lower()
    raw = raw.mask(_blank(raw), "none")
    for pos in _positions(~raw.isin(allowed)):
        problems.add(rows.where(pos, "state"), f"unknown state {df['state'].iloc[pos]!r} "
                                               f"(Airflow's states: {', '.join(sorted(allowed))})")
    df["state"] = raw


def _soft_ints(df: pd.DataFrame, skip: Iterable[str]) -> None:
    for col in _SOFT_INTS:
        if col in df.columns and col not in skip:
            raw = df[col].str.strip()
            blank = _blank(raw)
            num = pd.to_numeric(raw.where(~blank), errors="coerce")
            if num[~blank].notna().all() and num.dropna().map(lambda v: float(v).is_integer()).all():
                df[col] = num.astype("Int64")


def _positions(mask: pd.Series) -> list[int]:
    return [int(i) for i in mask.to_numpy().nonzero()[0][:MAX_PROBLEMS]]


def _others_missing(df: pd.DataFrame, done: Iterable[str]) -> None:
    for col in df.columns:
        if col not in done and df[col].dtype != "float64" and df[col].dtype.kind in "OUT":
            df[col] = df[col].mask(df[col].str.strip() == "")


def read_task_instances(path) -> pd.DataFrame:
    """An export of Airflow's ``task_instance`` table (CSV with Airflow's column names).

    Needs ``dag_id, task_id, run_id, try_number, state, queued_dttm, start_date, end_date,
    duration``; uses ``map_index`` (default -1), ``queue``, ``pool``, ``hostname``, ``operator``
    when present and keeps every other column. ``queued_dttm``, ``start_date``, ``end_date`` (and
    ``updated_at``) become tz-aware UTC timestamps (NaT where empty), ``duration`` a float of
    seconds (NaN where empty), ``try_number`` and ``map_index`` integers, ``state`` Airflow's
    state in lower case (``none`` for an empty cell). A missing column, an unreadable timestamp
    or number, a timestamp without a time zone or an unknown state raises
    :class:`ScenarioError` naming the file, the line and row, and the column.
    ``df.attrs["source"]`` keeps the file name for later messages.
    """
    df = _read_csv(path, "task_instance export")
    _require(df, TI_REQUIRED, "task_instance")
    rows, problems = _Rows(df.attrs["source"]), _Problems()
    for col in ("dag_id", "task_id", "run_id"):
        _strings(df, col, rows, problems, required=True)
    for col in ("queue", "pool", "hostname", "operator"):
        if col in df.columns:
            _strings(df, col, rows, problems, required=False)
        else:
            df[col] = pd.Series(None, index=df.index, dtype=object)
    _numbers(df, "try_number", rows, problems, integer=True, required=True, minimum=0)
    if "map_index" in df.columns:
        _numbers(df, "map_index", rows, problems, integer=True, required=False, minimum=-1, default=-1)
    else:
        df["map_index"] = -1
    _numbers(df, "duration", rows, problems, integer=False, required=False, minimum=0)
    _states(df, rows, problems, TI_STATES)
    for col in TI_TIMESTAMPS:
        if col in df.columns:
            _timestamps(df, col, rows, problems)
    if problems:
        raise ScenarioError(df.attrs["source"], list(problems))
    _soft_ints(df, ("try_number", "map_index"))
    _others_missing(df, (*TI_REQUIRED, *TI_OPTIONAL, *TI_TIMESTAMPS))
    return df


def read_dag_runs(path) -> pd.DataFrame:
    """An export of Airflow's ``dag_run`` table (CSV with Airflow's column names).

    Needs ``dag_id, run_id, state, queued_at, start_date, end_date`` and keeps every other
    column; the timestamps (also ``execution_date``/``logical_date``, ``data_interval_*``,
    ``last_scheduling_decision``, ``updated_at`` when present) become tz-aware UTC timestamps.
    Problems raise :class:`ScenarioError` as in :func:`read_task_instances`.
    """
    df = _read_csv(path, "dag_run export")
    _require(df, DR_REQUIRED, "dag_run")
    rows, problems = _Rows(df.attrs["source"]), _Problems()
    for col in ("dag_id", "run_id"):
        _strings(df, col, rows, problems, required=True)
    _states(df, rows, problems, DR_STATES | {"none"})
    for col in DR_TIMESTAMPS:
        if col in df.columns:
            _timestamps(df, col, rows, problems)
    if problems:
        raise ScenarioError(df.attrs["source"], list(problems))
    _soft_ints(df, ())
    _others_missing(df, (*DR_REQUIRED, *DR_TIMESTAMPS))
    return df


# -- the DAG's structure ------------------------------------------------------------------------
@dataclass(frozen=True)
class RestTask:
    """One task of ``GET /api/v1/dags/{dag_id}/tasks``, with the fields the simulator uses."""

    task_id: str
    downstream_task_ids: tuple[str, ...] = ()
    operator_name: str | None = None
    pool: str = DEFAULT_POOL
    pool_slots: int = 1
    queue: str = DEFAULT_QUEUE
    priority_weight: int = 1
    weight_rule: str = "downstream"
    retries: int = 0
    retry_delay: float = DEFAULT_RETRY_DELAY
    retry_exponential_backoff: bool = False
    trigger_rule: str = "all_success"
    is_mapped: bool = False

    def task_kwargs(self) -> dict:
        """The :class:`~sim.model.dag.Task` keyword arguments it sets."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("task_id", "downstream_task_ids", "operator_name", "is_mapped")}


@dataclass(frozen=True)
class DagStructure:
    """A DAG's tasks and dependencies as Airflow's REST API describes them."""

    dag_id: str
    tasks: tuple[RestTask, ...]
    source: str | None = None

    @property
    def task_ids(self) -> list[str]:
        return [t.task_id for t in self.tasks]

    @property
    def edges(self) -> set[tuple[str, str]]:
        """``(upstream, downstream)`` pairs."""
        return {(t.task_id, d) for t in self.tasks for d in t.downstream_task_ids}

    def upstream(self) -> dict[str, list[str]]:
        ups: dict[str, list[str]] = {t.task_id: [] for t in self.tasks}
        for t in self.tasks:
            for d in t.downstream_task_ids:
                ups[d].append(t.task_id)
        return ups


def _dag_id_from_name(path) -> str:
    name = Path(path).name
    for suffix in (".tasks.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def read_rest_tasks(path, dag_id: str | None = None) -> DagStructure:
    """A DAG's structure from the JSON of Airflow's REST API ``GET /dags/{dag_id}/tasks``
    (``{"tasks": [...], "total_entries": n}``, or the bare list). ``dag_id`` defaults to the
    file name without ``.tasks.json``. Reads ``task_id``, ``downstream_task_ids``,
    ``operator_name``, ``pool``, ``pool_slots``, ``queue``, ``priority_weight``, ``weight_rule``,
    ``retries``, ``retry_delay``, ``retry_exponential_backoff``, ``trigger_rule``, ``is_mapped``;
    a bad value raises :class:`ScenarioError` naming the file and the JSON path
    (``tasks[3].downstream_task_ids[0]``)."""
    file = str(path)
    data = read_json(path, "REST API task list")
    tasks = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(tasks, list):
        raise ScenarioError(file, [("tasks", "missing: expected the JSON of GET /dags/{dag_id}/tasks "
                                             "({\"tasks\": [...]})")])
    problems = _Problems()
    out: list[RestTask] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(tasks):
        where = f"tasks[{i}]"
        if not isinstance(t, dict):
            problems.add(where, "must be an object")
            continue
        tid = problems.new_id(t, "task_id", where, seen, i, "task_id")
        if tid is None:
            continue
        kw = {"task_id": tid}
        down = t.get("downstream_task_ids")
        if down is None:
            down = []
        if not isinstance(down, list) or not all(isinstance(x, str) for x in down):
            problems.add(f"{where}.downstream_task_ids", "must be a list of task ids")
            down = []
        kw["downstream_task_ids"] = tuple(down)
        for key, kind in (("operator_name", str), ("pool", str), ("queue", str), ("weight_rule", str),
                          ("trigger_rule", str), ("retry_exponential_backoff", bool), ("is_mapped", bool)):
            v = t.get(key)
            if v is None:
                continue
            if key == "weight_rule" and isinstance(v, dict):
                problems.add(f"{where}.{key}", f"a custom priority weight strategy ({v}) is not modelled "
                                               f"(modelled: {', '.join(WEIGHT_RULES)})")
                continue
            if not isinstance(v, kind):
                problems.add(f"{where}.{key}", f"expected {'true or false' if kind is bool else 'a string'} "
                                               f"(got {v!r})")
                continue
            kw[key] = v
        for key, minimum in (("pool_slots", 1), ("priority_weight", None), ("retries", 0)):
            v = t.get(key)
            if v is None:
                continue
            if (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
                    or not float(v).is_integer() or (minimum is not None and v < minimum)):
                problems.add(f"{where}.{key}", f"expected an integer{f' >= {minimum}' if minimum is not None else ''} "
                                               f"(got {v!r})")
                continue
            kw[key] = int(v)
        delay = _seconds(t.get("retry_delay"))
        if delay is False:
            problems.add(f"{where}.retry_delay", f"expected a TimeDelta or seconds (got {t.get('retry_delay')!r})")
        elif delay is not None:
            kw["retry_delay"] = delay
        rule = kw.get("trigger_rule")
        if rule is not None:
            rule = kw["trigger_rule"] = _TRIGGER_ALIASES.get(rule, rule)
            if rule not in TRIGGER_RULES:
                problems.add(f"{where}.trigger_rule", f"trigger rule {rule!r} is not modelled "
                                                      f"(modelled: {', '.join(TRIGGER_RULES)})")
        if kw.get("weight_rule") is not None and kw["weight_rule"] not in WEIGHT_RULES:
            problems.add(f"{where}.weight_rule", f"weight rule {kw['weight_rule']!r} is not one of "
                                                 f"{', '.join(WEIGHT_RULES)}")
        out.append(RestTask(**kw))
    for i, t in enumerate(out):
        for j, d in enumerate(t.downstream_task_ids):
            if d not in seen:
                problems.add(f"tasks[{seen[t.task_id]}].downstream_task_ids[{j}]",
                             f"unknown task {d!r} (not the task_id of any task in the file)")
    if not tasks:
        problems.add("tasks", "must not be empty")
    if problems:
        raise ScenarioError(file, list(problems))
    structure = DagStructure(dag_id or _dag_id_from_name(path), tuple(out), file)
    try:                                        # a cycle
        DAG(structure.dag_id, tasks=_tasks_of(structure)).topological_order()
    except DagError as e:
        raise ScenarioError(file, [("tasks", str(e))]) from None
    return structure


def _seconds(v):
    """Airflow's serialized timedelta (``{"__type": "TimeDelta", "days", "seconds",
    "microseconds"}``) or a number of seconds; None if absent, False if unreadable."""
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0:
        return float(v)
    if isinstance(v, dict) and all(isinstance(v.get(k, 0), (int, float)) for k in ("days", "seconds", "microseconds")):
        total = 86400.0 * v.get("days", 0) + v.get("seconds", 0) + 1e-6 * v.get("microseconds", 0)
        return total if total >= 0 else False
    return False


def _tasks_of(structure: DagStructure) -> list[Task]:
    tasks = {t.task_id: Task(t.task_id) for t in structure.tasks}
    for t in structure.tasks:
        for d in t.downstream_task_ids:
            tasks[t.task_id].set_downstream(tasks[d])
    return list(tasks.values())


# -- a structure from any of the accepted forms -------------------------------------------------
@dataclass
class _Template:
    """A DAG's tasks (attributes but the duration), edges and DAG-level settings."""

    dag_id: str
    tasks: dict[str, dict]                  # task_id -> Task keyword arguments
    edges: list[tuple[str, str]]
    dag_kwargs: dict
    source: str | None

    def upstream(self) -> dict[str, list[str]]:
        ups: dict[str, list[str]] = {t: [] for t in self.tasks}
        for a, b in self.edges:
            ups[b].append(a)
        return ups


_TASK_SKIP = {"task_id", "duration", "dag", "upstream", "downstream"}
_LOADING: set[str] = set()      # scenario files being read as structures (a file naming itself)


def _from_dag(dag: DAG, source: str | None) -> _Template:
    tasks = {tid: {f.name: getattr(t, f.name) for f in fields(Task) if f.name not in _TASK_SKIP}
             for tid, t in dag.tasks.items()}
    edges = [(t.task_id, d.task_id) for t in dag.tasks.values() for d in t.downstream]
    return _Template(dag.dag_id, tasks, edges, {"max_active_runs": dag.max_active_runs,
                                                 "max_active_tasks": dag.max_active_tasks,
                                                 "parse_time": dag.parse_time}, source)


def _from_rest(s: DagStructure) -> _Template:
    return _Template(s.dag_id, {t.task_id: t.task_kwargs() for t in s.tasks},
                     sorted(s.edges), {}, s.source)


#: Reads the DAGs of a scenario file given as a structure: set by ``sim.scenario``, which sits
#: above the importers (a scenario file may itself import DAGs, so the two recurse).
scenario_dags_reader = None


def _scenario_dags(path) -> list[DAG]:
    key = str(Path(path).resolve())
    if key in _LOADING:
        raise ScenarioError(str(path), "the DAG structure refers back to this scenario file (a loop)")
    _LOADING.add(key)
    try:
        return scenario_dags_reader(path)
    finally:
        _LOADING.discard(key)


def _templates(structure, dag_id: str | None = None) -> list[_Template]:
    """Every DAG structure ``structure`` describes (see :func:`dag_from_export`)."""
    if structure is None:
        return []
    if isinstance(structure, DAG):
        return [_from_dag(structure, None)]
    if isinstance(structure, DagStructure):
        return [_from_rest(structure)]
    if isinstance(structure, dict):
        return [t for v in structure.values() for t in _templates(v)]
    if isinstance(structure, (list, tuple)):
        return [t for v in structure for t in _templates(v)]
    path = Path(structure)
    if path.is_dir():
        files = sorted(path.glob("*.tasks.json"))
        if not files:
            raise ScenarioError(str(path), "no <dag_id>.tasks.json file in this folder")
        return [_from_rest(read_rest_tasks(f)) for f in files]
    if path.suffix.lower() in (".yaml", ".yml"):
        return [_from_dag(d, str(path)) for d in _scenario_dags(path)]
    if path.suffix.lower() == ".py":              # an Airflow DAG file: the [airflow] extra
        return [_from_dag(d, str(path)) for d in structures(path)]
    return [_from_rest(read_rest_tasks(path, dag_id))]


def _template(structure, dag_id: str | None) -> _Template:
    found = _templates(structure, dag_id)
    if dag_id is None:
        if len(found) == 1:
            return found[0]
        raise ScenarioError(_source_name(structure), "it describes several DAGs "
                            f"({', '.join(t.dag_id for t in found)}): say which with dag_id")
    if len(found) == 1 and (isinstance(structure, (DAG, DagStructure)) or (
            isinstance(structure, (str, Path)) and Path(structure).suffix.lower() == ".json")):
        return found[0]         # one DAG given explicitly: dag_id only picks the export's rows
    for t in found:
        if t.dag_id == dag_id:
            return t
    raise ScenarioError(_source_name(structure), f"no DAG {dag_id!r} in the structure "
                        f"(DAGs: {', '.join(t.dag_id for t in found) or 'none'})")


def _source_name(x) -> str | None:
    return str(x) if isinstance(x, (str, Path)) else None


def _ti_frame(task_instances) -> pd.DataFrame:
    if isinstance(task_instances, pd.DataFrame):
        missing = [c for c in TI_REQUIRED if c not in task_instances.columns]
        if missing:
            raise ScenarioError(task_instances.attrs.get("source"),
                                f"the task instances lack column(s) {', '.join(missing)}")
        return task_instances
    return read_task_instances(task_instances)


# -- building the DAG ---------------------------------------------------------------------------
def dag_from_export(task_instances, structure, *, dag_id: str | None = None, schedule=None,
                    unrun: float | None = None) -> DAG:
    """A DAG whose tasks resample their recorded durations.

    ``task_instances``: a ``task_instance`` export (a path, or the DataFrame of
    :func:`read_task_instances`). ``structure``: the DAG's tasks and dependencies, as the JSON of
    Airflow's REST API (a ``<dag_id>.tasks.json`` path), a scenario file (path to ``.yaml``), an
    Airflow DAG file (``.py``; needs apache-airflow, the ``[airflow]`` extra), a
    :class:`~sim.model.dag.DAG` or a :class:`DagStructure`. ``dag_id`` picks the DAG in the export
    (default: the structure's); ``schedule`` defaults to one run at time 0.

    Each task's duration is ``Empirical`` over the ``duration`` of its successful tries (state
    ``success``; other states are ignored), in the order of the file; a mapped task (rows with
    ``map_index >= 0``) also gets ``expand``, resampling how many map indices each run had. Its
    other attributes (pool, queue, priority weight, retries, trigger rule, ...) come from the
    structure. A task id of the export unknown to the structure, or a structure task without any
    successful try, raises :class:`ScenarioError` naming the file, the line and row, and the column;
    with ``unrun`` (seconds) such a task takes that constant duration instead (calibration, whose
    known bodies replace the durations, replays runs where a task failed or never ran).
    """
    ti = _ti_frame(task_instances)
    ti_file = ti.attrs.get("source")
    tpl = _template(structure, dag_id)
    dag_id = dag_id or tpl.dag_id
    rows = _Rows(ti_file)
    mine = ti[ti["dag_id"] == dag_id]
    if mine.empty:
        known = sorted(set(ti["dag_id"].dropna()))
        raise ScenarioError(ti_file, [("column dag_id", f"no task instances of DAG {dag_id!r} "
                                                        f"(the export has: {', '.join(known) or 'none'})")])
    problems = _Problems()
    # Data rows by index label: read_task_instances numbers them 0, 1, ... and a filtered frame
    # keeps the labels, so messages still point at the file's rows.
    labelled = ti.index.is_unique and pd.api.types.is_integer_dtype(ti.index.dtype)
    positions = (pd.Series(ti.index, index=ti.index) if labelled
                 else pd.Series(range(len(ti)), index=ti.index))
    unknown = mine[~mine["task_id"].isin(tpl.tasks.keys())]
    for idx, tid in zip(unknown.index, unknown["task_id"]):
        problems.add(rows.where(int(positions[idx]), "task_id"),
                     f"task {tid!r} is not in the structure of DAG {dag_id!r}"
                     f"{f' ({tpl.source})' if tpl.source else ''}; its tasks: {_few(tpl.tasks)}")
    ok = mine[mine["state"] == "success"]
    for idx in ok.index[ok["duration"].isna()]:
        problems.add(rows.where(int(positions[idx]), "duration"),
                     "missing value: a successful try needs its duration")
    if problems:
        raise ScenarioError(ti_file, list(problems))
    samples = ok.groupby("task_id", sort=False)["duration"].agg(tuple).to_dict()
    for tid in tpl.tasks:
        if tid not in samples and unrun is not None:
            samples[tid] = (unrun,)
        elif tid not in samples:
            problems.add("column state", f"task {tid!r} of DAG {dag_id!r} has no successful try "
                                         "(state success) in this export: no duration to resample")
    if problems:
        raise ScenarioError(ti_file, list(problems))
    mapped = mine[mine["map_index"] >= 0]
    counts = (mapped.groupby(["task_id", "run_id"], sort=False)["map_index"].nunique()
              .groupby(level=0, sort=False).agg(tuple).to_dict()) if not mapped.empty else {}
    tasks = []
    for tid, kw in tpl.tasks.items():
        kw = dict(kw)
        if tid in counts and kw.get("expand") is None:
            kw["expand"] = Empirical(tuple(float(c) for c in counts[tid]))
        tasks.append(Task(tid, duration=Empirical(tuple(float(s) for s in samples[tid])), **kw))
    dag = DAG(dag_id, schedule if schedule is not None else At((0.0,)), tasks=tasks,
              **{k: v for k, v in tpl.dag_kwargs.items()})
    for a, b in tpl.edges:
        dag.tasks[a].set_downstream(dag.tasks[b])
    dag.topological_order()
    return dag


def _few(names, n: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


# -- what really happened -----------------------------------------------------------------------
def observed_runs(task_instances, dag_runs=None, structure=None) -> pd.DataFrame:
    """What each task instance of each recorded DAG run went through: one row per row of the
    ``task_instance`` export, in its order, as a tidy DataFrame.

    ``task_instances``: a path or the DataFrame of :func:`read_task_instances`; ``dag_runs``
    (optional): a path or the DataFrame of :func:`read_dag_runs`; ``structure`` (optional, needed
    for ``ready_at``): the DAGs' structure, as :func:`dag_from_export` takes it, a folder of
    ``<dag_id>.tasks.json`` files, or a list or mapping of those.

    Columns (times are tz-aware UTC timestamps, delays and durations float seconds):

    - ``dag_id, run_id, task_id, map_index, try_number, state, queue, pool, hostname, operator``:
      as in the export;
    - ``ready_at``: when the task's dependencies were met: the latest ``end_date`` of its upstream
      tasks in the run (every map index); for a task with no upstream, the DAG run's
      ``start_date`` (only with ``dag_runs``). NaT without a structure for the DAG, and for rows
      with ``try_number > 1`` (the export holds only a task's last try; earlier tries are in
      Airflow's ``task_instance_history``);
    - ``queued_at, started_at, ended_at``: Airflow's ``queued_dttm, start_date, end_date``;
    - ``ready_to_queued`` = queued_at - ready_at; ``queued_to_started`` = started_at - queued_at
      (in Airflow 2 it includes the task process's start and DAG parsing: ``start_date`` is
      written after them); ``ready_to_started`` = started_at - ready_at;
    - ``duration``: Airflow's ``duration`` column (end_date - start_date, as Airflow wrote it);
    - ``run_queued_at, run_start_at, run_end_at``: the DAG run's ``queued_at, start_date,
      end_date`` from ``dag_runs``; without it (or for a run it lacks) run_queued_at is NaT,
      run_start_at the run's first ``queued_dttm`` and run_end_at its last ``end_date``;
    - ``makespan`` = run_end_at - run_start_at; ``makespan_from``: ``dag_run`` or
      ``task_instances``, which of the two it came from.
    """
    ti = _ti_frame(task_instances)
    dr = None if dag_runs is None else (dag_runs if isinstance(dag_runs, pd.DataFrame) else read_dag_runs(dag_runs))
    keys = ["dag_id", "run_id"]
    cols = ["dag_id", "run_id", "task_id", "map_index", "try_number", "state", "queue", "pool",
            "hostname", "operator"]
    out = pd.DataFrame({c: ti[c] if c in ti.columns else pd.NA for c in cols}, index=ti.index)
    out["queued_at"], out["started_at"], out["ended_at"] = ti["queued_dttm"], ti["start_date"], ti["end_date"]

    # run bounds
    from_tis = ti.groupby(keys, sort=False).agg(first_queued=("queued_dttm", "min"),
                                                 last_ended=("end_date", "max")).reset_index()
    runs = from_tis.rename(columns={"first_queued": "run_start_at", "last_ended": "run_end_at"})
    runs["run_queued_at"] = pd.Series(pd.NaT, index=runs.index, dtype="datetime64[us, UTC]")
    runs["makespan_from"] = "task_instances"
    if dr is not None:
        d = dr[keys + ["queued_at", "start_date", "end_date"]].drop_duplicates(keys).rename(
            columns={"queued_at": "q", "start_date": "s", "end_date": "e"})
        runs = runs.merge(d, on=keys, how="left")
        has = runs["s"].notna() & runs["e"].notna()
        runs.loc[has, "run_start_at"] = runs.loc[has, "s"]
        runs.loc[has, "run_end_at"] = runs.loc[has, "e"]
        runs["run_queued_at"] = runs["q"]
        runs.loc[has, "makespan_from"] = "dag_run"
        runs = runs.drop(columns=["q", "s", "e"])
    runs = runs[keys + ["run_queued_at", "run_start_at", "run_end_at", "makespan_from"]]

    # ready: latest end of the upstream tasks in the run
    ups = []
    known_dags, roots = set(), set()
    for tpl in _templates(structure):
        known_dags.add(tpl.dag_id)
        for task, up in tpl.upstream().items():
            if not up:
                roots.add((tpl.dag_id, task))
            ups.extend((tpl.dag_id, task, u) for u in up)
    ends = ti.groupby(keys + ["task_id"], sort=False)["end_date"].max().rename("up_end").reset_index() \
             .rename(columns={"task_id": "upstream_task_id"})
    edges = pd.DataFrame(ups, columns=["dag_id", "task_id", "upstream_task_id"])
    pairs = ti[keys + ["task_id"]].drop_duplicates()
    upstream_end = (pairs.merge(edges, on=["dag_id", "task_id"])
                    .merge(ends, on=keys + ["upstream_task_id"], how="left")
                    .groupby(keys + ["task_id"], sort=False)["up_end"].max().rename("upstream_ended_at")
                    .reset_index())
    merged = (out[keys + ["task_id"]].reset_index(names="_row")
              .merge(upstream_end, on=keys + ["task_id"], how="left")
              .merge(runs, on=keys, how="left").set_index("_row").loc[out.index])
    is_root = pd.Series([(d, t) in roots for d, t in zip(out["dag_id"], out["task_id"])], index=out.index)
    root_ready = merged["run_start_at"].where(merged["makespan_from"] == "dag_run")
    ready = merged["upstream_ended_at"].astype("datetime64[us, UTC]").where(~is_root, root_ready)
    ready = ready.where(out["dag_id"].isin(known_dags) & (out["try_number"] <= 1))
    out["ready_at"] = ready.astype("datetime64[us, UTC]")
    out["ready_to_queued"] = (out["queued_at"] - out["ready_at"]).dt.total_seconds()
    out["queued_to_started"] = (out["started_at"] - out["queued_at"]).dt.total_seconds()
    out["ready_to_started"] = (out["started_at"] - out["ready_at"]).dt.total_seconds()
    out["duration"] = ti["duration"].astype("float64")
    for c in ("run_queued_at", "run_start_at", "run_end_at"):
        out[c] = merged[c].astype("datetime64[us, UTC]")
    out["makespan"] = (out["run_end_at"] - out["run_start_at"]).dt.total_seconds()
    out["makespan_from"] = merged["makespan_from"]
    order = cols + ["ready_at", "queued_at", "started_at", "ended_at", "ready_to_queued",
                    "queued_to_started", "ready_to_started", "duration", "run_queued_at",
                    "run_start_at", "run_end_at", "makespan", "makespan_from"]
    return out[order].reset_index(drop=True)


def observed_dag_runs(task_instances, dag_runs=None) -> pd.DataFrame:
    """One row per recorded DAG run: ``dag_id, run_id, state`` (the run's, with ``dag_runs``;
    else missing), ``task_instances`` (rows of the export), ``run_queued_at, run_start_at,
    run_end_at, makespan, makespan_from`` as in :func:`observed_runs`."""
    obs = observed_runs(task_instances, dag_runs)
    runs = obs.groupby(["dag_id", "run_id"], sort=False).agg(
        task_instances=("task_id", "size"), run_queued_at=("run_queued_at", "first"),
        run_start_at=("run_start_at", "first"), run_end_at=("run_end_at", "first"),
        makespan=("makespan", "first"), makespan_from=("makespan_from", "first")).reset_index()
    state = pd.Series(pd.NA, index=runs.index, dtype="str")
    if dag_runs is not None:
        dr = dag_runs if isinstance(dag_runs, pd.DataFrame) else read_dag_runs(dag_runs)
        state = runs[["dag_id", "run_id"]].merge(dr[["dag_id", "run_id", "state"]].drop_duplicates(
            ["dag_id", "run_id"]), how="left", on=["dag_id", "run_id"])["state"]
    runs.insert(2, "state", state.to_numpy())
    return runs
