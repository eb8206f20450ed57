"""When DAG runs are due.

Simulated time 0 is the DAG's ``start_date`` (``EPOCH`` unless a scenario says otherwise). As in
Airflow, a run for a fixed interval or a cron schedule is created once its data interval has
ended: ``{every: 10m}`` gives runs due at 10 min, 20 min, ... A Poisson rate, an explicit list and a
burst are externally triggered runs, due exactly when they arrive. Runs are due while their time is
at most the scenario's horizon.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Iterator

from croniter import croniter

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)  # a Wednesday, midnight UTC


class Schedule:
    #: runs created by the scheduler (a timetable: ``scheduled__`` run ids, DagModel.next_dagrun),
    #: not triggered from outside
    scheduled = False

    def times(self, horizon: float, rng: random.Random) -> Iterator[float]:  # pragma: no cover
        raise NotImplementedError

    def logical_date(self, due: float, number: int = -1) -> float:
        """Airflow's logical date of the run due at ``due`` (the DAG's run ``number``): the start
        of its data interval for a fixed interval or cron schedule, the trigger time otherwise."""
        return due


@dataclass(frozen=True)
class Interval(Schedule):
    every: float
    scheduled = True

    def __post_init__(self):
        if not self.every > 0:
            raise ValueError(f"schedule interval must be > 0, got {self.every}")

    def logical_date(self, due: float, number: int = -1) -> float:
        return due - self.every

    def times(self, horizon, rng):
        k = 1
        while k * self.every <= horizon:
            yield k * self.every
            k += 1


@dataclass(frozen=True)
class Cron(Schedule):
    expression: str
    start_date: datetime = EPOCH
    scheduled = True

    def __post_init__(self):
        if not croniter.is_valid(self.expression):
            raise ValueError(f"not a valid cron expression: {self.expression!r}")

    def logical_date(self, due: float, number: int = -1) -> float:
        at = self.start_date + timedelta(seconds=due)
        return (croniter(self.expression, at).get_prev(datetime) - self.start_date).total_seconds()

    def intervals_before(self, n: int) -> list[tuple[float, float]]:
        """(start, end) of the ``n`` data intervals before the first (oldest first): the last
        ends where the first begins, at the first fire at or after ``start_date``."""
        first = self.start_date if croniter.match(self.expression, self.start_date) else \
            croniter(self.expression, self.start_date).get_next(datetime)
        it = croniter(self.expression, first)
        ends = [first]
        for _ in range(n):
            ends.append(it.get_prev(datetime))
        secs = [(e - self.start_date).total_seconds() for e in reversed(ends)]
        return list(zip(secs[:-1], secs[1:]))

    def times(self, horizon, rng):
        it = croniter(self.expression, self.start_date)
        # The first fire at or after start_date opens the first data interval; runs are due at the
        # end of each interval (Airflow's "run after the interval" semantics).
        first = self.start_date if croniter.match(self.expression, self.start_date) else it.get_next(datetime)
        it = croniter(self.expression, first)
        while True:
            t = (it.get_next(datetime) - self.start_date).total_seconds()
            if t > horizon:
                return
            yield t


@dataclass(frozen=True)
class Poisson(Schedule):
    per_hour: float

    def __post_init__(self):
        if not self.per_hour > 0:
            raise ValueError(f"poisson rate must be > 0 per hour, got {self.per_hour}")

    def times(self, horizon, rng):
        rate = self.per_hour / 3600.0
        t = rng.expovariate(rate)
        while t <= horizon:
            yield t
            t += rng.expovariate(rate)


@dataclass(frozen=True)
class At(Schedule):
    at: tuple[float, ...]

    def __post_init__(self):
        if any(not t >= 0 for t in self.at):
            raise ValueError("run times must be >= 0")

    def times(self, horizon, rng):
        for t in sorted(self.at):
            if t <= horizon:
                yield t


@dataclass(frozen=True)
class Burst(Schedule):
    runs: int
    at: float = 0.0

    def __post_init__(self):
        if self.runs < 1 or not self.at >= 0:
            raise ValueError("a burst needs runs >= 1 and at >= 0")

    def times(self, horizon, rng):
        if self.at <= horizon:
            for _ in range(self.runs):
                yield self.at


@dataclass(frozen=True)
class CatchUp(Schedule):
    """A fixed interval or cron schedule whose DAG was unpaused (or whose scheduler came back)
    with ``runs`` data intervals already over, ``catchup=True``: the scheduler creates those
    runs first (due at time 0, or at their end if that is later), then the schedule's own. Their
    logical dates are the ``runs`` intervals before the schedule's first; the scheduler makes
    them one a loop, within ``max_active_runs`` (sim.airflow.dagrun_creation)."""

    base: Interval | Cron
    runs: int
    scheduled = True

    def __post_init__(self):
        if not isinstance(self.base, (Interval, Cron)) or self.runs < 1:
            raise ValueError("catch-up needs a fixed interval or cron schedule and runs >= 1")

    @cached_property
    def _cron_past(self) -> list[tuple[float, float]]:
        """A cron schedule's past intervals, listed once (croniter walks them one by one)."""
        return self.base.intervals_before(self.runs)

    def _interval(self, number: int) -> tuple[float, float]:
        """(start, end) of catch-up run ``number``'s data interval; a fixed interval's by
        arithmetic (no list for the common case, up to 10 million runs)."""
        if isinstance(self.base, Interval):
            every = self.base.every
            return -(self.runs - number) * every, -(self.runs - number - 1) * every
        return self._cron_past[number]

    def times(self, horizon, rng):
        for number in range(self.runs):
            end = self._interval(number)[1]
            due = float(end) if end > 0.0 else 0.0
            if due > horizon:
                return
            yield due
        yield from self.base.times(horizon, rng)

    def logical_date(self, due: float, number: int = -1) -> float:
        if 0 <= number < self.runs:
            return self._interval(number)[0]
        return self.base.logical_date(due)
