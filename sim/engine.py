"""The few things the model asks of SimPy beyond its public API, in one place.

SimPy's loop (``Environment.step``) pops ``(time, priority, id, event)`` from its queue, calls the
event's ``callbacks`` and checks ``event._ok``; that is all it reads. The helpers below put entries
on that queue the way ``Event.succeed`` and ``Timeout`` do, with the same priority and the same id
counter, so the order of simultaneous events (and every result) is what SimPy's own calls give.
"""
from __future__ import annotations

from heapq import heappop, heappush

import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, URGENT


class Wake:
    """A bare timer: what ``env.timeout(delay)`` is to SimPy's loop, without the parts of an
    :class:`simpy.Event` nobody waiting by callback uses (value, environment, ``yield``). Half the
    cost of a ``Timeout``; the model's callback chains (task processes, hosts, the database's
    waits) schedule one per step, millions in a long run."""

    __slots__ = ("callbacks",)
    _ok = True


def later(env, delay: float, callback) -> Wake:
    """Call ``callback(wake)`` ``delay`` seconds from now, in the order ``env.timeout(delay)``
    with that callback appended would have it called. (A tuple, not a list, holds it: SimPy's
    loop only iterates it, and nobody adds to a timer's callbacks.)"""
    if delay < 0.0:
        raise ValueError(f"negative delay {delay}")
    w = Wake()
    w.callbacks = (callback,)
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), w))
    return w


def later_on(env, delay: float, timer, callbacks: tuple) -> None:
    """:func:`later` for an object that is its own timer (it has ``callbacks`` and a true
    ``_ok``), with ``callbacks`` a tuple made once: a chain of steps with one pending at a time
    (a task process) waits without a Wake and a closure per step. The same push, so the same
    order as ``later``."""
    if delay < 0.0:
        raise ValueError(f"negative delay {delay}")
    timer.callbacks = callbacks
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), timer))


def go_on(env, t: float) -> bool:
    """If nothing is due at or before ``t``, move the clock to ``t`` and return True: a caller in
    tail position (nothing left to do before it waits) that would push its wake-up for ``t`` may
    go on now instead. The push would have been the next event popped (an event due at ``t``
    already is popped before a later push), so what runs, in what order and at what times is
    unchanged; only the queue's push and pop are saved. (An ``until`` event or a progress tick
    is in the queue too, so the clock never passes them.) Not while ``env._hold``: a callback
    that calls several continuations in turn (a host's jobs ending together) holds the clock
    for all but the last."""
    queue = env._queue
    if (queue and queue[0][0] <= t) or env._hold:
        return False
    env._now = env.now = t
    return True


def later_on_last(env, delay: float, timer, callbacks: tuple) -> None:
    """:func:`later_on` for a caller in tail position: when nothing else is due by then
    (:func:`go_on`), the clock moves there and the step (``callbacks``' one callback) runs now."""
    if go_on(env, env._now + delay):
        callbacks[0](timer)
    else:
        later_on(env, delay, timer, callbacks)


class Loop:
    """A generator run as its own timer: what :class:`simpy.Process` is to a loop that arranges
    each of its waits through this object (:meth:`sleep`, or :meth:`resume` as a host job's
    callback: :meth:`sim.infra.host.Host.work_for`) and then yields nothing. A sleep is the push a
    ``Timeout`` makes when it is made, and the start is the process's ``Initialize``, so ties
    among them and other events fall as under SimPy; host work ending resumes the loop from the
    host's own event (at once from its timer on a contended host, else from the one timer pushed
    when the work was submitted, at its end), where a Process would resume one queue round trip
    later, after what else is due at that instant (a tie-break as valid, one event fewer a part;
    tests/test_engine_timers.py). No event
    object, ``Process`` resume or callbacks list per wait: the scheduler loop waits about three
    times a loop, and runs about one loop per task instance."""

    __slots__ = ("env", "_gen", "callbacks", "_steps")
    _ok = True

    def __init__(self, env, gen):
        self.env = env
        self._gen = gen
        self._steps = (self.resume,)
        self.callbacks = self._steps
        heappush(env._queue, (env._now, URGENT, next(env._eid), self))   # as env.process's Initialize

    def resume(self, _arg=None) -> None:
        """Run the loop to its next wait (now)."""
        try:
            next(self._gen)
        except StopIteration:
            pass

    def sleep(self, delay: float) -> None:
        """Resume ``delay`` seconds from now (``yield env.timeout(delay)``)."""
        later_on(self.env, delay, self, self._steps)

    def wait(self, delay: float) -> bool:
        """:meth:`sleep`, unless nothing else is due by then: the loop's wake-up would be the next
        event popped, so the clock moves there now and the loop goes on without yielding
        (:func:`go_on`). Returns whether the loop must yield."""
        if go_on(self.env, self.env._now + delay):
            return False
        later_on(self.env, delay, self, self._steps)
        return True


class Environment(simpy.Environment):
    """SimPy's environment with its clock ``now`` a plain attribute instead of a property: the
    model reads the time 1.5 times per event (millions of property calls in a long run). Every
    way time advances (``step``, ``run``, :meth:`run_until`) keeps ``now`` equal to SimPy's
    ``_now``, which SimPy's own events read."""

    now = 0.0                     # shadows the base class's property; set per instance
    _hold = False                 # engine.go_on may not move the clock (set while true)

    def __init__(self, initial_time: float = 0):
        super().__init__(initial_time)
        self.now = self._now

    def step(self) -> None:
        if self._queue:
            self.now = self._queue[0][0]     # the time of the event about to be processed
        super().step()

    def run_until(self, until) -> None:
        """``run(until=until)`` for an ``until`` event, with ``step`` inlined: the same pops in
        the same order and the same callbacks, without a method call and its ``try`` per event
        (millions in a long run). A failed event nobody defused still crashes the run as SimPy's
        would."""
        if until.callbacks is None:
            return                               # already processed
        until.callbacks.append(StopSimulation.callback)
        queue = self._queue
        try:
            while queue:
                now, _, _, event = heappop(queue)
                self._now = self.now = now
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        except StopSimulation:
            return
        raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}')
