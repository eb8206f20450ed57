"""A host whose cores are shared by everything running on it (egalitarian processor sharing).

With ``n`` CPU-bound jobs on ``c`` cores each job progresses at rate ``min(1, c/n)``: piling more
processes onto a small host does not make it faster, it makes everything on it slower. The
implementation keeps one *virtual work clock* ``V`` (work done by any one job since the host
started) and a heap of the jobs' finishing values of ``V``, so an arrival or a departure costs
O(log n), and only one wake-up timer is live at a time.
"""
from __future__ import annotations

from heapq import heappop, heappush

from simpy import Event

from ..engine import Wake, later, later_on

_NOBODY = ()       # the callbacks of a superseded timer


def _start_job(loop) -> None:
    """A loop's host job whose wait before it (``after``) is over: submitted now."""
    host, seconds = loop.job
    loop.job = None
    host._submit(seconds, loop.resume, None)


_START_JOB = (_start_job,)          # its callbacks, one tuple for every such wait (only read)


def _nobody_waits(_arg) -> None:
    pass


class Host:
    __slots__ = ("env", "name", "cores", "_n", "_v", "_t", "_heap", "_seq", "_timer",
                 "busy_core_seconds", "peak_jobs", "_wake")

    def __init__(self, env, name: str, cores: float | None):
        if cores is not None and not cores > 0:
            raise ValueError(f"host {name}: cores must be > 0 or None (unlimited), got {cores}")
        self.env = env
        self.name = name
        self.cores = cores
        self._n = 0
        self._v = 0.0
        self._t = 0.0
        self._heap: list = []
        self._seq = 0
        self._timer = None          # the one live wake-up timer (older ones are disarmed)
        self._wake = (self._on_timer,)  # its callbacks: one tuple for every timer (only read)
        self.busy_core_seconds = 0.0
        self.peak_jobs = 0

    @property
    def jobs(self) -> int:
        return self._n

    def work(self, seconds: float, after: float = 0.0) -> Event:
        """An event that fires once ``seconds`` of CPU work are done on this host, the work
        starting ``after`` seconds from now (a wait that uses no CPU, e.g. for the database)."""
        if self.cores is None or seconds <= 0.0:
            if seconds > 0.0:
                self.busy_core_seconds += seconds
            total = (seconds if seconds > 0.0 else 0.0) + after
            return self.env.timeout(total)
        ev = Event(self.env)
        if after > 0.0:
            later(self.env, after, lambda _e: self._submit(seconds, ev.succeed, None))
        else:
            self._submit(seconds, ev.succeed, None)
        return ev

    def work_for(self, loop, seconds: float, after: float = 0.0) -> None:
        """:meth:`work` for an :class:`~sim.engine.Loop`: resume ``loop`` when the work is done
        (at once, from the host's timer), ``after`` seconds' wait included."""
        if self.cores is None or seconds <= 0.0:
            if seconds > 0.0:
                self.busy_core_seconds += seconds
            loop.sleep((seconds if seconds > 0.0 else 0.0) + after)
        elif after > 0.0:
            loop.job = (self, seconds)
            later_on(self.env, after, loop, _START_JOB)
        else:
            self._submit(seconds, loop.resume, None)

    def repeat(self, seconds: float) -> None:
        """Count ``seconds`` of CPU work done in loops that were not simulated one by one (a
        scheduler's identical idle loops): they ran while nothing else competed, so only the
        statistics change. (An unlimited host has no cores to keep busy.)"""
        if self.cores:
            self.busy_core_seconds += seconds

    def run(self, seconds: float, then, arg=None) -> None:
        """Call ``then(arg)`` once ``seconds`` of CPU work are done (one event fewer than
        ``work``; the argument saves its callers a closure per job)."""
        if self.cores is None or seconds <= 0.0:
            if seconds > 0.0:
                self.busy_core_seconds += seconds
            later(self.env, seconds if seconds > 0.0 else 0.0, lambda _e: then(arg))
            return
        self._submit(seconds, then, arg)

    def burn(self, seconds: float) -> None:
        """``seconds`` of CPU work that nobody waits for: it only slows what else runs here."""
        if self.cores is None:
            self.busy_core_seconds += seconds
        elif seconds > 0.0:
            self._submit(seconds, _nobody_waits, None)

    def _submit(self, seconds: float, done, arg) -> None:
        now = self.env.now
        n = self._n
        cores = self.cores
        old_rate = 1.0 if n <= cores else cores / n
        dt = now - self._t
        if dt > 0.0 and n:
            self._v += dt * old_rate
            self.busy_core_seconds += dt * (n if n < cores else cores)
        self._t = now
        self._seq += 1
        job = (self._v + seconds, self._seq, done, arg)
        heap = self._heap
        heappush(heap, job)
        n += 1
        self._n = n
        if n > self.peak_jobs:
            self.peak_jobs = n
        # The live timer stays right if the rate did not change and the new job is not first.
        if self._timer is None or (n > cores) or heap[0] is job:
            self._arm(now)

    def _arm(self, now: float) -> None:
        old = self._timer
        heap = self._heap
        if not heap:
            if old is not None:
                old.callbacks = _NOBODY    # superseded: the loop pops it and calls nobody
            self._timer = None
            return
        n = self._n                       # the rate, inline: this runs for every job's start and end
        delay = (heap[0][0] - self._v) / (1.0 if n <= self.cores else self.cores / n)
        if old is None or old.callbacks is not None:
            if old is not None:
                old.callbacks = _NOBODY    # still queued: disarmed, as above
            old = self._timer = Wake()
        # else the timer that just fired (the loop emptied its callbacks): queued again, not remade
        later_on(self.env, delay if delay > 0.0 else 0.0, old, self._wake)

    def _on_timer(self, _timer) -> None:
        # Only the live timer calls this (_arm disarms the one it supersedes).
        now = self.env.now
        # advance the virtual time (processor sharing: each job gets min(1, cores/n) of a core)
        dt = now - self._t
        n = self._n
        if dt > 0.0 and n:
            cores = self.cores
            self._v += dt * (1.0 if n <= cores else cores / n)
            self.busy_core_seconds += dt * (n if n < cores else cores)
        self._t = now
        heap = self._heap
        limit = self._v + 1e-9 * (1.0 + self._v)      # (the virtual time is never negative)
        if not heap or heap[0][0] > limit:
            self._arm(now)
            return
        job = heappop(heap)
        self._n -= 1
        if heap and heap[0][0] <= limit:   # several end together (rare): collect them all first
            finished = [job]
            while heap and heap[0][0] <= limit:
                finished.append(heappop(heap))
                self._n -= 1
            self._arm(now)
            for job in finished:       # after re-arming: a callback may submit new work here
                job[2](job[3])
            return
        self._arm(now)
        job[2](job[3])
