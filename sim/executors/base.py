"""Airflow's ``BaseExecutor`` contract (airflow-mechanics.md §2.0).

The scheduler hands queued task instances to ``queue_workload``; once per scheduler loop it calls
``heartbeat``, which launches queued work into the open slots (highest priority first) and then
``sync``s to collect what finished; finished work becomes an *event* in ``event_buffer`` that the
scheduler processes afterwards. A slot counts as occupied from the moment a task instance is
queued to the executor until ``sync`` sees it finish: as in Airflow, a finished task's slot frees
when the scheduler's executor heartbeat processes its result, not when the task ends.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    """Something an executor's deployment pays for, for ``seconds`` (read by the cost model)."""

    item: str                          # the bill's line: "broker", "workers (pool)", ...
    seconds: float
    instance_type: str | None = None   # priced from the catalogue's instance types ...
    component: str | None = None       # ... or as the catalogue's standard machine for a component
    spot: bool = False                 # at the catalogue's spot discount
    fallback_price: float | None = None   # per hour, for an instance type the catalogue lacks
    fee_per_hour: str | None = None    # a catalogue fee per hour, not a machine (no billing minimum)


class BaseExecutor:
    #: Airflow's class name, used in records and in the multi-executor ``executor`` setting.
    name = "BaseExecutor"

    def __init__(self, sim, parallelism: int):
        if parallelism < 1:
            raise ValueError(f"{self.name}: parallelism must be >= 1")
        self.sim = sim
        self.env = sim.env
        self.parallelism = parallelism
        self.queued_tasks: dict = {}          # ti -> None, in queueing order
        #: (ti, try_number) -> None: a new try is a new key, as in Airflow. A dict, not a set: a set of
        #: tuples of objects iterates in address order, which differs between identical runs.
        self.running: dict = {}
        self.event_buffer: list = []

    # -- slots ----------------------------------------------------------------------------------
    @property
    def slots_occupied(self) -> int:
        return len(self.running) + len(self.queued_tasks)

    @property
    def slots_available(self) -> int:
        return self.parallelism - self.slots_occupied

    # -- the contract ---------------------------------------------------------------------------
    def queue_workload(self, ti) -> None:
        self.queued_tasks[ti] = None

    def heartbeat(self) -> float:
        """Launch queued work into open slots, then sync. Returns the scheduler time it cost."""
        cost = 0.0
        open_slots = self._open_slots()
        if self.queued_tasks and open_slots > 0:
            queued = self.queued_tasks
            # order_queued_tasks_by_priority: priority_weight desc, stable (BE).
            batch = sorted(queued, key=_neg_priority)[:open_slots] if len(queued) > 1 else list(queued)
            for ti in batch:
                del queued[ti]
                self.running[(ti, ti.try_number)] = None
            cost += self.trigger_tasks(batch)
        cost += self.sync()
        return cost

    def _open_slots(self) -> int:
        """How many queued task instances a heartbeat may hand over (Airflow's
        ``parallelism - len(running)``)."""
        return self.parallelism - len(self.running)

    def trigger_tasks(self, tis: list) -> float:  # pragma: no cover - abstract
        """Start ``tis`` (Airflow's execute_async / _process_workloads). Returns scheduler time."""
        raise NotImplementedError

    def sync(self) -> float:  # pragma: no cover - abstract
        """Collect finished work via ``change_state``. Returns scheduler time spent."""
        raise NotImplementedError

    def change_state(self, ti, try_number: int, state) -> None:
        """A task's process reported its end: free the slot and leave an event for the scheduler."""
        self.running.pop((ti, try_number), None)
        self.sim.state.slot_freed(ti, try_number, self.env.now)
        self.event_buffer.append((ti, try_number, state))

    def get_event_buffer(self) -> list:
        buf = self.event_buffer
        self.event_buffer = []
        return buf

    def revoke(self, ti, try_number: int) -> None:
        """``cleanup_stuck_queued_tasks``: forget a try the scheduler gave up on (for Celery its
        message may still be delivered, and then finds the try no longer queued)."""
        if (ti, try_number) in self.running or ti in self.queued_tasks:
            self.sim.state.slot_freed(ti, try_number, self.env.now)
        self.running.pop((ti, try_number), None)
        self.queued_tasks.pop(ti, None)

    def has_pending_work(self) -> bool:
        """Will the next heartbeat do something even if nothing else changes? (Then the
        scheduler's idle loops are not all alike and cannot be skipped.)"""
        return bool(self.queued_tasks)

    def start(self) -> None:
        """Called once before the simulation runs (start workers, ...)."""

    def stats(self) -> dict:
        """Executor-specific figures for summary.json."""
        return {}

    # -- what the deployment costs (sim/cost/model.py reads these) ----------------------------------
    def parts(self) -> list:
        """The executors that run tasks: itself, or a hybrid's parts."""
        return [self]

    def machines(self, window: float) -> list[Machine]:
        """What this executor's deployment pays for beyond the scheduler and the DB, in the
        simulated ``window`` (none: a LocalExecutor runs on the scheduler's host)."""
        return []

    def paid_capacity(self, window: float) -> float:
        """Slot-seconds (or requested core-seconds) paid for: the idle share's denominator."""
        return self.parallelism * window

    def pod_usage(self) -> tuple[list, float]:
        """Pods: their names and the core-seconds they requested while bound (their tries'
        capacity is counted by requested cores, not slots). None for other executors."""
        return [], 0.0

    def kubernetes_executors(self) -> list:
        """The KubernetesExecutors inside this one (itself, or a hybrid's part)."""
        return [self] if hasattr(self, "pods_frame") else []

    def end(self) -> None:
        """Called when the simulation ends (nothing to clean up by default)."""


def _neg_priority(ti) -> int:
    return -ti.priority
