"""A host whose cores are shared by everything running on it (egalitarian processor sharing).

With ``n`` CPU-bound jobs on ``c`` cores each job progresses at rate ``min(1, c/n)``: piling more
processes onto a small host does not make it faster, it makes everything on it slower. The
implementation keeps one *virtual work clock* ``V`` (work done by any one job since the host
started) and a heap of the jobs' finishing values of ``V``, so an arrival or a departure costs
O(log n), and only one wake-up timer is live at a time.
"""
from __future__ import annotations

import heapq

from simpy import Event


class Host:
    __slots__ = ("env", "name", "cores", "_n", "_v", "_t", "_heap", "_seq", "_version",
                 "_timer_at", "busy_core_seconds", "peak_jobs")

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
        self._version = 0
        self._timer_at = None
        self.busy_core_seconds = 0.0
        self.peak_jobs = 0

    @property
    def jobs(self) -> int:
        return self._n

    def work(self, seconds: float) -> Event:
        """An event that fires once ``seconds`` of CPU work are done on this host."""
        if self.cores is None or seconds <= 0.0:
            if seconds > 0.0:
                self.busy_core_seconds += seconds
            return self.env.timeout(seconds if seconds > 0.0 else 0.0)
        ev = Event(self.env)
        self._submit(seconds, ev.succeed)
        return ev

    def run(self, seconds: float, then) -> None:
        """Call ``then()`` once ``seconds`` of CPU work are done (one event fewer than ``work``)."""
        if self.cores is None or seconds <= 0.0:
            if seconds > 0.0:
                self.busy_core_seconds += seconds
            self.env.timeout(seconds if seconds > 0.0 else 0.0).callbacks.append(lambda _e: then())
            return
        self._submit(seconds, then)

    def _submit(self, seconds: float, done) -> None:
        now = self.env.now
        self._advance(now)
        old_rate = self._rate()
        self._seq += 1
        finish = self._v + seconds
        ev = (finish, self._seq, done)
        heapq.heappush(self._heap, ev)
        self._n += 1
        if self._n > self.peak_jobs:
            self.peak_jobs = self._n
        # The live timer stays right if the rate did not change and the new job is not first.
        if self._timer_at is None or self._rate() != old_rate or self._heap[0] is ev:
            self._arm(now)

    def _rate(self) -> float:
        n = self._n
        return 1.0 if n <= self.cores else self.cores / n

    def _advance(self, now: float) -> None:
        dt = now - self._t
        if dt > 0.0 and self._n:
            self._v += dt * self._rate()
            self.busy_core_seconds += dt * min(self._n, self.cores)
        self._t = now

    def _arm(self, now: float) -> None:
        self._version += 1
        if not self._heap:
            self._timer_at = None
            return
        delay = (self._heap[0][0] - self._v) / self._rate()
        if delay < 0.0:
            delay = 0.0
        self._timer_at = now + delay
        version = self._version
        self.env.timeout(delay).callbacks.append(lambda _e: self._on_timer(version))

    def _on_timer(self, version: int) -> None:
        if version != self._version:
            return  # superseded by a later arrival or departure
        now = self.env.now
        self._advance(now)
        heap = self._heap
        eps = 1e-9 * (1.0 + abs(self._v))
        finished = []
        while heap and heap[0][0] <= self._v + eps:
            finished.append(heapq.heappop(heap)[2])
            self._n -= 1
        self._arm(now)
        for done in finished:      # after re-arming: a callback may submit new work here
            done()
