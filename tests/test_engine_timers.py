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


def _loop_trace(use_loop: bool, seed: int, shared: bool) -> list:
    """Five loops that sleep, wait for host work (with and without a wait before it) and for a
    ring, beside plain timers, on a coarse grid of times so that ties abound. ``shared``: the host
    work is on a 2-core host (processor sharing; the jobs end off the grid) and each loop decides
    from its own random stream and is rung by timers only, so the order of a loop's resumes within
    one instant cannot change what happens next; else on an unlimited host, and loops ring each
    other."""
    from sim.engine import Loop
    from sim.infra.host import Host

    env = Environment()
    host = Host(env, "small", 2) if shared else Host(env, "unlimited", None)
    seen = []
    bells: dict = {}
    common = random.Random(seed)

    def note(tag):
        seen.append((env.now, tag))

    def body(i, me):
        rng = random.Random(seed * 10 + i) if shared else common
        for k in range(15):
            r = rng.random()
            cpu = rng.choice([0.0, 0.37, 1.13] if shared else [0.0, 0.5, 1.0])
            after = rng.choice([0.0, 0.5])
            if rng.random() < 0.5:
                later(env, rng.choice([0.0, 0.5, 1.0]), lambda _e, i=i, k=k: note(("t", i, k)))
            if r < 0.3:
                delay = rng.choice([0.0, 0.5, 1.0])
                if use_loop:
                    # wait: a sleep, or on at once when nothing else is due by its end
                    if me[0].wait(delay) if k % 2 else me[0].sleep(delay) is None:
                        yield
                else:
                    yield env.timeout(delay)
            elif r < 0.8:
                if use_loop:
                    if host.work_for(me[0], cpu, after):     # else on at once (engine.go_on)
                        yield
                else:
                    yield host.work(cpu, after)
            else:
                # wait for a ring: another loop's, or a timer's so that nobody waits forever
                bells[i] = me[0] if use_loop else env.event()
                ev = bells[i]
                later(env, 1.0, lambda _e, i=i: ring(i))
                yield None if use_loop else ev
            note(("p", i, k))
            j = rng.randrange(5)
            if not shared and j in bells and rng.random() < 0.5:
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
    """engine.Loop (the scheduler's loop): every resume at the same time and in the same order as
    the simpy.Process it replaces, ties included (sleeps, rings, work on an unlimited host)."""
    a, b = _loop_trace(True, seed, shared=False), _loop_trace(False, seed, shared=False)
    assert len(a) > 50
    assert a == b


@pytest.mark.parametrize("seed", range(20))
def test_host_work_for_a_loop_ends_when_host_work_would(seed):
    """Host.work_for on a processor-sharing host: each loop resumes at the times Host.work's event
    would resume a simpy.Process (the order within an instant is the test below's rule)."""
    a, b = _loop_trace(True, seed, shared=True), _loop_trace(False, seed, shared=True)
    assert len(a) > 50
    assert sorted(a, key=repr) == sorted(b, key=repr)
    assert [t for t, _ in a] == [t for t, _ in b]


def test_a_loop_resumes_at_once_when_its_host_work_ends():
    """The one tie a Loop breaks differently from a simpy.Process: when its host work ends it runs
    on at once, before a timer due at the same instant (a Process would resume after it, one
    queue round trip later). Either order is a valid tie-break; this one saves an event a part."""
    from sim.engine import Loop
    from sim.infra.host import Host

    env = Environment()
    host = Host(env, "h", 1)
    seen = []

    def body(me):
        later(env, 0.5, lambda _e: None)     # due before the work ends: the loop must yield
        assert host.work_for(me[0], 1.0)
        later(env, 1.0, lambda _e: seen.append(("timer", env.now)))
        yield
        seen.append(("loop", env.now))

    me = [None]
    me[0] = Loop(env, body(me))
    done = env.event()
    later(env, 2.0, lambda _e: done.succeed())
    env.run_until(done)
    assert seen == [("loop", 1.0), ("timer", 1.0)]
