"""The scheduler's critical section and its limits, as plain objects (no SimPy environment)."""
import random

import pytest

from sim.airflow.critical_section import Concurrency, ScheduledTIs, executable_task_instances
from sim.model.dag import DAG
from sim.model.runtime import DagPlan, DagRun
from sim.model.states import TaskInstanceState as S
from sim.model.state_core import StateCore
from sim.model.stimuli import Stimulus

from reference_critical_section import reference_executable_task_instances  # tests/reference_critical_section.py


class Harness:
    """DAG runs whose task instances are all scheduled, and the counters the scheduler keeps."""

    def __init__(self, dags, pools=None, per_run=False, runs_per_dag=1):
        self.core = StateCore({"default_pool": 128, **(pools or {})}, per_run=per_run)
        self.conc = self.core.limits
        self.scheduled = []
        uid = 0
        for i, dag in enumerate(dags):
            plan = DagPlan(dag, i, 16, 16, 0.0)
            for r in range(runs_per_dag):
                run = DagRun(plan, r, due_at=float(r), created_at=0.0)
                uid = run.create_task_instances(uid, random.Random(0))
                for ti in run.tis:
                    self.core.transition(ti, S.SCHEDULED, 0.0, Stimulus.DEPENDENCIES_MET, "test")
                    ti.try_number = 1
                    ti.executor = "LocalExecutor"
                    self.scheduled.append(ti)
        self.scheduled.sort(key=lambda t: t.sort_key)

    def select(self, max_tis, executor_open=1000):
        return executable_task_instances(self.scheduled, max_tis, self.conc, {"LocalExecutor": executor_open})

    def queue(self, tis):
        for ti in tis:
            self.core.transition(ti, S.QUEUED, 0.0, Stimulus.CRITICAL_SECTION, "test")
        self.scheduled = [t for t in self.scheduled if t.state is S.SCHEDULED]


def flat_dag(dag_id, n, **task_kwargs):
    dag = DAG(dag_id, max_active_tasks=task_kwargs.pop("max_active_tasks", None))
    for i in range(n):
        dag.task(f"t{i:02d}", **task_kwargs)
    return dag


def test_max_tis_caps_one_loop():
    h = Harness([flat_dag("a", 40, )])
    accepted, _ = h.select(max_tis=16)
    assert len(accepted) == 16


def test_priority_order_then_logical_date():
    dag = flat_dag("a", 3)
    dag["t02"].priority_weight = 10
    h = Harness([dag], runs_per_dag=2)
    accepted, _ = h.select(max_tis=3)
    names = [(ti.task.task_id, ti.run.idx) for ti in accepted]
    assert names[0] == ("t02", 0) and names[1] == ("t02", 1)   # higher weight first, older run first


def test_pool_limits_and_pool_slots():
    h = Harness([flat_dag("a", 10, pool="small", pool_slots=2)], pools={"small": 5})
    accepted, starving = h.select(max_tis=16)
    assert len(accepted) == 2                     # 2 + 2 slots used, 1 left < pool_slots 2
    h.queue(accepted)
    assert h.conc.pool_open("small") == 1
    accepted, starving = h.select(max_tis=16)
    assert accepted == [] and any("fewer open slots" in str(v) for v in starving.values())


def test_max_active_tasks_counts_queued_and_running_across_runs_in_airflow_2():
    h = Harness([flat_dag("a", 10, max_active_tasks=3)], runs_per_dag=2)
    accepted, _ = h.select(max_tis=16)
    assert len(accepted) == 3
    h.queue(accepted)
    assert h.select(max_tis=16)[0] == []           # the DAG is starved over all its runs


def test_max_active_tasks_per_dag_run_in_airflow_3():
    h = Harness([flat_dag("a", 10, max_active_tasks=3)], runs_per_dag=2, per_run=True)
    accepted, _ = h.select(max_tis=16)
    assert len(accepted) == 6
    assert {ti.run.idx for ti in accepted} == {0, 1}


def test_executor_slots_bound_the_batch():
    h = Harness([flat_dag("a", 10)])
    accepted, _ = h.select(max_tis=16, executor_open=4)
    assert len(accepted) == 4


def test_starved_dag_does_not_block_another_when_requeried():
    """Airflow re-queries only when a batch accepted nothing and found new starvation: a DAG at its
    max_active_tasks filling the first batch must not block a second DAG (issue #21951's fix)."""
    a = flat_dag("a", 20, max_active_tasks=1)
    for t in a.tasks.values():
        t.priority_weight = 100
    h = Harness([a, flat_dag("b", 2)])
    first, _ = h.select(max_tis=4)
    h.queue(first)
    accepted, starving = h.select(max_tis=4)
    assert [ti.run.plan.dag_id for ti in accepted] == ["b", "b"]


def test_occupancy_released_on_terminal_state():
    h = Harness([flat_dag("a", 2, pool="p")], pools={"p": 2})
    accepted, _ = h.select(max_tis=2)
    h.queue(accepted)
    assert h.conc.pool_open("p") == 0
    ti = accepted[0]
    h.core.transition(ti, S.RUNNING, 1.0, Stimulus.TASK_STARTED, "test")
    assert h.conc.pool_open("p") == 0               # running still occupies
    h.core.transition(ti, S.SUCCESS, 2.0, Stimulus.TASK_OUTCOME, "test")
    assert h.conc.pool_open("p") == 1
    assert h.conc.dag_active[0] == 1


# -- the ScheduledTIs index (issue #13) -----------------------------------------------------------
def _random_harness(rng: random.Random, per_run: bool) -> Harness:
    dags = []
    for d in range(rng.randint(1, 4)):
        dag = DAG(f"d{d}", max_active_tasks=rng.choice([None, 1, 3, 8]))
        for i in range(rng.randint(1, 12)):
            dag.task(f"t{i:02d}", priority_weight=rng.choice([1, 1, 2, 10]),
                     pool=rng.choice(["default_pool", "default_pool", "p", "q"]),
                     pool_slots=rng.choice([1, 1, 2, 5]),
                     max_active_tis_per_dag=rng.choice([None, None, 1, 2]),
                     max_active_tis_per_dagrun=rng.choice([None, None, 1]))
        dags.append(dag)
    return Harness(dags, pools={"p": rng.choice([1, 3, 6]), "q": rng.choice([2, 4])}, per_run=per_run,
                   runs_per_dag=rng.randint(1, 4))


@pytest.mark.parametrize("per_run", [False, True])
def test_scheduled_index_selects_exactly_as_the_sorted_scan(per_run):
    """The index must choose the same task instances, in the same order, with the same starvation
    as the linear scan over the sorted list it replaced (tests/reference_critical_section.py),
    round after round as tries are queued, finish and free their limits."""
    rng = random.Random(13)
    rounds = 0
    for case in range(60):
        h = _random_harness(rng, per_run)
        index = ScheduledTIs(per_run)
        for ti in h.scheduled:
            index.add(ti)
        queued: list = []
        for _ in range(30):
            max_tis = rng.choice([1, 2, 4, 16, 64])
            ex_open = {"LocalExecutor": rng.choice([0, 1, 3, 1000])}
            want = reference_executable_task_instances(h.scheduled, max_tis, h.conc, dict(ex_open))
            got = executable_task_instances(index, max_tis, h.conc, dict(ex_open))
            assert got == want, (case, rounds)
            assert len(index) == len(h.scheduled) - len(got[0])
            h.queue(got[0])
            queued += got[0]
            rng.shuffle(queued)
            for ti in queued[:rng.randint(0, len(queued))]:  # some tries end and free their limits
                h.core.transition(ti, S.RUNNING, 1.0, Stimulus.TASK_STARTED, "test")
                h.core.transition(ti, S.SUCCESS, 2.0, Stimulus.TASK_OUTCOME, "test")
            queued = [ti for ti in queued if ti.state is S.QUEUED]
            rounds += 1
    assert rounds == 60 * 30


def test_a_starved_backlog_is_skipped_without_visiting_it(monkeypatch):
    """Wall cost must not grow with the backlog: 20,000 scheduled task instances of a DAG at its
    max_active_tasks are skipped as one group, and the other DAG's are found at once."""
    import sim.airflow.critical_section as cs
    big = flat_dag("big", 20_000, max_active_tasks=2)
    for t in big.tasks.values():
        t.priority_weight = 100
    h = Harness([big, flat_dag("small", 3)])
    index = ScheduledTIs(False)
    for ti in h.scheduled:
        index.add(ti)
    first, _ = executable_task_instances(index, 16, h.conc, {"LocalExecutor": 1000})
    assert [ti.run.plan.dag_id for ti in first] == ["big", "big"]
    h.queue(first)
    pops = []
    real = cs.heappop
    monkeypatch.setattr(cs, "heappop", lambda heap: pops.append(1) or real(heap))
    accepted, starving = executable_task_instances(index, 16, h.conc, {"LocalExecutor": 1000})
    assert [ti.run.plan.dag_id for ti in accepted] == ["small"] * 3
    assert len(pops) < 50                           # one batch of 16 found the starvation; not 20,000
    assert len(index) == 20_000 + 3 - 2 - 3
