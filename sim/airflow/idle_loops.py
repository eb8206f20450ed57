"""Where an idle scheduler's loops start, so that they need not be simulated one by one.

An idle loop of ``SchedulerJobRunner._run_scheduler_loop`` queues nothing and processes no event,
then sleeps ``min(scheduler_idle_sleep_time, next_event)``, where ``next_event`` is the time to
the next of the loop's timers (Airflow 2.10 ``scheduler_job_runner.py``: pool metrics every
``pool_metrics_interval`` = 5 s, zombies every 10 s, trigger time-outs every 15 s, paused runs
every 60 s, stuck in queued every 120 s, orphans every 300 s; all multiples of the shortest, so the
shortest sets the grid). Timers move the loop's phase: the sleep before each multiple of the
shortest interval is cut short, and the loops after it start on a new grid. That is why real loop
starts do not lock onto task durations.

With ``timers`` = 0 the loops start every ``sleep + cost`` from the end of the last busy loop. With
timers, they start on that grid until the first cut, then each timer window repeats the same
pattern: loops at ``M, M + P, ..., M + J P`` (``P = sleep + cost``), then the next multiple ``M +
timers``. A loop still running at a multiple is not cut: the timer runs at its end and the next
window starts at another phase, so the pattern then repeats over several windows, from one cut
to the next (:func:`grid` finds that cycle).
Pure functions, no SimPy; the scheduler keeps one :class:`Grid` per idle stretch.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass


def until_timer(t: float, timers: float) -> float:
    """Time from ``t`` to the next multiple of ``timers`` (a full interval at a multiple): what
    ``timers.run(blocking=False)`` returns, with the timers counted from time 0."""
    return timers - t % timers


@dataclass(frozen=True)
class Grid:
    """Loop starts of one idle stretch: ``pre`` before the first timer cut, then a cycle of
    ``cycle`` seconds (a whole number of timer intervals) from ``first_cut``, with loops at the
    offsets ``starts`` (the first is 0: a cut sleep ends exactly at a multiple)."""

    pre: tuple
    first_cut: float
    starts: tuple
    cycle: float

    def at(self, now: float) -> tuple[int, float, float]:
        """``(index, start, next_start)``: the last loop starting at or before ``now`` (its index
        in the stretch, its start), and the start of the loop after it. ``index`` is -1 when no
        loop has started yet (``start`` is then the idle stretch's first loop start, too)."""
        pre = self.pre
        if now < self.first_cut:
            i = bisect_right(pre, now) - 1
            if i < 0:
                first = pre[0] if pre else self.first_cut
                return -1, first, first
            return i, pre[i], pre[i + 1] if i + 1 < len(pre) else self.first_cut
        w = math.floor((now - self.first_cut) / self.cycle)
        base = self.first_cut + w * self.cycle
        if base > now:                       # rounding at a cycle's edge
            w -= 1
            base = self.first_cut + w * self.cycle
        starts = self.starts
        j = max(0, bisect_right(starts, now - base) - 1)
        start = base + starts[j]
        nxt = base + starts[j + 1] if j + 1 < len(starts) else base + self.cycle
        return len(pre) + w * len(starts) + j, start, nxt


#: Timer windows followed to find the loops' cycle before giving up (then loops are simulated).
MAX_WINDOWS = 1000


def grid(idle_end: float, sleep: float, cost: float, timers: float) -> Grid | None:
    """The loop starts after an idle loop that ended at ``idle_end``: each loop lasts ``cost``,
    then sleeps ``min(sleep, until_timer(end))``. After the first cut sleep the starts repeat
    with a period of whole timer intervals (from one cut to the next); a loop that outlasts the
    room before a multiple shifts the next window's phase, so the period may span several
    windows. ``None`` when no cut comes within :data:`MAX_WINDOWS` windows."""
    period = sleep + cost
    if timers <= 0.0 or period <= 0.0 or sleep <= 0.0:
        return None
    limit = MAX_WINDOWS * (timers / period + 2)
    pre: list = []
    x = idle_end
    while True:                              # up to the first cut sleep
        t = until_timer(x, timers)
        if t < sleep:
            first_cut = x + t
            break
        start = x + sleep
        pre.append(start)
        x = start + cost
        if len(pre) > limit:
            return None
    starts = [0.0]
    x = first_cut + cost                     # the first loop of the cycle starts at the cut
    while True:
        t = until_timer(x, timers)
        if t < sleep:                        # cut: the cycle closes at this multiple
            cycle = x + t - first_cut
            break
        start = x + sleep
        starts.append(start - first_cut)
        x = start + cost
        if len(starts) > limit:
            return None
    cycle = round(cycle / timers) * timers   # a whole number of intervals (float noise aside)
    return Grid(tuple(pre), first_cut, tuple(starts), cycle)
