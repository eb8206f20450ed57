"""Trigger rules as Airflow's ``TriggerRuleDep`` evaluates them (airflow-mechanics.md §1.7).

``decide`` looks at the counts of a task's finished upstream task instances and answers: not
yet decided (``None``), ready to be scheduled (``READY``), or a final state the scheduler sets
without running the task (``upstream_failed`` or ``skipped``).

It follows ``_evaluate_direct_relatives`` in Airflow 2.10's
``airflow/ti_deps/deps/trigger_rule_dep.py`` with ``flag_upstream_failed`` (the scheduler's
case): first the state the rule sets, then whether the rule passes. As there, ``failed`` counts
only upstream tasks in ``failed``; ``upstream_failed`` is counted apart (``_UpstreamTIStates``),
and rules treat the two differently (``one_done`` runs on a ``failed`` upstream, not on an
``upstream_failed`` one). ``done`` is every finished upstream. Setup/teardown rules
(``all_done_setup_success``) are not modelled.
"""
from __future__ import annotations

from .states import SKIPPED, UPSTREAM_FAILED

READY = "ready"


def decide(rule: str, n: int, success: int, failed: int, skipped: int, upstream_failed: int = 0):
    done = success + failed + skipped + upstream_failed
    upstream_done = done >= n
    any_failed = failed + upstream_failed
    if rule == "all_success":
        if any_failed:
            return UPSTREAM_FAILED
        if skipped:
            return SKIPPED
        return READY if success == n else None
    if rule == "all_done":
        return READY if upstream_done else None
    if rule == "all_failed":
        if success or skipped:
            return SKIPPED
        return READY if any_failed == n else None
    if rule == "all_skipped":
        if success or any_failed:
            return SKIPPED
        return READY if skipped == n else None
    if rule == "one_success":
        if success:
            return READY
        if upstream_done:
            return SKIPPED if skipped == done else UPSTREAM_FAILED
        return None
    if rule == "one_failed":
        if any_failed:
            return READY
        return SKIPPED if upstream_done else None
    if rule == "one_done":
        if success or failed:                # upstream_failed is not "done" for this rule
            return READY
        return SKIPPED if upstream_done else None
    if rule == "none_failed":
        if any_failed:
            return UPSTREAM_FAILED
        return READY if success + skipped == n else None
    if rule == "none_failed_min_one_success":
        if any_failed:
            return UPSTREAM_FAILED
        if skipped == n:
            return SKIPPED
        return READY if success + skipped == n else None
    if rule == "none_skipped":
        if skipped:
            return SKIPPED
        return READY if upstream_done else None
    if rule == "always":
        return READY
    raise ValueError(f"unknown trigger rule {rule!r}")
