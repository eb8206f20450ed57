"""DAGs and tasks with Airflow's semantics.

Dependencies are written as in Airflow, in Python (``t1 >> [t2, t3] >> t4``) or as a string in a
scenario file (``"T1 >> [T2, T3] >> T4"``, several lines allowed, ``<<`` too). Cycles and unknown
task names raise :class:`DagError`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .durations import Distribution, as_distribution

#: Trigger rules the model implements (airflow-mechanics.md §1.7).
TRIGGER_RULES = ("all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
                 "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always")
WEIGHT_RULES = ("downstream", "upstream", "absolute")
#: Airflow's defaults (airflow-mechanics.md §1.3, §1.6, §1.8).
DEFAULT_QUEUE = "default"                 # [operators] default_queue
DEFAULT_POOL = "default_pool"
DEFAULT_RETRY_DELAY = 300.0               # [core] default_task_retry_delay
MAX_TASK_RETRY_DELAY = 86400.0            # [core] max_task_retry_delay


@dataclass(frozen=True)
class Sensor:
    """A sensor (airflow-mechanics.md §1.10): it pokes every ``poke_interval`` until its
    condition holds, ``wait`` after its first poke (a distribution), or ``timeout`` passes
    (then the try fails, or is skipped with ``soft_fail``). In ``poke`` mode it keeps its slots
    between pokes; in ``reschedule`` mode it frees them (``up_for_reschedule``) and goes back
    through the scheduler and the executor for every poke. A poke lasts the task's ``duration``."""

    wait: Distribution
    mode: str = "poke"
    poke_interval: float = 60.0            # BaseSensorOperator default (§1.10)
    timeout: float = 604800.0              # [sensors] default_timeout, 7 days (§1.3)
    soft_fail: bool = False

    def __post_init__(self):
        if self.mode not in ("poke", "reschedule"):
            raise DagError(f"sensor mode must be poke or reschedule, got {self.mode!r}")
        if not self.poke_interval > 0 or not self.timeout > 0:
            raise DagError("sensor poke_interval and timeout must be > 0")


@dataclass(frozen=True)
class Deferral:
    """A deferrable operator (airflow-mechanics.md §1.11): the task runs its first part (the
    task's ``duration``), then defers; its trigger waits in a triggerer until the event comes,
    ``wait`` after the deferral (a distribution); the task then goes back to ``scheduled`` and
    resumes on a worker for ``resume`` (a second trip through the scheduler and the executor).
    While deferred it holds no executor slot and no pool slot."""

    wait: Distribution
    resume: Distribution | float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "wait", as_distribution(self.wait))
        object.__setattr__(self, "resume", as_distribution(self.resume))


class DagError(ValueError):
    """A DAG that cannot exist: a cycle, an unknown task, a bad attribute."""


@dataclass(eq=False)
class Task:
    """One operator of a DAG. Attribute names follow Airflow's ``BaseOperator``."""

    task_id: str
    duration: Distribution | float = 0.0
    queue: str = DEFAULT_QUEUE
    pool: str = DEFAULT_POOL
    pool_slots: int = 1
    priority_weight: int = 1
    weight_rule: str = "downstream"
    retries: int = 0
    retry_delay: float = DEFAULT_RETRY_DELAY
    retry_exponential_backoff: bool = False
    max_retry_delay: float | None = None
    failure_probability: float = 0.0
    #: The first ``failed_tries`` tries fail whatever ``failure_probability`` draws: a task known
    #: to fail (replaying recorded runs whose tasks failed before they succeeded).
    failed_tries: int = 0
    trigger_rule: str = "all_success"
    #: True when the task's work competes for CPU on its host (processor sharing); False for the
    #: common Airflow task that waits on an external system (a query, an API call, a ``sleep``).
    cpu_bound: bool = False
    cpu: float | None = None               # CPU request in cores (None: the pod template's)
    memory: float | None = None            # memory request in MiB (None: the pod template's)
    executor: str | None = None            # Airflow 2.10+ per-task executor (multi-executor)
    max_active_tis_per_dag: int | None = None
    max_active_tis_per_dagrun: int | None = None
    sensor: "Sensor | None" = None         # a sensor's poking, if the task is one
    deferrable: "Deferral | None" = None   # defers to the triggerer after its first part
    #: Dynamic task mapping: ``expand`` over a list whose length (this distribution, rounded) is
    #: known only when the upstream tasks have finished; one task instance per element.
    expand: "Distribution | None" = None
    dag: "DAG | None" = field(default=None, repr=False)
    upstream: list["Task"] = field(default_factory=list, repr=False)
    downstream: list["Task"] = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.duration = as_distribution(self.duration)
        if self.trigger_rule not in TRIGGER_RULES:
            raise DagError(f"task {self.task_id!r}: unknown trigger_rule {self.trigger_rule!r}; "
                           f"expected one of {', '.join(TRIGGER_RULES)}")
        if self.weight_rule not in WEIGHT_RULES:
            raise DagError(f"task {self.task_id!r}: unknown weight_rule {self.weight_rule!r}")
        if self.retries < 0 or self.pool_slots < 1 or self.failed_tries < 0:
            raise DagError(f"task {self.task_id!r}: retries and failed_tries must be >= 0 and pool_slots >= 1")
        if not 0.0 <= self.failure_probability <= 1.0:
            raise DagError(f"task {self.task_id!r}: failure_probability must lie in [0, 1]")
        if self.sensor is not None and self.deferrable is not None:
            raise DagError(f"task {self.task_id!r}: a task is a sensor or deferrable, not both "
                           f"(a deferrable sensor is a deferrable task)")
        if self.dag is not None:
            self.dag.add_task(self)

    # -- Airflow's bitshift composition -------------------------------------------------------
    def set_downstream(self, other: "Task | Sequence[Task]") -> None:
        for t in _as_tasks(other):
            # The edge is in both lists: look in the shorter, so a fan-out or fan-in of n tasks
            # costs O(n), not O(n^2).
            known = self in t.upstream if len(t.upstream) < len(self.downstream) else t in self.downstream
            if not known:
                self.downstream.append(t)
                t.upstream.append(self)
                for dag in (self.dag, t.dag):
                    if dag is not None:
                        dag._order = None  # structure changed: recompute order, re-check cycles

    def set_upstream(self, other: "Task | Sequence[Task]") -> None:
        for t in _as_tasks(other):
            t.set_downstream(self)

    def __rshift__(self, other):
        self.set_downstream(other)
        return other

    def __lshift__(self, other):
        self.set_upstream(other)
        return other

    def __rrshift__(self, other):          # [t1, t2] >> t3
        self.set_upstream(other)
        return self

    def __rlshift__(self, other):          # [t1, t2] << t3
        self.set_downstream(other)
        return self

    def __repr__(self) -> str:
        return f"<Task {self.task_id}>"


def _as_tasks(x) -> list[Task]:
    if isinstance(x, Task):
        return [x]
    return list(x)


class DAG:
    """A DAG: tasks, their dependencies and the run-level settings (schedule, limits)."""

    def __init__(self, dag_id: str, schedule=None, *, max_active_runs: int | None = None,
                 max_active_tasks: int | None = None, parse_time: float | None = None,
                 tasks: Iterable[Task] = ()):
        self.dag_id = dag_id
        self.schedule = schedule
        self.max_active_runs = max_active_runs      # None: [core] max_active_runs_per_dag
        self.max_active_tasks = max_active_tasks    # None: [core] max_active_tasks_per_dag
        self.parse_time = parse_time                # None: the profile's dag_file_parse_time
        self.tasks: dict[str, Task] = {}
        for t in tasks:
            self.add_task(t)
        self._order: list[Task] | None = None

    def add_task(self, task: Task) -> Task:
        if task.task_id in self.tasks and self.tasks[task.task_id] is not task:
            raise DagError(f"DAG {self.dag_id!r}: duplicate task_id {task.task_id!r}")
        task.dag = self
        self.tasks[task.task_id] = task
        self._order = None
        return task

    def task(self, task_id: str, **kwargs) -> Task:
        """Create and add a task: ``t1 = dag.task("T1", duration=30)``."""
        return Task(task_id, dag=self, **kwargs)

    def __getitem__(self, task_id: str) -> Task:
        return self.tasks[task_id]

    def __len__(self) -> int:
        return len(self.tasks)

    def __repr__(self) -> str:
        return f"<DAG {self.dag_id}: {len(self.tasks)} tasks>"

    # -- dependencies from text -----------------------------------------------------------------
    def set_dependencies(self, text: str) -> None:
        """Apply Airflow-syntax dependency lines such as ``T1 >> [T2, T3] >> T4``."""
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            for stmt in line.split(";"):
                if stmt.strip():
                    self._apply_statement(stmt.strip(), lineno)
        self.topological_order()  # raise on a cycle now, not at run time

    _TOKEN = re.compile(r"\s*(>>|<<|\[|\]|,|[A-Za-z0-9_.\-]+)")

    def _apply_statement(self, stmt: str, lineno: int) -> None:
        tokens, pos = [], 0
        while pos < len(stmt):
            m = self._TOKEN.match(stmt, pos)
            if not m:
                raise DagError(f"dependencies line {lineno}: cannot read {stmt[pos:].strip()!r}")
            tokens.append(m.group(1))
            pos = m.end()
            while pos < len(stmt) and stmt[pos].isspace():
                pos += 1
        groups: list[list[Task]] = []
        ops: list[str] = []
        i = 0
        expect_group = True
        while i < len(tokens):
            tok = tokens[i]
            if expect_group:
                if tok == "[":
                    names, i = [], i + 1
                    while i < len(tokens) and tokens[i] != "]":
                        if tokens[i] != ",":
                            names.append(tokens[i])
                        i += 1
                    if i == len(tokens):
                        raise DagError(f"dependencies line {lineno}: unclosed '[' in {stmt!r}")
                    if not names:
                        raise DagError(f"dependencies line {lineno}: empty list in {stmt!r}")
                    groups.append([self._lookup(n, lineno) for n in names])
                elif tok in (">>", "<<", ",", "]"):
                    raise DagError(f"dependencies line {lineno}: expected a task name before {tok!r} in {stmt!r}")
                else:
                    groups.append([self._lookup(tok, lineno)])
                expect_group = False
            else:
                if tok not in (">>", "<<"):
                    raise DagError(f"dependencies line {lineno}: expected '>>' or '<<', got {tok!r} in {stmt!r}")
                ops.append(tok)
                expect_group = True
            i += 1
        if expect_group:
            raise DagError(f"dependencies line {lineno}: {stmt!r} ends with an operator")
        for left, op, right in zip(groups, ops, groups[1:]):
            for a in left:
                for b in right:
                    (a.set_downstream if op == ">>" else a.set_upstream)(b)

    def _lookup(self, name: str, lineno: int) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise DagError(f"dependencies line {lineno}: unknown task {name!r} (tasks: {known})") from None

    # -- structure ------------------------------------------------------------------------------
    def topological_order(self) -> list[Task]:
        """Kahn's algorithm, stable in insertion order; raises on a cycle naming its tasks."""
        if self._order is not None:
            return self._order
        indeg = {t.task_id: len(t.upstream) for t in self.tasks.values()}
        ready = [t for t in self.tasks.values() if indeg[t.task_id] == 0]
        order: list[Task] = []
        while ready:
            t = ready.pop(0)
            order.append(t)
            for d in t.downstream:
                indeg[d.task_id] -= 1
                if indeg[d.task_id] == 0:
                    ready.append(d)
        if len(order) != len(self.tasks):
            stuck = sorted(k for k, v in indeg.items() if v > 0)
            raise DagError(f"DAG {self.dag_id!r} has a cycle through: {', '.join(stuck)}")
        self._order = order
        return order

    def priority_weights(self) -> dict[str, int]:
        """Effective priority by weight_rule (airflow-mechanics.md §1.5): downstream = own + all
        descendants; upstream = own + all ancestors; absolute = own."""
        order = self.topological_order()
        pos = {t.task_id: i for i, t in enumerate(order)}
        # Descendant / ancestor sets as bitsets over topological positions (Python ints): a
        # 20,000-task chain takes 25 MB, not the 10 GB of sets of names.
        masks: dict[int, int] = {}                      # weight -> bitset of tasks with it
        for i, t in enumerate(order):
            masks[t.priority_weight] = masks.get(t.priority_weight, 0) | (1 << i)

        def total(bits: int) -> int:
            return sum(v * (bits & m).bit_count() for v, m in masks.items())

        rules = {t.weight_rule for t in order}
        desc: list[int] = [0] * len(order)
        if rules - {"absolute", "upstream"}:
            for i in range(len(order) - 1, -1, -1):
                bits = 0
                for d in order[i].downstream:
                    j = pos[d.task_id]
                    bits |= (1 << j) | desc[j]
                desc[i] = bits
        anc: list[int] = [0] * len(order)
        if "upstream" in rules:
            for i, t in enumerate(order):
                bits = 0
                for u in t.upstream:
                    j = pos[u.task_id]
                    bits |= (1 << j) | anc[j]
                anc[i] = bits
        w = {}
        for i, t in enumerate(order):
            if t.weight_rule == "absolute":
                w[t.task_id] = t.priority_weight
            elif t.weight_rule == "upstream":
                w[t.task_id] = t.priority_weight + total(anc[i])
            else:
                w[t.task_id] = t.priority_weight + total(desc[i])
        return w

    def critical_path(self, durations: dict[str, float] | None = None) -> float:
        """Longest path through the DAG by task duration (mean durations unless given)."""
        finish: dict[str, float] = {}
        for t in self.topological_order():
            d = durations[t.task_id] if durations is not None else t.duration.mean
            finish[t.task_id] = d + max((finish[u.task_id] for u in t.upstream), default=0.0)
        return max(finish.values(), default=0.0)

    def total_work(self, durations: dict[str, float] | None = None) -> float:
        if durations is not None:
            return sum(durations[t] for t in self.tasks)
        return sum(t.duration.mean for t in self.tasks.values())
