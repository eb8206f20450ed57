"""The speed yardstick of ``sim bench --reference``: the least a SimPy simulation of the bench
workload must do, with none of Airflow's mechanisms.

The workload is ``sim bench``'s: a diamond DAG ``T1 >> [T2, T3] >> T4`` due every 3 simulated
seconds, task durations exponential with mean 10 s, 16 slots. A scheduler process polls once a
simulated second: it starts the runs that are due, marks tasks whose upstreams succeeded as
scheduled and hands them, first come first served, to 16 slot processes through a
``simpy.Store``; a slot runs one task instance at a time and marks it done. One small object per
task instance, all kept to the end, no records, no overheads, no limits but the slots: what a
naive simulation costs per task instance. (Modelled on ``shared/bench/simpy-reference``; written for this project.)

Run as a module it prints one JSON line, so ``sim bench --reference`` can time it in a fresh
process alternating with the full model::

    python -m sim.bench_reference --task-instances 200000 --seed 1
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import deque

import simpy

PERIOD = 3.0            # seconds between DAG runs
MEAN = 10.0             # mean task duration (s)
POLL = 1.0              # scheduler loop period (s)
SLOTS = 16              # parallelism
UPSTREAM = ((), (0,), (0,), (1, 2))      # T1 >> [T2, T3] >> T4, by task index


class _TI:
    __slots__ = ("run", "index", "done", "scheduled_at")

    def __init__(self, run, index):
        self.run = run
        self.index = index
        self.done = False
        self.scheduled_at = -1.0


class _Run:
    __slots__ = ("tis", "waiting", "started_at")

    def __init__(self, now: float):
        self.tis = [_TI(self, i) for i in range(len(UPSTREAM))]
        self.waiting = list(self.tis)         # not yet scheduled
        self.started_at = now


def simulate(runs: int, seed: int) -> dict:
    """Simulate ``runs`` DAG runs; returns what was simulated (to check it did the work)."""
    env = simpy.Environment()
    rng = random.Random(seed)
    ready = simpy.Store(env)
    totals = {"finished": 0, "wait": 0.0, "makespan": 0.0}

    def slot():
        while True:
            ti = yield ready.get()
            totals["wait"] += env.now - ti.scheduled_at
            yield env.timeout(rng.expovariate(1.0 / MEAN))
            ti.done = True
            totals["finished"] += 1

    kept: list = []                            # every run stays in memory, as a result would

    def scheduler():
        live: deque = deque()
        created = 0
        while created < runs or live:
            now = env.now
            while created < runs and created * PERIOD <= now:
                live.append(_Run(now))
                kept.append(live[-1])
                created += 1
            for _ in range(len(live)):
                run = live.popleft()
                still = []
                for ti in run.waiting:
                    if all(run.tis[u].done for u in UPSTREAM[ti.index]):
                        ti.scheduled_at = now
                        ready.put(ti)
                    else:
                        still.append(ti)
                run.waiting = still
                if still or not all(ti.done for ti in run.tis):
                    live.append(run)
                else:
                    totals["makespan"] += now - run.started_at
            yield env.timeout(POLL)

    for _ in range(SLOTS):
        env.process(slot())
    env.run(until=env.process(scheduler()))
    return totals


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.bench_reference", allow_abbrev=False,
                                description="The minimal SimPy simulation of sim bench's workload.")
    p.add_argument("--task-instances", type=int, default=200_000, help="size of the workload")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    args = p.parse_args(argv)
    runs = max(1, args.task_instances // len(UPSTREAM))
    t0 = time.perf_counter()
    totals = simulate(runs, args.seed)
    wall = time.perf_counter() - t0
    print(json.dumps({"task_instances": totals["finished"], "wall_seconds": round(wall, 3),
                      "task_instances_per_second": round(totals["finished"] / wall),
                      "peak_memory_mib": round(_peak_rss_mib())}))
    return 0


def _peak_rss_mib() -> float:
    """As sim.bench's, written out here: the reference imports nothing of the project."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


if __name__ == "__main__":
    raise SystemExit(main())

