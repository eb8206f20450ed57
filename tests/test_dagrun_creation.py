"""The scheduler's creation of scheduled DAG runs (sim/airflow/dagrun_creation.py): one run a DAG
a loop, at most max_dagruns_to_create_per_loop DAGs, blocked at max_active_runs, and the
``next_dagrun`` pointer sent back by each run's end (Airflow 2.10.5 scheduler_job_runner.py
``_create_dag_runs``, ``_schedule_dag_run``; measured in data/airflow-runs/catchup)."""
import random

import pytest

from sim.airflow.dagrun_creation import RunCreation
from sim.model.schedules import CatchUp, Cron, Interval


class Loops:
    """RunCreation driven as the scheduler drives it, without SimPy: ``loop()`` is one loop's
    ``_create_dag_runs``; ``end(index, number)`` a run's end."""

    def __init__(self, dags: dict, limit: int = 10):
        self.rc = RunCreation(limit)
        self.active = [0] * len(dags)
        self.made: list = []            # (loop, dag index, run number, due)
        self.numbers = [0] * len(dags)
        self.loops = 0
        self.max_active = {}
        for i, (times, max_active) in dags.items():
            self.max_active[i] = max_active
            self.rc.add(i, iter(times), max_active)

    def _make(self, i, due):
        self.made.append((self.loops, i, self.numbers[i], due))
        self.numbers[i] += 1
        self.active[i] += 1

    def loop(self, now: float = 0.0) -> int:
        made, _, _ = self.rc.create(now, self.active, self._make)
        self.loops += 1
        return made

    def end(self, i: int, number: int) -> None:
        self.active[i] -= 1
        self.rc.run_ended(i, number, self.active[i])


def test_a_dag_with_many_intervals_due_makes_one_run_a_loop():
    lp = Loops({0: ([0.0] * 5, 16)})
    assert [lp.loop() for _ in range(6)] == [1, 1, 1, 1, 1, 0]
    assert [n for _, _, n, _ in lp.made] == [0, 1, 2, 3, 4]


def test_at_most_max_dagruns_to_create_per_loop_dags_a_loop_earliest_due_first():
    lp = Loops({i: ([float(i)], 16) for i in range(12)}, limit=10)
    assert lp.loop(now=20.0) == 10 and lp.loop(now=20.0) == 2
    assert [i for _, i, _, _ in lp.made] == list(range(12))


def test_a_dag_at_max_active_runs_makes_no_more_until_one_ends():
    lp = Loops({0: ([0.0] * 6, 3)})
    assert [lp.loop() for _ in range(4)] == [1, 1, 1, 0]
    assert lp.rc.live == 0                      # blocked: next_dagrun_create_after is None
    lp.end(0, 2)                                # the newest ended: the next interval is not made yet
    assert lp.loop() == 1 and lp.made[-1][2] == 3


def test_a_runs_end_points_next_dagrun_back_and_the_loops_walk_it_past_the_runs_that_exist():
    """max_active_runs 3, six intervals due: runs 0-2 made, then blocked. Run 0 ends: next_dagrun
    goes to run 1's interval, which exists; one loop moves it to 2, the next to 3, the next
    makes run 3. Another end meanwhile sends it back again."""
    lp = Loops({0: ([0.0] * 6, 3)})
    for _ in range(3):
        lp.loop()
    lp.end(0, 0)
    assert [lp.loop() for _ in range(3)] == [0, 0, 1]
    lp.end(0, 1)                               # active 2: pointer to run 2's interval
    assert lp.loop() == 0                      # 2 -> 3
    lp.end(0, 2)                               # back to run 3's interval
    assert [lp.loop() for _ in range(2)] == [0, 1]
    assert [n for _, _, n, _ in lp.made] == [0, 1, 2, 3, 4]


def test_an_end_at_max_active_runs_keeps_the_dag_blocked():
    lp = Loops({0: ([0.0] * 6, 2)})
    lp.loop(), lp.loop()
    lp.active[0] += 1                           # a third active run (triggered by hand, say)
    lp.end(0, 0)                                # leaves 2 active, max 2
    assert lp.loop() == 0 and lp.rc.live == 0


def test_the_pointer_waits_for_a_future_interval_and_the_last_run_is_reported():
    rc = RunCreation(10)
    rc.add(0, iter([0.0, 60.0]), 16)
    active = [0]
    made, last, wake = rc.create(0.0, active, lambda i, due: active.__setitem__(i, active[i] + 1))
    assert (made, last, wake) == (1, [], [60.0])
    made, last, wake = rc.create(30.0, active, lambda *a: None)
    assert made == 0
    made, last, wake = rc.create(60.0, active, lambda i, due: active.__setitem__(i, active[i] + 1))
    assert (made, last, wake) == (1, [0], []) and rc.live == 0
    assert rc.run_ended(0, 0, 1) is None        # all made: nothing to point at


def test_catch_up_times_and_logical_dates():
    rng = random.Random(0)
    c = CatchUp(Interval(60.0), 3)
    times = list(c.times(150.0, rng))
    assert times == [0.0, 0.0, 0.0, 60.0, 120.0]
    assert [c.logical_date(t, n) for n, t in enumerate(times)] == [-180.0, -120.0, -60.0, 0.0, 60.0]
    hourly = CatchUp(Cron("0 * * * *"), 2)
    assert list(hourly.times(3600.0, rng)) == [0.0, 0.0, 3600.0]
    assert [hourly.logical_date(t, n) for n, t in enumerate([0.0, 0.0, 3600.0])] == [-7200.0, -3600.0, 0.0]
    with pytest.raises(ValueError):
        CatchUp(Interval(60.0), 0)


@pytest.mark.parametrize("value, schedule, why", [
    (0, {"every": "1h"}, "must be >= 1"),
    ("abc", {"every": "1h"}, "expected an integer"),
    (10 ** 11, {"every": "1h"}, "must be <= 10000000"),
    (4, {"burst": {"runs": 3}}, "needs an `every` or `cron` schedule"),
])
def test_catchup_runs_refuses_what_it_cannot_mean(value, schedule, why):
    from sim import ScenarioError, scenario_from_dict
    doc = {"name": "t", "horizon": "1h",
           "dags": [{"dag_id": "d", "schedule": schedule, "catchup_runs": value, "tasks": {"a": {"duration": "1s"}}}]}
    with pytest.raises(ScenarioError, match="catchup_runs") as e:
        scenario_from_dict(doc)
    assert why in str(e.value) and "dags[0]" in str(e.value)


def test_a_scenarios_catch_up_runs_are_scheduled_runs_of_past_intervals():
    from sim import run, scenario_from_dict
    doc = {"name": "t", "horizon": "30m", "seed": 1,
           "dags": [{"dag_id": "d", "schedule": {"every": "10m"}, "catchup_runs": 3, "max_active_runs": 2,
                     "tasks": {"a": {"duration": "5s"}}}]}
    runs = run(scenario_from_dict(doc)).dag_runs.sort_values("created_at")
    assert list(runs["run_id"][:4]) == ["scheduled__2024-12-31T23:30:00+00:00", "scheduled__2024-12-31T23:40:00+00:00",
                                        "scheduled__2024-12-31T23:50:00+00:00", "scheduled__2025-01-01T00:00:00+00:00"]
    assert list(runs["due_at"]) == [0.0, 0.0, 0.0, 600.0, 1200.0, 1800.0]
    # two at once (max_active_runs 2), one a loop: the third waits for an end
    first, second, third = runs["created_at"][:3]
    assert first < second < third and third >= runs["ended_at"].iloc[0]
