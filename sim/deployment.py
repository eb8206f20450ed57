"""What a scenario's executor runs on, in one line per executor, saying which parts the scenario
gave and which are defaults. ``sim compare`` sizes the executors a scenario does not describe (a
Celery scenario compared on Kubernetes gets a cluster scaled from zero), and that alone can move a
p95 by a factor of 70, so every result says what it was measured on."""
from __future__ import annotations

from .airflow.config import CeleryConfig, KubernetesConfig, from_section
from .executors.registry import EXECUTORS
from .infra.cluster import DEFAULT_NODE_POOLS, NodePool

DEFAULT = " [default: the scenario describes none]"


def _kinds(scenario) -> list[str]:
    kind = scenario.executor.kind
    kinds = list(kind) if isinstance(kind, (list, tuple)) else [kind]
    return [part for k in kinds for part in (EXECUTORS[k].runs_on if k in EXECUTORS else (k,))]


def _celery(scenario, settings: dict) -> str:
    cfg = from_section(CeleryConfig, settings.get("celery"))
    pools = settings.get("worker_pools")
    if not pools:
        queues = sorted({t.queue for d in scenario.dags for t in d.tasks.values()} - {"kubernetes"}) or ["default"]
        return (f"celery: 1 worker x concurrency {cfg.worker_concurrency}, queues {','.join(queues)}" + DEFAULT)
    parts = []
    for p in pools:
        auto = p.get("autoscaling")
        size = (f"{auto.get('min_replicas', 0)}-{auto.get('max_replicas')} workers (KEDA)" if auto
                else f"{p.get('replicas') if p.get('replicas') is not None else 1} worker(s)")
        conc = p.get("concurrency") or cfg.worker_concurrency
        parts.append(f"pool {p['name']}: {size} x concurrency {conc}, queues {','.join(p.get('queues') or ['default'])}")
    return "celery: " + "; ".join(parts)


def _kubernetes(settings: dict) -> str:
    cfg = from_section(KubernetesConfig, settings.get("kubernetes"))
    cluster = settings.get("cluster")
    pools = [NodePool(**p) for p in (cluster or {}).get("node_pools") or DEFAULT_NODE_POOLS]
    desc = "; ".join(
        f"node pool {p.name}: {p.min_nodes}-{p.max_nodes} x {p.instance_type}"
        f" ({p.cores:g} cores), {p.initial_nodes} at start" + (" (spot)" if p.spot else "")
        for p in pools)
    auto = "instant nodes" if cfg.instant_nodes else (cluster or {}).get("autoscaler", "cluster-autoscaler")
    return f"kubernetes: {desc}; autoscaler {auto}" + ("" if cluster else DEFAULT)


def describe(scenario) -> list[str]:
    """One line per executor of ``scenario``: the deployment it ran on."""
    settings = scenario.executor.settings or {}
    af = scenario.airflow
    lines = []
    for kind in _kinds(scenario):
        if kind == "local":
            host = settings.get("host_cores") or scenario.overheads.scheduler_host_cores
            lines.append(f"local: parallelism {af.parallelism} on the scheduler's host"
                         + (f" ({host:g} cores)" if host else " (cores unlimited)"))
        elif kind == "celery":
            lines.append(_celery(scenario, settings))
        elif kind == "kubernetes":
            lines.append(_kubernetes(settings))
        else:
            lines.append(kind)
    return lines
