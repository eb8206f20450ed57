"""The workload model without a running simulation: states, DAGs, trigger rules, schedules."""
import itertools
import random

import pytest

from sim.model.dag import DAG, TRIGGER_RULES, DagError, Task
from sim.model.durations import Constant, Empirical, Exponential, LogNormal, Uniform
from sim.model.schedules import At, Burst, Cron, Interval, Poisson
from sim.model.states import (DAGRUN_TRANSITIONS, TI_TRANSITIONS, DagRunState, IllegalTransition,
                              TaskInstanceState as S, check_dagrun_transition, check_ti_transition)
from sim.model.trigger_rules import READY, decide


# -- states ------------------------------------------------------------------------------------
def test_state_names_are_airflows():
    assert {s.value for s in S} >= {"scheduled", "queued", "running", "success", "failed", "up_for_retry",
                                    "up_for_reschedule", "deferred", "upstream_failed", "skipped",
                                    "removed", "restarting"}
    assert {s.value for s in DagRunState} == {"queued", "running", "success", "failed"}


def test_transition_table_covers_every_state_and_terminal_states_are_final():
    assert set(TI_TRANSITIONS) == set(S)
    for terminal in (S.SUCCESS, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED, S.REMOVED):
        assert TI_TRANSITIONS[terminal] == frozenset()
    assert set(DAGRUN_TRANSITIONS) == set(DagRunState)


@pytest.mark.parametrize("old,new", [(S.NONE, S.QUEUED), (S.NONE, S.RUNNING), (S.SUCCESS, S.RUNNING),
                                     (S.SCHEDULED, S.RUNNING), (S.QUEUED, S.DEFERRED),
                                     (S.UP_FOR_RETRY, S.QUEUED), (S.FAILED, S.SCHEDULED)])
def test_illegal_transitions_raise(old, new):
    with pytest.raises(IllegalTransition):
        check_ti_transition(old, new)


def test_legal_path_and_dagrun_transitions():
    path = [S.NONE, S.SCHEDULED, S.QUEUED, S.RUNNING, S.UP_FOR_RETRY, S.SCHEDULED, S.QUEUED, S.RUNNING, S.SUCCESS]
    for a, b in zip(path, path[1:]):
        check_ti_transition(a, b)
    check_dagrun_transition(DagRunState.QUEUED, DagRunState.RUNNING)
    with pytest.raises(IllegalTransition):
        check_dagrun_transition(DagRunState.SUCCESS, DagRunState.RUNNING)


# -- DAGs ----------------------------------------------------------------------------------------
def diamond():
    dag = DAG("d")
    for i, n in enumerate(["T1", "T2", "T3", "T4"]):
        dag.task(n, duration=i + 1)
    return dag


def test_dependency_text_and_python_syntax_agree():
    a = diamond()
    a.set_dependencies("T1 >> [T2, T3] >> T4")
    b = diamond()
    b["T1"] >> [b["T2"], b["T3"]] >> b["T4"]
    for dag in (a, b):
        assert [t.task_id for t in dag["T4"].upstream] == ["T2", "T3"]
        assert [t.task_id for t in dag["T1"].downstream] == ["T2", "T3"]
    c = diamond()
    c.set_dependencies("T4 << [T2, T3]\n# comment line\nT2 << T1; T3 << T1")
    assert {t.task_id for t in c["T4"].upstream} == {"T2", "T3"}
    assert [t.task_id for t in c.topological_order()][0] == "T1"


def test_list_on_the_left_of_bitshift():
    dag = diamond()
    [dag["T1"], dag["T2"]] >> dag["T4"]
    assert {t.task_id for t in dag["T4"].upstream} == {"T1", "T2"}


@pytest.mark.parametrize("text,msg", [("T1 >> T9", "unknown task 'T9'"), ("T1 >> T2 >> T1", "cycle"),
                                      ("T1 >>", "ends with an operator"), ("[T1, T2 >> T3", "unclosed"),
                                      ("T1 T2", "expected '>>'"), (">> T1", "expected a task name")])
def test_bad_dependencies(text, msg):
    with pytest.raises(DagError, match=msg):
        diamond().set_dependencies(text)


def test_priority_weights_follow_weight_rule():
    dag = diamond()
    dag.set_dependencies("T1 >> [T2, T3] >> T4")
    assert dag.priority_weights() == {"T1": 4, "T2": 2, "T3": 2, "T4": 1}      # downstream (default)
    for t in dag.tasks.values():
        t.weight_rule = "upstream"
    assert dag.priority_weights() == {"T1": 1, "T2": 2, "T3": 2, "T4": 4}
    for t in dag.tasks.values():
        t.weight_rule = "absolute"
        t.priority_weight = 7
    assert set(dag.priority_weights().values()) == {7}


def test_critical_path_and_work():
    dag = diamond()
    dag.set_dependencies("T1 >> [T2, T3] >> T4")
    assert dag.critical_path() == 1 + 3 + 4
    assert dag.total_work() == 10


def test_task_validation():
    with pytest.raises(DagError, match="trigger_rule"):
        Task("x", trigger_rule="sometimes")
    with pytest.raises(DagError, match="failure_probability"):
        Task("x", failure_probability=2)


# -- trigger rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("rule,counts,expected", [
    ("all_success", (2, 2, 0, 0), READY), ("all_success", (2, 1, 0, 0), None),
    ("all_success", (2, 1, 1, 0), S.UPSTREAM_FAILED), ("all_success", (2, 1, 0, 1), S.SKIPPED),
    ("all_done", (2, 1, 1, 0), READY), ("all_done", (2, 1, 0, 0), None),
    ("one_success", (3, 1, 0, 0), READY), ("one_success", (2, 0, 2, 0), S.UPSTREAM_FAILED),
    ("one_success", (2, 0, 0, 2), S.SKIPPED),
    ("one_failed", (3, 0, 1, 0), READY), ("one_failed", (2, 2, 0, 0), S.SKIPPED),
    ("none_failed", (2, 1, 0, 1), READY), ("none_failed", (2, 1, 1, 0), S.UPSTREAM_FAILED),
    ("all_failed", (2, 0, 2, 0), READY), ("all_failed", (2, 1, 0, 0), S.SKIPPED),
    ("none_failed_min_one_success", (2, 0, 0, 2), S.SKIPPED),
    ("none_skipped", (2, 1, 1, 0), READY), ("always", (2, 0, 0, 0), READY),
])
def test_trigger_rules(rule, counts, expected):
    assert decide(rule, *counts) == expected


# -- durations and schedules ---------------------------------------------------------------------
def test_distributions_have_the_stated_means():
    rng = random.Random(3)
    for d in (Constant(5), Exponential(10), LogNormal(10, 0.5), Uniform(2, 4), Empirical((1, 2, 6))):
        xs = [d.sample(rng) for _ in range(40000)]
        assert min(xs) >= 0
        assert abs(sum(xs) / len(xs) - d.mean) < 0.03 * d.mean + 1e-9
    with pytest.raises(ValueError):
        Constant(-1)
    with pytest.raises(ValueError):
        Uniform(3, 1)


def test_schedules():
    assert list(Interval(600).times(1800, None)) == [600, 1200, 1800]
    assert list(Cron("0 * * * *").times(3 * 3600, None)) == [3600, 7200, 10800]
    assert list(At((90, 0)).times(100, None)) == [0, 90]
    assert list(Burst(3, 5).times(10, None)) == [5, 5, 5]
    rng = random.Random(1)
    times = list(Poisson(3600).times(10000, rng))
    assert abs(len(times) - 10000) < 400 and times == sorted(times)


def _airflow_trigger_rule(rule, n, success, failed, skipped, upstream_failed):
    """Airflow 2.10's ``TriggerRuleDep._evaluate_direct_relatives`` transcribed branch by branch
    (airflow/ti_deps/deps/trigger_rule_dep.py, flag_upstream_failed=True): the state the rule
    sets wins; else the task is ready if the rule passes, else it waits."""
    done = success + failed + skipped + upstream_failed
    upstream_done = done >= n
    new_state = None
    if rule == "all_success":
        if upstream_failed or failed:
            new_state = S.UPSTREAM_FAILED
        elif skipped:
            new_state = S.SKIPPED
    elif rule == "all_failed":
        if success or skipped:
            new_state = S.SKIPPED
    elif rule == "one_success":
        if upstream_done and done == skipped:
            new_state = S.SKIPPED
        elif upstream_done and success <= 0:
            new_state = S.UPSTREAM_FAILED
    elif rule == "one_failed":
        if upstream_done and not (failed or upstream_failed):
            new_state = S.SKIPPED
    elif rule == "one_done":
        if upstream_done and not (failed or success):
            new_state = S.SKIPPED
    elif rule in ("none_failed", "none_failed_min_one_success"):
        if upstream_failed or failed:
            new_state = S.UPSTREAM_FAILED
        elif rule == "none_failed_min_one_success" and skipped == n:
            new_state = S.SKIPPED
    elif rule == "none_skipped":
        if skipped:
            new_state = S.SKIPPED
    elif rule == "all_skipped":
        if success or failed or upstream_failed:
            new_state = S.SKIPPED
    if new_state is not None:
        return new_state
    passes = {
        "one_success": success > 0,
        "one_failed": bool(failed or upstream_failed),
        "one_done": success + failed > 0,
        "all_success": n - success <= 0,
        "all_failed": n - failed - upstream_failed <= 0,
        "all_done": upstream_done,
        "none_failed": n - success - skipped <= 0,
        "none_failed_min_one_success": n - success - skipped <= 0,
        "none_skipped": upstream_done and not skipped,
        "all_skipped": n - skipped <= 0,
        "always": True,
    }[rule]
    return READY if passes else None


@pytest.mark.parametrize("rule", sorted(TRIGGER_RULES))
def test_every_trigger_rule_matches_airflow_on_every_upstream_mix(rule):
    """Every split of up to 3 upstream tasks into success / failed / skipped / upstream_failed /
    unfinished gives Airflow's answer (issue #12: one_done ran on an upstream_failed upstream)."""
    for n in range(1, 4):
        for success, failed, skipped, ufailed in itertools.product(range(n + 1), repeat=4):
            if success + failed + skipped + ufailed > n:
                continue
            want = _airflow_trigger_rule(rule, n, success, failed, skipped, ufailed)
            assert decide(rule, n, success, failed, skipped, ufailed) == want, \
                (rule, n, success, failed, skipped, ufailed)


def test_one_done_skips_when_its_only_upstream_is_upstream_failed():
    assert decide("one_done", 1, 0, 0, 0, 1) is S.SKIPPED
    assert decide("one_done", 1, 0, 1, 0, 0) == READY


@pytest.mark.parametrize("shape", [0.5, 1.0, 1.0001, 2.5, 100.0, 1e4])
def test_gamma_sampler_draws_exactly_what_the_stdlib_draws(shape):
    from sim.model.rng import gamma_sampler
    ours, theirs = random.Random(7), random.Random(7)
    draw = gamma_sampler(ours, shape, 1.0 / shape)
    assert [draw() for _ in range(5000)] == [theirs.gammavariate(shape, 1.0 / shape) for _ in range(5000)]
    assert ours.random() == theirs.random()          # and leaves the stream at the same place
