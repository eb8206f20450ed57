"""The simulation's randomness: one seed split into independent, named streams.

Each source of randomness (a DAG's arrivals, a DAG's task durations and failures, overhead
jitter) draws from its own ``random.Random`` seeded from ``(seed, name)``. Streams do not
interleave, so running the same scenario on another executor feeds it the same workload: the
same run times, the same duration of every try (common random numbers).
"""
from __future__ import annotations

import hashlib
import math
import random


def stream(seed: int, name: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


_LOG4 = math.log(4.0)
_SG_MAGICCONST = 1.0 + math.log(4.5)


def gamma_sampler(rng: random.Random, shape: float, scale: float):
    """A function drawing ``rng.gammavariate(shape, scale)``: the same numbers from the same
    stream, with Cheng's constants computed once instead of per draw (the task processes draw
    three factors per task instance). For ``shape <= 1`` it is the stdlib's own method."""
    if not shape > 1.0:
        return lambda: rng.gammavariate(shape, scale)
    # random.Random.gammavariate, alpha > 1 (R.C.H. Cheng, Applied Statistics 26(1), 1977, 71-74)
    ainv = math.sqrt(2.0 * shape - 1.0)
    bbb = shape - _LOG4
    ccc = shape + ainv
    uniform, log, exp = rng.random, math.log, math.exp

    def draw() -> float:
        while True:
            u1 = uniform()
            if not 1e-7 < u1 < 0.9999999:
                continue
            u2 = 1.0 - uniform()
            v = log(u1 / (1.0 - u1)) / ainv
            x = shape * exp(v)
            z = u1 * u1 * u2
            r = bbb + ccc * v - x
            if r + _SG_MAGICCONST - 4.5 * z >= 0.0 or r >= log(z):
                return x * scale
    return draw
