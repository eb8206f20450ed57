"""The idle scheduler's loop starts under Airflow's loop timers (sim/airflow/idle_loops.py),
checked against the loop's own recurrence: each loop lasts `cost`, then sleeps
min(sleep, time to the next multiple of the timers)."""
import random

import pytest

from sim.airflow.idle_loops import grid, until_timer


def brute_starts(idle_end, sleep, cost, timers, horizon):
    starts, x = [], idle_end
    while True:
        s = x + min(sleep, until_timer(x, timers))
        if s > horizon:
            return starts
        starts.append(s)
        x = s + cost


@pytest.mark.parametrize("case", range(300))
def test_grid_matches_the_loop_recurrence(case):
    rng = random.Random(case)
    sleep = rng.choice([1.0, 0.5, 2.0, rng.uniform(0.1, 3.0)])
    cost = rng.choice([0.0005, 0.02, 0.3, rng.uniform(0.0, 1.0)])
    timers = rng.choice([5.0, 2.5, 10.0, rng.uniform(0.5, 12.0)])
    idle_end = rng.uniform(0.0, 100.0)
    g = grid(idle_end, sleep, cost, timers)
    starts = brute_starts(idle_end, sleep, cost, timers, idle_end + 200.0)
    assert g is not None
    ends = [(s + cost) % timers for s in starts]
    if any(e < 1e-6 or timers - e < 1e-6 for e in ends):
        return      # a loop ending on a timer's multiple: which side it falls is float rounding
    for _ in range(50):
        now = rng.uniform(idle_end, idle_end + 190.0)
        k, start, nxt = g.at(now)
        before = [s for s in starts if s <= now + 1e-9]
        if not before:
            assert k == -1 and start == pytest.approx(starts[0], abs=1e-6)
            continue
        assert k == len(before) - 1
        assert start == pytest.approx(before[-1], abs=1e-6)
        assert nxt == pytest.approx(starts[len(before)], abs=1e-6)


def test_a_loop_longer_than_the_room_before_a_timer_shifts_the_next_window():
    """Airflow 2.10 on 2 cores: loops of 0.613 s and a 1 s sleep; the fourth loop of a 5 s window
    is still running at the multiple, so the windows do not all start at a multiple."""
    g = grid(0.1, 1.0, 0.613, 5.0)
    assert g is not None and g.cycle > 5.0
    starts = brute_starts(0.1, 1.0, 0.613, 5.0, 200.0)
    for now in (17.3, 55.55, 123.4, 199.0):
        k, start, _ = g.at(now)
        assert start == pytest.approx(max(s for s in starts if s <= now), abs=1e-6)


def test_timers_move_the_phase_of_loops():
    """Without timers the loops are a rigid 1.02 s grid; with Airflow's 5 s pool-metrics timer the
    sleep before each multiple of 5 s is cut, so the phase of the grid moves every window."""
    g = grid(0.3, 1.0, 0.02, 5.0)
    phases = {round(g.at(t)[1] % 1.02, 3) for t in (7.0, 12.0, 17.0, 22.0)}
    assert len(phases) > 1
    assert grid(0.3, 1.0, 0.02, 0.0) is None
