"""The host's free mode (no events of its own while its jobs are no more than its cores) and its
classic mode (processor sharing on a virtual clock) against processor sharing worked out directly:
every job ends when egalitarian processor sharing says, with waits before (``after``) and after
(``tail``) its work, work nobody waits for (``burn``) among it, and ``busy_core_seconds`` read at
any time is the work done up to the host's last arrival or end."""
import random

import pytest

from sim.engine import Environment, later
from sim.infra.host import Host


def _processor_sharing(cores, jobs):
    """Ends of ``jobs`` [(arrival, work)] on ``cores`` (rate min(1, cores/n)), and the moments
    work arrives or ends with the core-seconds done by each."""
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][0])
    left, end, marks = {}, {}, [(0.0, 0.0)]
    t, k, busy = 0.0, 0, 0.0
    while k < len(order) or left:
        n = len(left)
        rate = 1.0 if n <= cores else cores / n
        nxt_arrival = jobs[order[k]][0] if k < len(order) else float("inf")
        nxt_end = min(left.values()) / rate if left else float("inf")
        dt = min(nxt_arrival - t, nxt_end)
        for i in left:
            left[i] -= dt * rate
        busy += dt * rate * n
        t += dt
        for i in [i for i, w in left.items() if w <= 1e-12]:
            end[i] = t
            del left[i]
        while k < len(order) and jobs[order[k]][0] <= t:
            left[order[k]] = jobs[order[k]][1]
            k += 1
        marks.append((t, busy))
    return end, marks


@pytest.mark.parametrize("seed", range(40))
def test_free_and_classic_modes_are_processor_sharing(seed):
    rng = random.Random(seed)
    cores = rng.choice([1, 2, 3.5, 4, 8])
    env = Environment()
    host = Host(env, "h", cores)
    specs, ends, reads = [], {}, []
    t = 0.0
    rate = rng.choice([0.5, 2.0, 8.0])         # from mostly free to mostly contended
    for i in range(rng.randint(20, 120)):
        t += rng.expovariate(rate)
        work = rng.uniform(0.01, 3.0)
        after = rng.choice([0.0, 0.0, rng.uniform(0.0, 2.0)])
        tail = rng.choice([None, 0.0, rng.uniform(0.0, 2.0)])
        burn = rng.random() < 0.15
        specs.append((t, work, 0.0 if burn else after, None if burn else tail, burn))

    def submit(i):
        _, work, after, tail, burn = specs[i]
        if burn:
            host.burn(work)
        else:
            host.run(work, lambda _a: ends.__setitem__(i, env.now), None, after=after, tail=tail)
    for i, (at, *_rest) in enumerate(specs):
        later(env, at, lambda _e, i=i: submit(i))
    for _ in range(40):
        later(env, rng.uniform(0.0, t + 5.0), lambda _e: reads.append((env.now, host.busy_core_seconds)))
    stop = env.event()
    later(env, t + 1000.0, lambda _e: stop.succeed())
    env.run_until(stop)

    want, marks = _processor_sharing(cores, [(at + after, work) for at, work, after, _t, _b in specs])
    assert sorted(ends) == [i for i, s in enumerate(specs) if not s[4]]
    for i, got in ends.items():
        tail = specs[i][3]
        assert got == pytest.approx(want[i] + (tail or 0.0), abs=1e-7), i
    for at, busy in reads:
        done = max(b for m, b in marks if m <= at + 1e-9)
        assert busy == pytest.approx(done, abs=1e-7), at
    assert host.busy_core_seconds == pytest.approx(sum(s[1] for s in specs), abs=1e-7)


def test_free_host_schedules_one_event_a_job_and_none_for_burns():
    env = Environment()
    host = Host(env, "h", 2)
    seen = []
    host.run(1.0, seen.append, "a", after=0.5, tail=0.25)
    host.burn(3.0)
    assert len(env._queue) == 1                 # the continuation only, at 0.5 + 1 + 0.25
    assert env._queue[0][0] == 1.75
    stop = env.event()
    later(env, 10.0, lambda _e: stop.succeed())
    env.run_until(stop)
    assert seen == ["a"] and host.busy_core_seconds == 4.0


def test_a_third_job_on_two_cores_slows_the_others_from_its_arrival():
    env = Environment()
    host = Host(env, "h", 2)
    seen = {}
    for name, work, after in (("x", 2.0, 0.0), ("y", 2.0, 0.0), ("z", 1.0, 1.0)):
        host.run(work, lambda n: seen.__setitem__(n, env.now), name, after=after)
    stop = env.event()
    later(env, 10.0, lambda _e: stop.succeed())
    env.run_until(stop)
    # from t=1 three jobs share two cores (2/3 each): z's 1 s ends at 2.5, x and y theirs too
    assert seen == pytest.approx({"x": 2.5, "y": 2.5, "z": 2.5})
    assert host.busy_core_seconds == pytest.approx(5.0)


def test_unlimited_host_keeps_its_separate_steps():
    """cores=None: a wait, the work, a wait, as three timers (the order SimPy's own would give)."""
    env = Environment()
    host = Host(env, "free", None)
    seen = []
    host.run(1.0, seen.append, "a", after=0.5, tail=0.25)
    assert len(env._queue) == 1 and env._queue[0][0] == 0.5
    env.step()
    assert env._queue[0][0] == 1.5
    env.step()
    assert env._queue[0][0] == 1.75
    env.step()
    assert seen == ["a"] and host.busy_core_seconds == 1.0
