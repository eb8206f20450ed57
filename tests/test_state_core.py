"""The state core on its own, without SimPy: every allowed edge of the transition table does
what its handler says (state, the limits' counters, the schedulable count, the news), every other
pair is refused and changes nothing; DAG-run edges; the retry-or-fail decision; subscriptions."""
import math
import random

import pytest

from sim.model.dag import DAG, Sensor
from sim.model.durations import Constant
from sim.model.runtime import DagPlan, DagRun
from sim.model.state_core import SCHEDULABLE, STATE_CODE, StateCore, failure_outcome
from sim.model.states import (DAGRUN_TRANSITIONS, OCCUPYING, TI_TRANSITIONS, DagRunState as DR,
                              IllegalTransition, TaskInstanceState as S)
from sim.model.stimuli import EventKind, Stimulus


def _ti(state=S.NONE, retries=0, pool="default_pool", sensor=None):
    dag = DAG("d", None)
    dag.task("t", duration=1, retries=retries, pool=pool, retry_delay=30, sensor=sensor)
    run = DagRun(DagPlan(dag, 0, 16, 16, 0.0), 0, due_at=0.0, created_at=0.0)
    run.create_task_instances(0, random.Random(0))
    ti = run.tis[0]
    ti.state = state
    return ti


def _core(news=None):
    core = StateCore({"default_pool": 4})
    if news is not None:
        core.subscribe(transition=lambda *a: news.append(("transition", *a)),
                       try_ended=lambda *a: news.append(("try_ended", *a)))
    return core


EDGES = [(old, new) for old, targets in TI_TRANSITIONS.items() for new in sorted(targets, key=str)]
NOT_EDGES = [(old, new) for old in S for new in S if new not in TI_TRANSITIONS[old]]


@pytest.mark.parametrize("old,new", EDGES, ids=[f"{o}->{n}" for o, n in EDGES])
def test_every_allowed_edge(old, new):
    news = []
    core = _core(news)
    ti = _ti(old)
    if old in OCCUPYING:                    # the counters as they stood when it was queued
        core.limits.occupy(ti)
    used, sched, run_sched = core.limits.pool_used["default_pool"], core.schedulable_total, ti.run.n_schedulable
    core.transition(ti, new, 7.0, Stimulus.CRITICAL_SECTION, "why")
    assert ti.state is new
    assert core.limits.pool_used["default_pool"] - used == (new in OCCUPYING) - (old in OCCUPYING)
    assert core.limits.queue_active[ti.task.queue] == (new in OCCUPYING)
    assert ti.run.active == (new in OCCUPYING)
    delta = (new in SCHEDULABLE) - (old in SCHEDULABLE)
    assert core.schedulable_total - sched == delta and ti.run.n_schedulable - run_sched == delta
    assert news == [("transition", ti, STATE_CODE[old], STATE_CODE[new], 7.0, Stimulus.CRITICAL_SECTION, "why")]


@pytest.mark.parametrize("old,new", NOT_EDGES, ids=[f"{o}->{n}" for o, n in NOT_EDGES])
def test_every_other_pair_is_refused_and_changes_nothing(old, new):
    news = []
    core = _core(news)
    ti = _ti(old)
    with pytest.raises(IllegalTransition):
        core.transition(ti, new, 1.0, Stimulus.TASK_OUTCOME, "no")
    assert ti.state is old and news == [] and core.schedulable_total == 0
    assert core.limits.pool_used["default_pool"] == 0


def test_retry_or_fail_is_decided_once():
    assert failure_outcome(_ti(S.RUNNING, retries=1)) is S.UP_FOR_RETRY      # try 0 <= 1 retry
    ti = _ti(S.RUNNING, retries=1)
    ti.try_number = 2
    assert failure_outcome(ti) is S.FAILED


def test_end_try_sets_the_retry_time_and_tells_subscribers_after_the_change():
    news = []
    core = _core(news)
    ti = _ti(S.RUNNING, retries=2)
    ti.try_number = 1
    ti.ended_at = 100.0
    core.end_try(ti, failure_outcome(ti), 100.0, Stimulus.TASK_OUTCOME, "failed")
    assert ti.state is S.UP_FOR_RETRY and ti.next_retry_at == 130.0     # retry_delay 30
    assert [n[0] for n in news] == ["transition", "try_ended"] and news[1][1:] == (ti, S.UP_FOR_RETRY)


def test_end_try_of_a_reschedule_sensor_waits_a_poke_interval():
    core = _core()
    ti = _ti(S.RUNNING, sensor=Sensor(Constant(60), "reschedule", 20, 600))
    ti.ended_at = 5.0
    core.end_try(ti, S.UP_FOR_RESCHEDULE, 5.0, Stimulus.TASK_OUTCOME, "poke")
    assert ti.next_retry_at == 25.0


def test_a_success_has_no_retry_time():
    core = _core()
    ti = _ti(S.RUNNING)
    ti.ended_at = 5.0
    ti.next_retry_at = math.nan
    core.end_try(ti, S.SUCCESS, 5.0, Stimulus.TASK_OUTCOME, "ok")
    assert ti.next_retry_at != ti.next_retry_at


#: every pair but "back to queued", which no operation does (a run is created queued)
RUN_EDGES = [(old, new) for old in DR for new in DR if new is not DR.QUEUED]


@pytest.mark.parametrize("old,new", RUN_EDGES, ids=[f"{o}->{n}" for o, n in RUN_EDGES])
def test_dag_run_edges(old, new):
    ended = []
    core = StateCore()
    core.subscribe(run_ended=ended.append)
    ti = _ti()
    run = ti.run
    run.state = old
    allowed = new in DAGRUN_TRANSITIONS[old]
    if new is DR.RUNNING:
        call = lambda: core.start_run(run, 3.0)  # noqa: E731
    else:
        ti.state = S.SUCCESS if new is DR.SUCCESS else S.FAILED          # the leaf decides the verdict
        call = lambda: core.end_run(run, 9.0)  # noqa: E731
    if allowed:
        call()
        assert run.state is new
        assert ended == ([run] if new is not DR.RUNNING else [])
    else:
        with pytest.raises(IllegalTransition):
            call()
        assert run.state is old and ended == []


def test_subscribers_hear_in_order_and_unknown_news_is_refused():
    heard = []
    core = StateCore()
    core.subscribe(changed=lambda: heard.append("first"))
    core.subscribe(changed=lambda: heard.append("second"), event=lambda *a: heard.append(a[1]))
    core.changed()
    core.event(1.0, EventKind.PUBLISHED, "published", None, 0, "broker")
    assert heard == ["first", "second", EventKind.PUBLISHED]
    with pytest.raises(ValueError, match="no such news"):
        core.subscribe(rang=lambda: None)
