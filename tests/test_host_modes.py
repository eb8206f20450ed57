"""The host's free mode (no events of its own while its jobs are no more than its cores) and its
classic mode (processor sharing on a virtual clock) against processor sharing worked out directly:
every job ends when egalitarian processor sharing says, with waits before (``after``) and after
(``tail``) its work, work nobody waits for (``burn``) among it, and ``busy_core_seconds`` read at
any time is the work done up to the host's last arrival or end. With groups (Linux's autogroups) the
same against group processor sharing worked out directly: the cores shared equally among the
groups with jobs, a group's share capped at a core per job (water-filling)."""
import random

import pytest

from sim.engine import Environment, later
from sim.infra.autogroup import share
from sim.infra.host import Host


def _group_rates(cores, groups):
    """Per-job rate of each group with jobs ({group: jobs}), by water-filling done the slow way:
    raise one common level until the cores are used, each group taking min(level, its jobs)."""
    n = sum(groups.values())
    if n <= cores:
        return {g: 1.0 for g in groups}
    lo, hi = 0.0, float(cores)
    for _ in range(200):
        mid = (lo + hi) / 2
        if sum(min(mid, c) for c in groups.values()) < cores:
            lo = mid
        else:
            hi = mid
    return {g: min(hi, c) / c for g, c in groups.items()}


def _processor_sharing(cores, jobs, group_of=None):
    """Ends of ``jobs`` [(arrival, work)] on ``cores`` (rate min(1, cores/n); with ``group_of``,
    each job's group, water-filled among groups), and the moments work arrives or ends with the
    core-seconds done by each."""
    group_of = group_of or [0] * len(jobs)
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][0])
    left, end, marks = {}, {}, [(0.0, 0.0)]
    t, k, busy = 0.0, 0, 0.0
    while k < len(order) or left:
        counts = {}
        for i in left:
            counts[group_of[i]] = counts.get(group_of[i], 0) + 1
        rates = _group_rates(cores, counts)
        rate_of = {i: rates[group_of[i]] for i in left}
        nxt_arrival = jobs[order[k]][0] if k < len(order) else float("inf")
        nxt_end = min(w / rate_of[i] for i, w in left.items()) if left else float("inf")
        dt = min(nxt_arrival - t, nxt_end)
        for i in left:
            left[i] -= dt * rate_of[i]
        busy += dt * sum(rate_of.values())
        t += dt
        for i in [i for i, w in left.items() if w <= 1e-12]:
            end[i] = t
            del left[i]
        while k < len(order) and jobs[order[k]][0] <= t:
            left[order[k]] = jobs[order[k]][1]
            k += 1
        marks.append((t, busy))
    return end, marks


@pytest.mark.parametrize("groups", [1, 3], ids=["one-group", "autogroups"])
@pytest.mark.parametrize("seed", range(40))
def test_free_and_classic_modes_are_processor_sharing(seed, groups):
    rng = random.Random(seed)
    cores = rng.choice([1, 2, 3.5, 4, 8])
    env = Environment()
    host = Host(env, "h", cores, autogroup=groups > 1)
    views = [host] + [host.group(f"g{k}") for k in range(1, groups)]
    specs, ends, reads = [], {}, []
    t = 0.0
    rate = rng.choice([0.5, 2.0, 8.0])         # from mostly free to mostly contended
    for i in range(rng.randint(20, 120)):
        t += rng.expovariate(rate)
        work = rng.uniform(0.01, 3.0)
        after = rng.choice([0.0, 0.0, rng.uniform(0.0, 2.0)])
        tail = rng.choice([None, 0.0, rng.uniform(0.0, 2.0)])
        burn = rng.random() < 0.15
        group = rng.choice([0, 0, 0, 1, 2]) if groups > 1 else 0   # unequal groups
        specs.append((t, work, 0.0 if burn else after, None if burn else tail, burn, group))

    def submit(i):
        _, work, after, tail, burn, group = specs[i]
        if burn:
            views[group].burn(work)
        else:
            views[group].run(work, lambda _a: ends.__setitem__(i, env.now), None, after=after, tail=tail)
    for i, (at, *_rest) in enumerate(specs):
        later(env, at, lambda _e, i=i: submit(i))
    for _ in range(40):
        later(env, rng.uniform(0.0, t + 5.0), lambda _e: reads.append((env.now, host.busy_core_seconds)))
    stop = env.event()
    later(env, t + 1000.0, lambda _e: stop.succeed())
    env.run_until(stop)

    want, marks = _processor_sharing(cores, [(at + after, work) for at, work, after, *_ in specs],
                                     [s[5] for s in specs])
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


def test_groups_share_the_cores_equally_and_pass_on_what_a_small_group_leaves():
    """Water-filling: a group gets an equal part of the cores, at most a core per job; what a small
    group leaves goes to the others. One group is plain processor sharing."""
    assert share([3], 2) == [pytest.approx(2 / 3)]
    assert share([1, 8], 2) == [1.0, pytest.approx(1 / 8)]          # a scheduler beside 8 children
    assert share([1, 8, 1], 2) == pytest.approx([2 / 3, 1 / 12, 2 / 3])
    assert share([0, 3, 1], 2) == pytest.approx([1.0, 1 / 3, 1.0])   # (an empty group takes nothing)
    assert share([1, 1], 4) == [1.0, 1.0]


def test_a_lone_scheduler_job_keeps_a_core_beside_a_busy_worker_group_with_autogroups():
    """Two cores, a Celery worker's group running 8 children and the scheduler's loop of 1 s of CPU:
    with autogroups the loop has a core of its own (1 s); without, it shares with the 8 (4.5 s)."""
    for autogroup, want in ((True, 1.0), (False, 4.5)):
        env = Environment()
        host = Host(env, "h", 2, autogroup=autogroup, group="scheduler")
        worker = host.group("celery worker")
        assert (worker is host) is not autogroup and worker.name == host.name and worker.machine is host
        for _ in range(8):
            worker.run(100.0, None)
        assert host.stretch() == pytest.approx(want)       # the rate a job arriving now gets
        seen = []
        host.run(1.0, lambda _a: seen.append(env.now))
        stop = env.event()
        later(env, 10.0, lambda _e: stop.succeed())
        env.run_until(stop)
        assert seen == [pytest.approx(want)]
