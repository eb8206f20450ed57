"""The few things the model asks of SimPy beyond its public API, in one place."""
from __future__ import annotations


def succeed_later(env, event, delay: float) -> None:
    """Make ``event`` succeed ``delay`` seconds from now. This is what ``Event.succeed()`` does,
    scheduled with a delay instead of at once (as SimPy's own ``Timeout`` schedules itself):
    one event where a timeout that then succeeds ``event`` would take two. Used to wake an idle
    scheduler on its grid of loop starts."""
    event._ok = True
    event._value = None
    env.schedule(event, delay=delay)
