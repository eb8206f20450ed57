"""The simulation's randomness: one seed split into independent, named streams.

Each source of randomness (a DAG's arrivals, a DAG's task durations and failures, overhead
jitter) draws from its own ``random.Random`` seeded from ``(seed, name)``. Streams do not
interleave, so running the same scenario on another executor feeds it the same workload: the
same run times, the same duration of every try (common random numbers).
"""
from __future__ import annotations

import hashlib
import random


def stream(seed: int, name: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))
