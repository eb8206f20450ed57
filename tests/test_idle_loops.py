"""The idle scheduler's loop starts under Airflow's loop timers (sim/airflow/idle_loops.py),
checked against the loop's own recurrence, one loop at a time: each loop lasts `cost`, runs the
timers due at its end (each re-armed an interval after it ran, EventScheduler.call_regular_interval),
then sleeps min(sleep, time to the next timer)."""
import random
from types import SimpleNamespace

import pytest

from sim.airflow.idle_loops import LoopTimers, intervals, locate


def brute(timers: LoopTimers, idle_end, sleep, cost, horizon):
    """Loop starts, and the timers' due times before and after each loop's end."""
    t = LoopTimers(timers.intervals, list(timers.due))
    out, x = [], idle_end
    while True:
        s = x + t.sleep(x, sleep)
        if s > horizon:
            return out
        before = list(t.due)
        x = s + cost
        t.run(x)
        out.append((s, before, list(t.due)))


@pytest.mark.parametrize("case", range(300))
def test_locate_matches_the_loop_recurrence(case):
    rng = random.Random(case)
    sleep = rng.choice([1.0, 0.5, 2.0, rng.uniform(0.1, 3.0)])
    cost = rng.choice([0.0005, 0.02, 0.3, rng.uniform(0.0, 1.0), 1.7])
    ivals = tuple(sorted(rng.sample([5.0, 10.0, 15.0, 30.0, 60.0, rng.uniform(0.3, 12.0)], rng.randint(1, 4))))
    idle_end = rng.uniform(0.0, 100.0)
    timers = LoopTimers(ivals, [idle_end + rng.random() * i for i in ivals])
    loops = brute(timers, idle_end, sleep, cost, idle_end + 200.0)
    for _ in range(50):
        now = rng.uniform(idle_end, idle_end + 190.0)
        k, start, nxt, due_before, due_after = locate(timers, idle_end, sleep, cost, now)
        started = [lp for lp in loops if lp[0] <= now]
        if not started:
            assert k == -1 and start == nxt == pytest.approx(loops[0][0], abs=1e-6)
            continue
        assert k == len(started) - 1
        assert start == pytest.approx(started[-1][0], abs=1e-6)
        assert nxt == pytest.approx(loops[len(started)][0], abs=1e-6)
        assert due_before == pytest.approx(started[-1][1], abs=1e-6)
        assert due_after == pytest.approx(started[-1][2], abs=1e-6)


def test_a_timer_runs_at_the_end_of_the_loop_it_fell_in_and_re_arms_from_there():
    """Loops of 0.613 s and a 1 s sleep. A 5 s timer cuts the sleep of the loop due after it,
    runs at that loop's end and is next due 5 s later: a period of 5.613 s, not 5. Due while a
    loop runs (here at 7 s, in the loop of 6.613-7.226 s), it runs at that loop's end."""
    t = LoopTimers((5.0,), [7.0])
    loops = brute(t, 6.0, 0.613, 0.613, 40.0)
    runs = [s + 0.613 for s, before, after in loops if after != before]
    assert runs[0] == pytest.approx(7.226)
    t = LoopTimers((5.0,), [5.0])
    loops = brute(t, 0.0, 1.0, 0.613, 60.0)
    runs = [s + 0.613 for s, before, after in loops if after != before]
    assert [b - a for a, b in zip(runs, runs[1:])] == pytest.approx([5.613] * (len(runs) - 1))


def test_timers_drift_across_a_fixed_grid():
    """Re-armed from when they ran, timers do not keep a fixed grid: after a minute the 5 s
    timer's runs are no longer on multiples of 5 s (a fixed grid would lock loops onto task
    durations that divide it)."""
    t = LoopTimers((5.0,), [5.0])
    loops = brute(t, 0.0, 1.0, 0.02, 120.0)
    runs = [s + 0.02 for s, before, after in loops if after != before]
    phases = [r % 5.0 for r in runs]
    assert max(phases) - min(phases) > 0.2


def cfg(**kw):
    base = dict(loop_timers=True, airflow_version="2.10", pool_metrics_interval=5.0, metrics_enabled=False,
                task_instance_heartbeat_timeout_detection_interval=10.0, trigger_timeout_check_interval=15.0,
                parsing_cleanup_interval=60.0, task_queued_timeout_check_interval=120.0,
                orphaned_tasks_check_interval=300.0)
    return SimpleNamespace(**{**base, **kw})


def test_the_timers_are_those_airflow_registers():
    assert intervals(cfg()) == (5.0, 10.0, 15.0, 60.0, 120.0, 300.0)
    # 3.3.2 registers pool metrics only with metrics or tracing on, and adds 30 s timers
    assert intervals(cfg(airflow_version="3.3")) == (10.0, 15.0, 30.0, 60.0, 120.0, 300.0)
    assert intervals(cfg(airflow_version="3.3", metrics_enabled=True))[0] == 5.0
    assert intervals(cfg(loop_timers=False)) == ()
