"""Airflow's own older names for the settings the simulator has, read as the current names with a
note, so a user can paste a section of an Airflow 2.x ``airflow.cfg``.

Sources: Airflow 3's ``airflow config update`` table of renamed options (``CONFIGS_CHANGES`` in
``airflow/cli/commands/config_command.py``) and Airflow 2.x's ``deprecated_options``
(``airflow/configuration.py``). Only the renames onto a key of the ``airflow:`` section are listed.
"""
from __future__ import annotations

import warnings

from ..errors import ScenarioError, SimNote

#: old name -> the simulator's (Airflow's current) name, in the ``airflow:`` section
AIRFLOW_ALIASES = {
    "scheduler_zombie_task_threshold": "task_instance_heartbeat_timeout",            # [scheduler], 2.x
    "zombie_detection_interval": "task_instance_heartbeat_timeout_detection_interval",  # [scheduler], 2.x
    "processor_poll_interval": "scheduler_idle_sleep_time",                          # [scheduler]
    "stalled_task_timeout": "task_queued_timeout",                                   # [celery]
    "task_adoption_timeout": "task_queued_timeout",                                  # [celery]
    "worker_pods_pending_timeout": "task_queued_timeout",                            # [kubernetes_executor]
    "worker_pods_pending_timeout_check_interval": "task_queued_timeout_check_interval",  # [kubernetes_executor]
    "max_threads": "parsing_processes",                                              # [scheduler]
    "dag_concurrency": "max_active_tasks_per_dag",                                   # [core], before 2.2
    "non_pooled_task_slot_count": "default_pool_task_slot_count",                    # [core], before 1.10.4
    "default_capacity": "triggerer_capacity",                                        # [triggerer], 2.x
}


def _note(file, old: str, new: str) -> None:
    where = f"{file}: " if file else ""
    warnings.warn(f"{where}airflow.{old} is Airflow's older name for airflow.{new}; read as {new}",
                  SimNote, stacklevel=3)


def resolve_airflow_aliases(data: dict, file: str | None) -> None:
    """Rename, in place, every older name in ``data['airflow']`` to the current one."""
    section = data.get("airflow") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return
    for old in [k for k in section if k in AIRFLOW_ALIASES]:
        new = AIRFLOW_ALIASES[old]
        if new in section:
            raise ScenarioError(file, [(f"airflow.{old}", f"is Airflow's older name for airflow.{new}, "
                                                          f"which is given too: keep one")])
        section[new] = section.pop(old)
        _note(file, old, new)


def alias_of_set_key(key: str, file: str | None) -> str:
    """A ``--set`` key with an older Airflow name, as the current one."""
    parts = key.strip().split(".")
    if len(parts) == 2 and parts[0] == "airflow" and parts[1] in AIRFLOW_ALIASES:
        _note(file, parts[1], AIRFLOW_ALIASES[parts[1]])
        return f"airflow.{AIRFLOW_ALIASES[parts[1]]}"
    return key
