"""Linux's group scheduling on a host: how its cores are shared among groups of processes, and a
group's view of the host (``sim/infra/host.py``, *Groups*).

With ``kernel.sched_autogroup_enabled`` 1 every session is a task group of equal weight, and CFS
shares the cores among the groups with work before it shares a group's part among its processes
(systemd services and containers, as cgroups, are shared the same way). Measured on real Airflow:
data/airflow-runs/catchup against autogroup-off (docs/background.md, "Groups: how Linux shares the
cores").
"""
from __future__ import annotations

from simpy import Event

#: The groups (sessions) of a single-machine install, as the harness starts them
#: (bench/real_airflow/harness.py: each daemon with start_new_session): the scheduler's (its
#: LocalExecutor's workers and task processes are forked from it and keep its session) and the
#: database server's (PostgreSQL's backends, forked from its postmaster); each Celery worker's is
#: named after the worker (its pool's children and their task processes are forked from it).
SCHEDULER_GROUP = "scheduler"
DATABASE_GROUP = "postgresql"


def share(counts, cores: float) -> list:
    """Each group's rate per job, for ``counts`` jobs per group on ``cores``: the cores shared
    equally among the groups with jobs, each group's share capped at one core per job and what
    it leaves shared among the others (CFS group scheduling with groups of equal weight); one
    group is plain processor sharing, min(1, cores / n)."""
    n = sum(counts)
    if n <= cores:
        return [1.0] * len(counts)
    if len(counts) == 1:
        return [cores / n]
    rates = [1.0] * len(counts)
    active = sorted((c, g) for g, c in enumerate(counts) if c)
    left, k = float(cores), len(active)
    for c, g in active:               # smallest first: a group under the fair share keeps its jobs' cores
        fair = left / k
        if c <= fair:
            left -= c
        else:
            rates[g] = fair / c
            left -= fair
        k -= 1
    return rates


class HostGroup:
    """One group of a host's processes (a Linux autogroup: the processes of one session), as a
    host: its jobs share the group's part of the cores (:class:`Host`, *Groups*). Its name,
    cores and statistics are the host's; ``machine`` is the host."""

    __slots__ = ("machine", "g", "env", "name", "cores")

    def __init__(self, host, g: int):
        self.machine = host
        self.g = g
        self.env = host.env
        self.name = host.name
        self.cores = host.cores

    def group(self, name: str):
        return self.machine.group(name)

    @property
    def jobs(self) -> int:
        return self.machine.jobs

    @property
    def busy_core_seconds(self) -> float:
        return self.machine.busy_core_seconds

    def stretch(self) -> float:
        return self.machine.stretch(self.g)

    def work(self, seconds: float, after: float = 0.0) -> Event:
        return self.machine.work(seconds, after, self.g)

    def work_for(self, loop, seconds: float, after: float = 0.0, tail: float | None = None) -> bool:
        return self.machine.work_for(loop, seconds, after, tail, self.g)

    def run(self, seconds: float, then, arg=None, after: float = 0.0, tail: float | None = None) -> None:
        self.machine.run(seconds, then, arg, after, tail, self.g)

    def run_last(self, seconds: float, then, arg=None, after: float = 0.0, tail: float | None = None) -> None:
        self.machine.run_last(seconds, then, arg, after, tail, self.g)

    def burn(self, seconds: float) -> None:
        self.machine.burn(seconds, self.g)

    def repeat(self, seconds: float) -> None:
        self.machine.repeat(seconds)
