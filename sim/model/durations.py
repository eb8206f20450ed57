"""Duration distributions of task work (seconds).

Every distribution draws from a ``random.Random`` handed in by the caller: the simulation owns
its randomness (one seed, independent streams), never the global ``random`` module.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence


class Distribution:
    """A non-negative random duration in seconds."""

    __slots__ = ()

    def sample(self, rng: random.Random) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Constant(Distribution):
    value: float

    def __post_init__(self):
        if not self.value >= 0:
            raise ValueError(f"constant duration must be >= 0, got {self.value}")

    def sample(self, rng: random.Random) -> float:
        return self.value

    @property
    def mean(self) -> float:
        return self.value


@dataclass(frozen=True, slots=True)
class Exponential(Distribution):
    mean_: float

    def __post_init__(self):
        if not self.mean_ > 0:
            raise ValueError(f"exponential mean must be > 0, got {self.mean_}")

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean_)

    @property
    def mean(self) -> float:
        return self.mean_


@dataclass(frozen=True, slots=True)
class LogNormal(Distribution):
    """Parameterised the way people talk about durations: a mean and a coefficient of variation."""

    mean_: float
    cv: float

    def __post_init__(self):
        if not self.mean_ > 0:
            raise ValueError(f"lognormal mean must be > 0, got {self.mean_}")
        if not self.cv >= 0:
            raise ValueError(f"lognormal cv must be >= 0, got {self.cv}")

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv * self.cv))

    @property
    def mu(self) -> float:
        return math.log(self.mean_) - 0.5 * self.sigma ** 2

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)

    @property
    def mean(self) -> float:
        return self.mean_


@dataclass(frozen=True, slots=True)
class Uniform(Distribution):
    low: float
    high: float

    def __post_init__(self):
        if not (0 <= self.low <= self.high):
            raise ValueError(f"uniform needs 0 <= low <= high, got low={self.low}, high={self.high}")

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)


@dataclass(frozen=True, slots=True)
class Empirical(Distribution):
    """Resamples recorded durations uniformly (a bootstrap of what was measured)."""

    samples: tuple[float, ...]

    def __post_init__(self):
        if not self.samples:
            raise ValueError("empirical distribution needs at least one sample")
        if any(not s >= 0 for s in self.samples):
            raise ValueError("empirical samples must all be >= 0")

    def sample(self, rng: random.Random) -> float:
        return self.samples[int(rng.random() * len(self.samples))]

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples)


def as_distribution(value: "Distribution | float | int | Sequence[float]") -> Distribution:
    """Accept a number (constant), a list (empirical) or a distribution."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, (int, float)):
        return Constant(float(value))
    return Empirical(tuple(float(v) for v in value))
