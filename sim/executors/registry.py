"""Every executor kind, registered once: its scenario name, Airflow's class name, how it is built
from a scenario's ``executor:`` section, which keys of that section are its own, which profile
sections it reads, and in which Airflow versions it exists.

The scenario schema, the loader, the importers, the calibration inputs, the deployment summary
and the simulation all read this table, so adding an executor is its own module plus one
``register`` call below (docs/conventions.md shows a worked example).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .celery_setup import build_celery
from .hybrid import build_celery_kubernetes
from .kubernetes_setup import build_kubernetes
from .local import build_local


@dataclass(frozen=True)
class ExecutorKind:
    #: The name a scenario gives (``executor.kind``).
    kind: str
    #: Airflow's class name (``[core] executor``), which a task's ``executor`` may use too.
    class_name: str
    #: ``build(sim, settings) -> executor``: the executor with its infrastructure.
    build: Callable
    #: Keys of the scenario's ``executor:`` section that belong to this kind (besides ``kind``).
    settings_keys: tuple[str, ...] = ()
    #: Profile sections it reads (``celery``, ``kubernetes``), merged under the scenario's own.
    sections: tuple[str, ...] = ()
    #: The executors whose machines it runs on, as the deployment summary names them.
    runs_on: tuple[str, ...] = ()
    #: Tasks reach it through Celery queues (a queue no worker listens to is worth a warning).
    celery_queues: bool = False
    #: The first Airflow major version without it (None: still there).
    removed_in: int | None = None


EXECUTORS: dict[str, ExecutorKind] = {}


def register(kind: ExecutorKind) -> None:
    if kind.kind in EXECUTORS or kind.class_name in CLASS_TO_KIND:
        raise ValueError(f"executor {kind.kind!r} ({kind.class_name}) is registered already")
    EXECUTORS[kind.kind] = kind
    CLASS_TO_KIND[kind.class_name] = kind.kind


#: Airflow's class name -> the kind.
CLASS_TO_KIND: dict[str, str] = {}

_CELERY = ("celery", "worker_pools", "broker_outages")
_KUBE = ("kubernetes", "cluster")
register(ExecutorKind("local", "LocalExecutor", build_local, ("host_cores",), runs_on=("local",)))
register(ExecutorKind("celery", "CeleryExecutor", build_celery, _CELERY, ("celery",), ("celery",),
                      celery_queues=True))
register(ExecutorKind("kubernetes", "KubernetesExecutor", build_kubernetes, _KUBE, ("kubernetes",),
                      ("kubernetes",)))
# Airflow 3 removed the hybrid: several executors side by side replace it (AIP-61).
register(ExecutorKind("celery_kubernetes", "CeleryKubernetesExecutor", build_celery_kubernetes,
                      (*_CELERY, *_KUBE, "kubernetes_queue"), ("celery", "kubernetes"),
                      ("celery", "kubernetes"), celery_queues=True, removed_in=3))


def kind_of(name: str) -> str:
    """The kind a scenario name or an Airflow class name stands for (KeyError if neither)."""
    return name if name in EXECUTORS else CLASS_TO_KIND[name]


def names() -> tuple[str, ...]:
    """Every name a task's ``executor`` may take: the kinds, then Airflow's class names."""
    return tuple(EXECUTORS) + tuple(CLASS_TO_KIND)
