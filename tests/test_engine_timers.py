"""``sim.engine.later``: the model's bare timer must fire exactly where and in the order SimPy's own
``env.timeout(delay)`` with a callback would, interleaved with SimPy events of every kind."""
import random

import pytest
import simpy

from sim.engine import later


def _trace(use_later: bool, seed: int) -> list:
    env = simpy.Environment()
    rng = random.Random(seed)
    seen = []

    def timer(tag, delay):
        cb = lambda _e, tag=tag: seen.append((env.now, tag))   # noqa: E731
        if use_later:
            later(env, delay, cb)
        else:
            env.timeout(delay).callbacks.append(cb)

    def proc(i):
        for k in range(20):
            # ties on purpose: delays on a coarse grid, some zero
            delay = rng.choice([0.0, 0.5, 1.0, 1.5])
            timer(("t", i, k), delay)
            if rng.random() < 0.5:
                ev = env.event()
                ev.callbacks.append(lambda _e, i=i, k=k: seen.append((env.now, ("ev", i, k))))
                ev.succeed()
            yield env.timeout(rng.choice([0.0, 0.5, 1.0]))
            seen.append((env.now, ("p", i, k)))

    for i in range(5):
        env.process(proc(i))
    env.run()
    return seen


@pytest.mark.parametrize("seed", range(20))
def test_later_fires_in_the_same_order_as_a_simpy_timeout(seed):
    assert _trace(True, seed) == _trace(False, seed)


def test_later_refuses_a_negative_delay():
    env = simpy.Environment()
    with pytest.raises(ValueError):
        later(env, -1.0, lambda _e: None)


def test_one_callback_list_serves_many_timers():
    env = simpy.Environment()
    calls = []
    shared = [lambda e: calls.append(env.now)]
    for d in (3.0, 1.0, 2.0):
        later(env, d, shared)
    env.run()
    assert calls == [1.0, 2.0, 3.0] and len(shared) == 1
