"""The triggerer (airflow-mechanics.md §1.11): where deferred tasks wait for their event.

A deferrable task's process writes a trigger row and the state ``deferred``, then exits: it holds
no executor slot and no pool slot while it waits. Each triggerer process runs
``TriggererJobRunner._run_trigger_loop``: ``load_triggers`` claims unassigned triggers up to its
``[triggerer] capacity`` (``Trigger.assign_unassigned``), ``handle_events`` submits the events of
triggers that fired (the task instance goes back to ``scheduled``: a second trip through the
scheduler and the executor), then the loop sleeps one second (``overheads.triggerer_loop_sleep``).
Several triggerers share the trigger table; a trigger nobody has room for waits unassigned.

A trigger's condition holds ``wait`` after the deferral, whether or not a triggerer runs it yet; a
trigger claimed late fires on its first check. The loop's one-second passes are only simulated
while a triggerer has something to do; a pass that could change nothing is skipped.
"""
from __future__ import annotations

import math
from collections import deque

from ..engine import later
from ..model.stimuli import EventKind as E


class Triggerer:
    """One ``airflow triggerer`` process."""

    __slots__ = ("pool", "name", "capacity", "phase", "sleep", "running", "max_running", "claimed", "_next",
                 "_gen")

    def __init__(self, pool: "Triggerers", index: int, capacity: int, sleep: float, phase: float):
        self.pool = pool
        self.sleep = sleep                    # overheads.triggerer_loop_sleep
        self.name = f"triggerer-{index}"
        self.capacity = capacity
        self.phase = phase                    # passes at phase + k * sleep
        self.running: dict = {}               # ti -> when its event comes (fire time)
        self.max_running = 0
        self.claimed = 0
        self._next = math.inf                 # time of the next simulated pass
        self._gen = 0                         # invalidates a pass superseded by an earlier one

    def wake(self, at: float) -> None:
        """Make sure a pass happens at the first loop time >= ``at``."""
        env = self.pool.env
        at = max(at, env.now)
        if self.sleep > 0.0:
            k = math.ceil((at - self.phase) / self.sleep - 1e-9)
            t = max(self.phase + max(k, 0) * self.sleep, env.now)
        else:
            t = at
        if t >= self._next:
            return
        self._next = t
        self._gen += 1
        gen = self._gen
        later(env, t - env.now, lambda _e: self._pass(gen))

    def _pass(self, gen: int) -> None:
        if gen != self._gen:
            return
        pool = self.pool
        now = pool.env.now
        self._next = math.inf
        # Airflow's order: load_triggers claims unassigned triggers up to capacity
        # (assign_unassigned, then ids_for_triggerer: two queries), counting the ones whose
        # events handle_events then submits (claimed in an earlier pass: a trigger claimed now is
        # only created by the async runner after this pass).
        fired = [ti for ti, at in self.running.items() if at <= now]
        pool.db.book(2)
        room = self.capacity - len(self.running)
        waiting = pool.unassigned
        while room > 0 and waiting:
            ti, deferred_at = waiting.popleft()
            self.running[ti] = max(deferred_at + ti.run.defer_state[ti].trigger_wait, now + self.sleep)
            self.claimed += 1
            room -= 1
            pool.claim_wait += now - deferred_at
            pool.core.event(now, E.TRIGGER_CLAIMED, "trigger claimed", ti, ti.try_number, self.name)
        if len(self.running) > self.max_running:
            self.max_running = len(self.running)
        for ti in fired:
            del self.running[ti]
            pool.submit_event(ti, self)
        if fired and waiting:
            self.wake(now + self.sleep)       # room freed: claim the next waiting triggers
        if self.running:
            self.wake(max(now + self.sleep, min(self.running.values())))


class Triggerers:
    """Every triggerer of the deployment and the trigger table they share."""

    def __init__(self, sim):
        self.sim = sim
        self.env = sim.env
        self.db = sim.db
        self.core = sim.state
        cfg = sim.airflow
        n = max(1, cfg.triggerers)
        # Independent processes started at different moments: their passes interleave.
        sleep = sim.overheads.triggerer_loop_sleep
        self.members = [Triggerer(self, i, cfg.triggerer_capacity, sleep, i * sleep / n) for i in range(n)]
        self.unassigned: deque = deque()     # (ti, deferred_at) in the order they deferred
        self.deferred = 0
        self.fired = 0
        self.claim_wait = 0.0

    def defer(self, ti, at: float) -> None:
        """A task process wrote its trigger row and the state ``deferred``."""
        self.unassigned.append((ti, at))
        self.deferred += 1
        for t in self.members:
            t.wake(at)

    def submit_event(self, ti, who: Triggerer) -> None:
        """Trigger.submit_event: the task instance goes back to ``scheduled`` (one DB write)."""
        self.fired += 1
        now = self.env.now
        self.core.event(now, E.TRIGGER_EVENT, "trigger fired", ti, ti.try_number, who.name)
        wait = self.db.book(1)
        if wait > 0.0:
            later(self.env, wait, lambda _e: self.core.trigger_fired(ti))
        else:
            self.core.trigger_fired(ti)

    def busy(self) -> bool:
        """Is a deferred task still waiting for its event?"""
        return self.fired < self.deferred

    def stats(self) -> dict:
        n = sum(t.claimed for t in self.members)
        return {
            "triggerers": len(self.members),
            "capacity_each": self.members[0].capacity,
            "deferred": self.deferred,
            "fired": self.fired,
            "max_running": {t.name: t.max_running for t in self.members},
            "mean_wait_for_capacity_seconds": round(self.claim_wait / n, 6) if n else None,
        }
