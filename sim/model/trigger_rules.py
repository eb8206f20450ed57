"""Trigger rules as Airflow's ``TriggerRuleDep`` evaluates them (airflow-mechanics.md §1.7).

``decide`` looks at the counts of a task's finished upstream task instances and answers: not
yet decided (``None``), ready to be scheduled (``READY``), or a final state the scheduler sets
without running the task (``upstream_failed`` or ``skipped``). Airflow counts ``upstream_failed``
upstream as failed.
"""
from __future__ import annotations

from .states import TaskInstanceState as S

READY = "ready"


def decide(rule: str, n: int, success: int, failed: int, skipped: int):
    done = success + failed + skipped
    if rule == "all_success":
        if failed:
            return S.UPSTREAM_FAILED
        if skipped:
            return S.SKIPPED
        return READY if success == n else None
    if rule == "all_done":
        return READY if done == n else None
    if rule == "all_failed":
        if success or skipped:
            return S.SKIPPED
        return READY if failed == n else None
    if rule == "all_skipped":
        if success or failed:
            return S.SKIPPED
        return READY if skipped == n else None
    if rule == "one_success":
        if success:
            return READY
        if done == n:
            return S.SKIPPED if skipped == n else S.UPSTREAM_FAILED
        return None
    if rule == "one_failed":
        if failed:
            return READY
        return S.SKIPPED if done == n else None
    if rule == "one_done":
        if success or failed:
            return READY
        return S.SKIPPED if done == n else None
    if rule == "none_failed":
        if failed:
            return S.UPSTREAM_FAILED
        return READY if done == n else None
    if rule == "none_failed_min_one_success":
        if failed:
            return S.UPSTREAM_FAILED
        if done == n:
            return READY if success else S.SKIPPED
        return None
    if rule == "none_skipped":
        if skipped:
            return S.SKIPPED
        return READY if done == n else None
    if rule == "always":
        return READY
    raise ValueError(f"unknown trigger rule {rule!r}")
