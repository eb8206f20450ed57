"""Build a CeleryExecutor deployment from a scenario's ``executor:`` section: the Celery
settings (profile's ``celery:`` section, then the scenario's), the worker pools, their KEDA
autoscalers, crash schedules and broker outages."""
from __future__ import annotations

from ..airflow.config import CeleryConfig, from_section
from .celery import CeleryExecutor, WorkerPool


def celery_config(settings: dict) -> CeleryConfig:
    return from_section(CeleryConfig, settings.get("celery"))


def _default_pool(sim, settings: dict) -> dict:
    """No worker pools given: one worker listening to every queue the DAGs use (but the
    Kubernetes queue of a CeleryKubernetesExecutor)."""
    k8s = settings.get("kubernetes_queue") or "kubernetes" if "kubernetes" in settings else None
    queues = sorted({t.queue for d in sim.scenario.dags for t in d.tasks.values()} - {k8s}) or ["default"]
    return {"name": "worker", "replicas": 1, "queues": queues}


def _given(spec: dict, key: str, default):
    """The pool's own value, or the default when the key is absent or null."""
    value = spec.get(key)
    return default if value is None else value


def build_celery(sim, settings: dict) -> CeleryExecutor:
    cfg = celery_config(settings)
    pools = []
    for p in settings.get("worker_pools") or [_default_pool(sim, settings)]:
        auto = p.get("autoscaling")
        pools.append(WorkerPool(
            name=p["name"], queues=list(p.get("queues") or ["default"]),
            replicas=int(_given(p, "replicas", auto.get("min_replicas", 0) if auto else 1)),
            concurrency=int(_given(p, "concurrency", cfg.worker_concurrency)),
            prefetch_multiplier=int(_given(p, "prefetch_multiplier", cfg.worker_prefetch_multiplier)),
            host_cores=p.get("host_cores"), autoscaling=auto,
            crash_rate_per_hour=float(p.get("crash_rate_per_hour", 0.0)),
            crash_at=tuple(p.get("crash_at") or ()), instance_type=p.get("instance_type")))
    outages = [(o["start"], o["end"]) for o in settings.get("broker_outages") or []]
    return CeleryExecutor(sim, sim.executor_parallelism, cfg, pools, outages)
