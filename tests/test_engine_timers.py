"""``sim.engine.later``: the model's bare timer must fire exactly where and in the order SimPy's own
``env.timeout(delay)`` with a callback would, interleaved with SimPy events of every kind."""
import random

import pytest
import simpy

from sim.engine import Environment, later


def _trace(use_later: bool, seed: int, env_class=simpy.Environment, until: str = "") -> list:
    env = env_class()
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

    procs = [env.process(proc(i)) for i in range(5)]
    if until == "inlined":
        env.run_until(env.all_of(procs))         # the model's loop
    elif until:
        env.run(until=env.all_of(procs))         # SimPy's, with the same end
    else:
        env.run()
    return seen


@pytest.mark.parametrize("seed", range(20))
def test_later_fires_in_the_same_order_as_a_simpy_timeout(seed):
    assert _trace(True, seed) == _trace(False, seed)


def test_later_refuses_a_negative_delay():
    env = simpy.Environment()
    with pytest.raises(ValueError):
        later(env, -1.0, lambda _e: None)


@pytest.mark.parametrize("seed", range(10))
def test_the_models_environment_runs_as_simpys(seed):
    """engine.Environment's plain-attribute clock and its inlined loop (run_until): the same
    events at the same times in the same order as SimPy's own Environment.run."""
    assert _trace(True, seed, Environment) == _trace(False, seed)
    assert _trace(True, seed, Environment, "inlined") == _trace(False, seed, until="event")


def test_run_until_crashes_on_an_undefused_failure():
    env = Environment()
    ev = env.event()
    ev.fail(KeyError("boom"))
    with pytest.raises(KeyError):
        env.run_until(env.timeout(5.0))
    assert env.now == env._now == 0.0


def _loop_trace(use_loop: bool, seed: int) -> list:
    """Loops that sleep, wait for host work (with and without a wait before it, on a shared
    2-core host and an unlimited one) and for a ring, beside plain timers and events, all on a
    coarse grid of times so that ties abound."""
    from sim.engine import Loop
    from sim.infra.host import Host

    env = Environment()
    rng = random.Random(seed)
    hosts = [Host(env, "small", 2), Host(env, "unlimited", None)]
    seen = []
    bells: dict = {}

    def note(tag):
        seen.append((env.now, tag))

    def body(i, me):
        for k in range(15):
            r = rng.random()
            host = rng.choice(hosts)
            cpu = rng.choice([0.0, 0.5, 1.0])
            after = rng.choice([0.0, 0.5])
            if rng.random() < 0.5:
                later(env, rng.choice([0.0, 0.5, 1.0]), lambda _e, i=i, k=k: note(("t", i, k)))
            if r < 0.3:
                delay = rng.choice([0.0, 0.5, 1.0])
                if use_loop:
                    me[0].sleep(delay)
                    yield
                else:
                    yield env.timeout(delay)
            elif r < 0.8:
                if use_loop:
                    host.work_for(me[0], cpu, after)
                    yield
                else:
                    yield host.work(cpu, after)
            else:
                # wait for another loop's ring (or a timer's, so nobody waits forever)
                if use_loop:
                    bells[i] = me[0]
                else:
                    bells[i] = env.event()
                    ev = bells[i]
                later(env, 1.0, lambda _e, i=i: ring(i))
                if use_loop:
                    yield
                else:
                    yield ev
            note(("p", i, k))
            j = rng.randrange(5)
            if j in bells and rng.random() < 0.5:
                ring(j, rng.choice([0.0, 0.5]))

    def ring(j, delay=0.0):
        bell = bells.pop(j, None)
        if bell is None:
            return
        if use_loop:
            bell.sleep(delay)
        else:
            bell._ok, bell._value = True, None
            env.schedule(bell, delay=delay)

    done = env.event()
    for i in range(5):
        me = [None]
        gen = body(i, me)
        if use_loop:
            me[0] = Loop(env, gen)
        else:
            env.process(gen)
    later(env, 1000.0, lambda _e: done.succeed())
    env.run_until(done)
    return seen


@pytest.mark.parametrize("seed", range(20))
def test_a_loop_resumes_in_the_same_order_as_a_simpy_process(seed):
    """engine.Loop (the scheduler's loop) with Host.work_for: every resume at the same time and in
    the same order as the simpy.Process and Host.work it replaces."""
    a, b = _loop_trace(True, seed), _loop_trace(False, seed)
    assert len(a) > 50
    assert a == b
