"""The scheduler loop's timers, and where an idle scheduler's loops start under them, so that idle
loops need not be simulated one by one.

``SchedulerJobRunner._run_scheduler_loop`` registers its periodic checks with
``EventScheduler.call_regular_interval`` and calls ``timers.run(blocking=False)`` at the end of
every loop; an idle loop then sleeps ``min(scheduler_idle_sleep_time, next_event)``. A timer is
re-armed ``interval`` seconds after it ran ("If we want a timer every 60s, but action takes 10s to
run, this will run it every 70s", airflow/utils/event_scheduler.py, 2.10.5 and 3.3.2 alike), and it
runs at the end of the first loop that ends after it was due. So each timer's period is its
interval plus the rest of the loop it fell in: the timers drift apart and across task durations,
which is why real loop starts do not lock onto a chain of equal tasks.

Which timers (registered in ``_run_scheduler_loop``; timers of one interval registered together
run in the same loop and stay in step, so each interval counts once):

=========================================================  ==========  =========================
timer                                                      2.10.5      3.3.2
=========================================================  ==========  =========================
``pool_metrics_interval`` (``_emit_pool_metrics``)          5 s         only with metrics/tracing
``task_instance_heartbeat_timeout_detection_interval``      10 s        10 s
``trigger_timeout_check_interval``                          15 s        15 s (two timers)
backfills complete, connection-test reaper                  --          30 s
paused runs (hard-coded), ``parsing_cleanup_interval``      60 s        60 s
``task_queued_timeout_check_interval``                      120 s       120 s
``orphaned_tasks_check_interval``                           300 s       300 s
=========================================================  ==========  =========================

(3.3.2's stale-bundle clean-up, every 1800 s, and its TI and DAG-run metrics, 30 s with metrics
on, are left out.) The timers' own work is not simulated here: lost tasks are found by
:mod:`sim.airflow.lost_tasks`, and the timers' CPU is part of ``scheduler_loop_base``.

An idle stretch between two timer runs is regular: loops every ``sleep + cost``; the loop whose
sleep a timer cuts starts at the timer's due time and runs it at its end. :func:`locate` walks a
stretch a timer window at a time. Pure functions, no SimPy.
"""
from __future__ import annotations

import math

#: A timer due within this of a loop's end runs at that loop's end. All loop times here are sums
#: of the same few numbers (sleep, loop cost, intervals), so a timer can fall due exactly at a loop's
#: end, and float rounding must not decide (differently, summed in another order) which loop runs it.
EPS = 1e-9


def intervals(cfg) -> tuple:
    """The distinct intervals of the loop's timers for an Airflow configuration (the table above;
    3.x has pool metrics only with ``metrics_enabled``); empty when ``cfg.loop_timers`` is off."""
    if not cfg.loop_timers:
        return ()
    three = str(cfg.airflow_version).startswith("3")
    out = {cfg.task_instance_heartbeat_timeout_detection_interval, cfg.trigger_timeout_check_interval,
           60.0, cfg.parsing_cleanup_interval, cfg.task_queued_timeout_check_interval,
           cfg.orphaned_tasks_check_interval}
    if cfg.pool_metrics_interval > 0.0 and (cfg.metrics_enabled or not three):
        out.add(cfg.pool_metrics_interval)
    if three:
        out.add(30.0)
    return tuple(sorted(i for i in out if i > 0.0))


class LoopTimers:
    """One scheduler process's timers: when each is next due."""

    __slots__ = ("intervals", "due", "next")

    def __init__(self, intervals: tuple, due: list):
        self.intervals = intervals
        self.due = due
        self.next = min(due) if due else math.inf

    @classmethod
    def started(cls, intervals: tuple, rng) -> "LoopTimers":
        """Timers of a scheduler that started at an unknown time before the simulation: after a
        few periods their phases have drifted apart, so each is drawn uniformly over its interval."""
        return cls(intervals, [rng.random() * i for i in intervals])

    def run(self, now: float) -> None:
        """``timers.run(blocking=False)`` at a loop's end ``now``: each timer due runs and is
        re-armed an interval later."""
        if now + EPS < self.next:
            return
        self.set(fire(self.due, self.intervals, now))

    def sleep(self, now: float, idle_sleep: float) -> float:
        """The idle sleep after a loop that ended at ``now``: cut short by the next timer."""
        return min(idle_sleep, self.next - now)

    def set(self, due: list) -> None:
        self.due = due
        self.next = min(due)


def fire(due: list, ivals: tuple, now: float) -> list:
    """The timers' due times after the timers due at ``now`` ran there (each re-armed from ``now``)."""
    return [now + i if d <= now + EPS else d for d, i in zip(due, ivals)]


def locate(timers: LoopTimers, end: float, sleep: float, cost: float, now: float):
    """The idle loops after one that ended at ``end`` (its timers run): each lasts ``cost`` and
    sleeps ``min(sleep, next timer)``. Finds the last loop starting at or before ``now``.

    Returns ``(k, start, next_start, due_before, due_after)``: its index in the stretch (-1 when
    none has started yet; ``start`` is then the first loop's start), its start, the next loop's
    start, and the timers' due times before and after its end (the same list when none ran).
    Walks from one timer run to the next: the loops in between are arithmetic."""
    ivals = timers.intervals
    due = list(timers.due)
    period = sleep + cost
    k = -1
    e = end
    while True:
        nd = min(due)
        room = nd - e
        uncut = math.floor((room - sleep) / period) + 1 if room >= sleep else 0
        first = e + sleep if uncut else nd
        if now < first:
            return k, first, first, due, due
        last_end = e + uncut * period            # the end of the last full-sleep loop (e if none)
        if uncut and last_end + EPS >= nd:
            # the timer fell due while the last full-sleep loop ran: that loop runs it at its end
            run_start, run_k, run_end, before = last_end - cost, k + uncut, last_end, uncut - 1
        else:
            # the loop whose sleep the timer cut starts when it is due and runs it at its end
            run_start, run_k, run_end, before = nd, k + uncut + 1, nd + cost, uncut
        if now < run_start:                      # one of the full-sleep loops before it
            j = min(before - 1, math.floor((now - first) / period))
            start = first + j * period
            return k + 1 + j, start, (start + period if j + 1 < before else run_start), due, due
        after = fire(due, ivals, run_end)
        nxt = run_end + min(sleep, min(after) - run_end)
        if now < nxt:
            return run_k, run_start, nxt, due, after
        k, e, due = run_k, run_end, after
