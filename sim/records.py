"""What a run records, kept columnar so millions of task instances stay cheap.

* one row per task-instance try (``task_instances.csv``),
* one row per DAG run (``dag_runs.csv``),
* every state transition, stamped with simulated time and a cause (``transitions.csv``), so a
  run can explain why a task waited.

Transitions and component events are most of a long run's rows (four to eight a task instance)
and nothing at the run's end reads them but their files: with a :class:`TableStream` attached
(``sim run --stream``) they go to ``transitions.csv`` and ``events.csv`` a block at a time while
the simulation runs, instead of staying in memory until its end; the files are the same bytes.

Strings (dag ids, task ids, queues, workers, causes) are interned to small integers while the
simulation runs and turned back into text only when a DataFrame is built. Integer columns are
32-bit (``array("i")``): ids, codes and try numbers of a run stay far below 2**31 (an append beyond
raises OverflowError, it never wraps), and a million task instances' rows take half the memory.
Rows are appended to plain lists, which move into the arrays a block at a time (:data:`BUFFER`):
``array.append`` converts every value through ``PyArg_Parse`` (3.6 % of a run's instructions), where
``struct`` packs a whole block in one call.
"""
from __future__ import annotations

import math
import struct
from array import array
from pathlib import Path

import numpy as np
import pandas as pd

from .csvout import append_csv
from .model.state_core import STATE_CODE, STATES
from .model.stimuli import EventKind, Said, Stimulus

_NAN = math.nan
_STIMULI = list(Stimulus)
_STIMULUS_CODE = {k: i for i, k in enumerate(_STIMULI)}
_EVENT_KINDS = list(EventKind)
_EVENT_CODE = {k: i for i, k in enumerate(_EVENT_KINDS)}

#: Rows a table gathers in lists before they move into its arrays (a bound on the lists' memory).
BUFFER = 4096


class Interner:
    """Strings to codes, in order of first sight. A :class:`~sim.model.stimuli.Said` (a wording
    and a name, used once: ``task process started on <pod>``) gets a code of its own without
    being looked up or kept as a string: ``values`` holds its name and ``wording`` the index
    (+1) of its wording in ``wordings``; :meth:`texts` joins them."""

    __slots__ = ("codes", "values", "wording", "wordings")

    def __init__(self):
        self.codes: dict = {}
        self.values: list = []
        self.wording = bytearray()          # per code: 0, or 1 + index into wordings
        self.wordings: list = []

    def __call__(self, value) -> int:
        code = self.codes.get(value)
        if code is None:
            code = len(self.values)
            if type(value) is Said:
                try:
                    w = self.wordings.index(value.wording) + 1
                except ValueError:
                    self.wordings.append(value.wording)
                    w = len(self.wordings)
                self.values.append(value.name)
                self.wording.append(w)
                return code
            self.codes[value] = code
            self.values.append(value)
            self.wording.append(0)
        return code

    def texts(self, codes: np.ndarray | None = None) -> list:
        """The text of each code (all of them by default): "" for None. The codes are picked
        with NumPy, not as a million Python ints that would be freed among the new strings."""
        vals, wording, wordings = self.values, self.wording, self.wordings
        if codes is not None:
            vals = np.fromiter(vals, dtype=object, count=len(vals))[codes].tolist()
            wording = np.frombuffer(wording, dtype=np.uint8)[codes].tobytes()
        return [wordings[w - 1] + v if w else "" if v is None else str(v) for v, w in zip(vals, wording)]


class Recorder:
    """Columnar store of tries, DAG runs, transitions and events: a subscriber of the state core
    (``sim/model/state_core.py``), which decides every change; this only keeps what it is told."""

    TI_TIMES = ("ready_at", "scheduled_at", "queued_at", "launched_at", "started_at", "ended_at",
                "released_at")
    # the tables' columns (in the order of their frames' source arrays)
    _TI_COLUMNS = ("ti_uid", "ti_dag", "ti_run", "ti_task", "ti_map", "ti_try", "ti_state", "ti_executor",
                   "ti_queue", "ti_pool", "ti_worker", "ti_host")
    _TI_TIME_COLUMNS = ("t_ready", "t_scheduled", "t_queued", "t_launched", "t_started", "t_ended", "t_released")
    _TR_COLUMNS = ("tr_uid", "tr_from", "tr_to", "tr_time", "tr_cause", "tr_stimulus")
    _EV_COLUMNS = ("ev_time", "ev_uid", "ev_try", "ev_what", "ev_who", "ev_kind")

    def __init__(self, record_transitions: bool = True):
        self.strings = Interner()
        self.record_transitions = record_transitions
        #: Every column's array, by name; the attribute of that name is the list its rows are
        #: appended to until they move into the array (_settle).
        self._arrays: dict[str, array] = {}
        for names, typecodes in ((self._TI_COLUMNS, "iiiiiibiiiii"), (self._TI_TIME_COLUMNS, "ddddddd"),
                                 (self._TR_COLUMNS, "ibbdib"), (self._EV_COLUMNS, "diiiib")):
            for name, typecode in zip(names, typecodes):
                self._arrays[name] = array(typecode)
                setattr(self, name, [])
        self._codes = self.strings.codes       # for interning without a call on the hot path
        # dag runs
        self.dr_rows: list[tuple] = []
        self._unreleased: dict = {}      # (uid, try) -> row whose released_at is still to come
        self._released_early: dict = {}  # (uid, try) -> slot freed before the try's row was written
        #: Where transitions and events go as they accumulate (None: kept until the frames are built).
        self.stream: TableStream | None = None

    def attach(self, core) -> None:
        """Store what the state core ``core`` reports."""
        news = {"try_ended": self.try_ended, "slot_freed": self.release, "release_forgotten": self.forget_release,
                "run_ended": self.dag_run_ended, "event": self.event}
        if self.record_transitions:
            news["transition"] = self.transition
        core.subscribe(**news)

    # -- what the core reports ------------------------------------------------------------------
    def transition(self, ti, old_code: int, new_code: int, now: float, stimulus, cause: str) -> None:
        self.tr_uid.append(ti.uid)
        self.tr_from.append(old_code)
        self.tr_to.append(new_code)
        self.tr_time.append(now)
        self.tr_stimulus.append(_STIMULUS_CODE[stimulus])
        code = self._codes.get(cause)
        self.tr_cause.append(code if code is not None else self.strings(cause))
        if len(self.tr_time) >= BUFFER:
            self._settle(self._TR_COLUMNS)

    def event(self, time: float, kind, what: str, ti, try_number: int, who: str) -> None:
        """Something a component did (not a state change): for explaining a run."""
        self.ev_kind.append(_EVENT_CODE[kind])
        self.ev_time.append(time)
        self.ev_uid.append(ti.uid if ti is not None else -1)
        self.ev_try.append(try_number)
        codes = self._codes                     # interned without a call when seen before
        code = codes.get(what)
        self.ev_what.append(code if code is not None else self.strings(what))
        code = codes.get(who)
        self.ev_who.append(code if code is not None else self.strings(who))
        if len(self.ev_time) >= BUFFER:
            self._settle(self._EV_COLUMNS)

    # -- rows -----------------------------------------------------------------------------------
    def try_ended(self, ti, outcome=None) -> int:
        """Append the row of the try ``ti`` just finished (or of a TI that never ran); returns
        the row number, so the executor slot's release can be filled in later."""
        stream = self.stream
        if stream is not None and (self.rows("tr_time") >= stream.block or self.rows("ev_time") >= stream.block):
            stream.flush(self)
        codes = self._codes
        s = self.strings
        run = ti.run
        task = ti.task
        self.ti_uid.append(ti.uid)
        self.ti_dag.append(run.plan.index)
        self.ti_run.append(run.idx)
        self.ti_task.append(ti.ti_index)
        self.ti_map.append(ti.map_index)
        self.ti_try.append(ti.try_number)
        self.ti_state.append(STATE_CODE[ti.state])
        # interned text columns, unrolled (this runs once per try)
        v = ti.executor
        code = codes.get(v)
        self.ti_executor.append(code if code is not None else s(v))
        v = task.queue
        code = codes.get(v)
        self.ti_queue.append(code if code is not None else s(v))
        v = task.pool
        code = codes.get(v)
        self.ti_pool.append(code if code is not None else s(v))
        v = ti.worker
        code = codes.get(v)
        self.ti_worker.append(code if code is not None else s(v))
        v = ti.host
        code = codes.get(v)
        self.ti_host.append(code if code is not None else s(v))
        self.t_ready.append(ti.ready_at)
        self.t_scheduled.append(ti.scheduled_at)
        self.t_queued.append(ti.queued_at)
        self.t_launched.append(ti.launched_at)
        self.t_started.append(ti.started_at)
        self.t_ended.append(ti.ended_at)
        early = self._released_early.pop((ti.uid, ti.try_number), None) if self._released_early else None
        self.t_released.append(_NAN if early is None else early)
        row = len(self._arrays["ti_uid"]) + len(self.ti_uid) - 1
        if len(self.ti_uid) >= BUFFER:
            self._settle(self._TI_COLUMNS + self._TI_TIME_COLUMNS)
        if early is not None:
            return row
        self._unreleased[(ti.uid, ti.try_number)] = row
        return row

    def release(self, ti, try_number: int, at: float) -> None:
        """Stamp when the executor freed the slot of a try (its row may be written already, or
        later: a zombie's row is written when it is detected)."""
        row = self._unreleased.pop((ti.uid, try_number), None)
        if row is not None:
            settled = self._arrays["t_released"]
            if row < len(settled):
                settled[row] = at
            else:
                self.t_released[row - len(settled)] = at
        else:
            self._released_early[(ti.uid, try_number)] = at

    def forget_release(self, ti) -> None:
        """The current try was revoked while queued and goes back to ``scheduled`` under the
        same key: its row will be that of the attempt that runs, so the revoked attempt's early
        release must not be stamped on it."""
        if self._released_early:
            self._released_early.pop((ti.uid, ti.try_number), None)

    def dag_run_ended(self, run) -> None:
        self.dr_rows.append((run.plan.index, run.idx, run.due_at, run.created_at, run.started_at,
                             run.ended_at, run.state.value))

    # -- DataFrames -----------------------------------------------------------------------------
    # Built straight from the arrays (no per-row Python objects): text columns are categoricals
    # over the interned strings, so a million rows stay small in memory. With ``release=True`` (a
    # run's frames are built once, at its end) the recorder hands each table's columns over and
    # keeps empty ones: a frame may then use an array's memory as it is, and a column's array is
    # freed as soon as the frame has its own, so a long run never holds its results twice.
    def _settle(self, names) -> None:
        """Move the rows gathered in the lists of the columns ``names`` into their arrays, packed
        by ``struct`` in one call a column (the array's own C types, checked as ``append`` checks
        them: a value out of a column's range raises OverflowError)."""
        arrays = self._arrays
        for n in names:
            rows = getattr(self, n)
            if rows:
                a = arrays[n]
                try:
                    a.frombytes(struct.pack(f"{len(rows)}{a.typecode}", *rows))
                except struct.error as e:
                    raise OverflowError(f"{n}: {e}") from e
                rows.clear()

    def rows(self, name: str) -> int:
        """Rows in the column ``name`` (its table's length)."""
        return len(self._arrays[name]) + len(getattr(self, name))

    def _hand_over(self, names, release: bool) -> dict:
        """name -> array; with ``release`` the recorder keeps an empty array in its place."""
        self._settle(names)
        cols = {n: self._arrays[n] for n in names}
        if release:
            for n, a in cols.items():
                self._arrays[n] = array(a.typecode)
        return cols

    def _cat(self, codes, categories) -> pd.Categorical:
        return pd.Categorical.from_codes(codes if isinstance(codes, np.ndarray) else _np(codes),
                                         categories=categories)

    def _strings_cat(self, codes) -> pd.Categorical:
        """A categorical of the interned strings a column uses. With a small table of strings the
        codes map through it directly; with a large one (a pod name per task instance) only the
        strings the column uses are looked at."""
        raw = codes if isinstance(codes, np.ndarray) else _np(codes)
        n = len(self.strings.values)
        if n <= 65536:
            return _categorical(raw, self.strings.texts())
        # the codes used, in order, and each row's rank among them (np.unique's answer, without
        # sorting every row's code)
        seen = np.zeros(n, dtype=bool)
        seen[raw] = True
        used = np.flatnonzero(seen)
        del seen
        rank = np.zeros(n, dtype=np.int32)
        rank[used] = np.arange(len(used), dtype=np.int32)
        return _categorical(rank[raw], self.strings.texts(used))

    def finish(self) -> None:
        """No more news: the lookup table of the interned strings goes (the frames need only
        their texts, ``strings.values``). A run of a million pods has a million entries in it."""
        self.strings.codes = self._codes = {}

    def forget_strings(self) -> None:
        """Drop the interned strings (once the frames that use them are built, with ``release``)."""
        self.strings = Interner()
        self._codes = self.strings.codes

    def task_instances(self, plans, run_ids, release: bool = False) -> pd.DataFrame:
        """One row per try, in reading order: by task instance (uids follow run creation), then
        try, rows of one key in the order they were written (a stable sort)."""
        cols = self._hand_over(self._TI_COLUMNS, release)
        cols.update(zip(self.TI_TIMES, self._hand_over(self._TI_TIME_COLUMNS, release).values()))
        order = np.lexsort((_np(cols["ti_try"]), _np(cols["ti_uid"])))

        def col(name, dtype=None):
            a = _np(cols.pop(name))[order]
            return a if dtype is None else a.astype(dtype)
        dag = col("ti_dag", np.int64)
        run = col("ti_run", np.int64)
        offsets = np.cumsum([0] + [p.n for p in plans])[:-1]
        flat_tasks = [t.task_id for p in plans for t in p.tasks]
        task = col("ti_task") + offsets[dag] if len(dag) else np.zeros(0, dtype=np.int64)
        data = {
            "dag_id": pd.Categorical.from_codes(dag, categories=[p.dag_id for p in plans]),
            "run_id": run_id_categorical(dag, run, run_ids),
            "task_id": _categorical(task, flat_tasks),
            "map_index": col("ti_map", np.int64),
            "try_number": col("ti_try", np.int64),
            "state": self._cat(col("ti_state"), [st.value for st in STATES]),
        }
        del dag, run, task
        for name in ("executor", "queue", "pool", "worker", "host"):
            data[name] = self._strings_cat(col("ti_" + name))
        for name in self.TI_TIMES:
            data[name] = col(name)
        data["ti_uid"] = col("ti_uid", np.int64)
        return pd.DataFrame(data, copy=False)

    def dag_runs(self, plans, run_ids, release: bool = False) -> pd.DataFrame:
        rows = sorted(self.dr_rows, key=lambda r: (r[0], r[1]))
        if release:
            self.dr_rows = []
        return pd.DataFrame({
            "dag_id": [plans[r[0]].dag_id for r in rows],
            "run_id": [run_ids[(r[0], r[1])] for r in rows],
            "due_at": [r[2] for r in rows],
            "created_at": [r[3] for r in rows],
            "started_at": [r[4] for r in rows],
            "ended_at": [r[5] for r in rows],
            "state": [r[6] for r in rows],
        }, columns=["dag_id", "run_id", "due_at", "created_at", "started_at", "ended_at", "state"])

    def events(self, release: bool = False) -> pd.DataFrame:
        cols = self._hand_over(self._EV_COLUMNS, release)
        return pd.DataFrame({
            "time": _np(cols.pop("ev_time"), copy=not release),
            "ti_uid": _np(cols.pop("ev_uid")).astype(np.int64),
            "try_number": _np(cols.pop("ev_try")).astype(np.int64),
            "what": self._strings_cat(cols.pop("ev_what")),
            "who": self._strings_cat(cols.pop("ev_who")),
            "kind": self._cat(cols.pop("ev_kind"), [k.value for k in _EVENT_KINDS]),
        }, copy=False)

    def transitions(self, release: bool = False) -> pd.DataFrame:
        cols = self._hand_over(self._TR_COLUMNS, release)
        return pd.DataFrame({
            "ti_uid": _np(cols.pop("tr_uid")).astype(np.int64),
            "time": _np(cols.pop("tr_time"), copy=not release),
            "from_state": self._cat(cols.pop("tr_from"), [st.value for st in STATES]),
            "to_state": self._cat(cols.pop("tr_to"), [st.value for st in STATES]),
            "cause": self._strings_cat(cols.pop("tr_cause")),
            "stimulus": self._cat(cols.pop("tr_stimulus"), [k.value for k in _STIMULI]),
        }, copy=False)


#: Rows of transitions (or events) a :class:`TableStream` lets the recorder gather before writing them.
STREAM_BLOCK = 1 << 16


class TableStream:
    """``transitions.csv`` and ``events.csv`` in ``folder``, written while the simulation runs: the
    recorder hands over its transitions and events whenever one of them reaches ``block`` rows
    (checked as each try ends) and once more at the end. Each part is the frame
    :meth:`Recorder.transitions` / :meth:`Recorder.events` builds, written after the previous one,
    so a file is byte for byte the file of the whole frame; a table without rows has no file, as
    in the results folder."""

    NAMES = ("transitions", "events")

    def __init__(self, folder, block: int | None = None):
        self.folder = Path(folder)
        self.block = block or STREAM_BLOCK
        self.files: dict = {}
        self.rows = dict.fromkeys(self.NAMES, 0)

    def flush(self, rec: Recorder) -> None:
        if rec.rows("tr_time"):
            self._append("transitions", rec.transitions(release=True))
        if rec.rows("ev_time"):
            self._append("events", rec.events(release=True))

    def _append(self, name: str, frame: pd.DataFrame) -> None:
        f = self.files.get(name)
        if f is None:
            f = self.files[name] = open(self.folder / f"{name}.csv", "w", encoding="utf-8", newline="")
        append_csv(frame, f, header=not self.rows[name])
        self.rows[name] += len(frame)

    def close(self) -> dict:
        """Close the files: name -> path of each table written."""
        for f in self.files.values():
            f.close()
        return {name: Path(f.name) for name, f in self.files.items()}


def _np(a: array, copy: bool = False) -> np.ndarray:
    """An array's numbers as a NumPy array: its memory itself (unless ``copy``)."""
    v = np.frombuffer(a, dtype=a.typecode) if len(a) else np.zeros(0, dtype=a.typecode)
    return v.copy() if copy else v


def run_id_categorical(dag: np.ndarray, run: np.ndarray, run_ids: dict) -> pd.Categorical:
    """The run id of each row's (DAG index, run index), as a categorical ("" for a run not in
    ``run_ids``)."""
    if not len(dag):
        return pd.Categorical([])
    width = int(run.max()) + 1
    key = dag.astype(np.int64) * width + run
    uniq, inverse = np.unique(key, return_inverse=True)
    cats = [run_ids.get((int(k) // width, int(k) % width), "") for k in uniq]
    return _categorical(inverse.reshape(-1), cats)   # run ids repeat across DAGs


def coded_categorical(codes, values: list) -> pd.Categorical:
    """A categorical of ``values[codes]``, its categories the values used, in order of code
    (``values`` holds no repeats)."""
    uniq, inverse = np.unique(np.asarray(codes, dtype=np.int64), return_inverse=True)
    return _categorical(inverse.reshape(-1), [values[int(u)] for u in uniq])


def _categorical(codes: np.ndarray, values: list) -> pd.Categorical:
    """Categorical of ``values[codes]`` where ``values`` may repeat (task ids across DAGs): each
    distinct value is a category, in order of first appearance in ``values``."""
    index = pd.Index(values)
    if index.is_unique:                  # the usual case: the codes are the categorical's own
        cat = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(index))
    else:
        cats: dict = {}
        remap = np.asarray([cats.setdefault(v, len(cats)) for v in values], dtype=np.int64)
        remap = remap.astype(np.min_scalar_type(-len(cats)))     # codes as small as pandas keeps them
        cat = pd.Categorical.from_codes(remap[codes] if len(codes) else codes, categories=list(cats))
    drop_lookup(cat.categories, index)
    return cat


def drop_lookup(*indexes: pd.Index) -> None:
    """Drop the hash table pandas keeps on each index (``Index._cache``) once it has checked that
    the categories are unique or looked names up, for lookups nobody makes later. With a category
    per pod (Kubernetes: the tries' worker, the events' ``who``, ``task process started on <pod>``)
    that is about 60 MiB a million task instances, 6 % of a 1 M run's peak (issue #13). pandas
    makes it again if a lookup needs it; if a pandas release keeps it elsewhere, this does
    nothing."""
    for index in indexes:
        cache = getattr(index, "_cache", None)
        if isinstance(cache, dict):
            cache.pop("_engine", None)
