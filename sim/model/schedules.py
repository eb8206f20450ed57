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
from typing import Iterator

from croniter import croniter

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)  # a Wednesday, midnight UTC


class Schedule:
    def times(self, horizon: float, rng: random.Random) -> Iterator[float]:  # pragma: no cover
        raise NotImplementedError

    def logical_date(self, due: float) -> float:
        """Airflow's logical date of the run due at ``due``: the start of its data interval for a
        fixed interval or cron schedule, the trigger time otherwise."""
        return due


@dataclass(frozen=True)
class Interval(Schedule):
    every: float

    def __post_init__(self):
        if not self.every > 0:
            raise ValueError(f"schedule interval must be > 0, got {self.every}")

    def logical_date(self, due: float) -> float:
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

    def __post_init__(self):
        if not croniter.is_valid(self.expression):
            raise ValueError(f"not a valid cron expression: {self.expression!r}")

    def logical_date(self, due: float) -> float:
        at = self.start_date + timedelta(seconds=due)
        return (croniter(self.expression, at).get_prev(datetime) - self.start_date).total_seconds()

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
