"""Build a KubernetesExecutor and its cluster from a scenario's ``executor:`` section: the
profile's ``kubernetes:`` settings then the scenario's, the node pools and the autoscaler."""
from __future__ import annotations

from ..airflow.config import KubernetesConfig, from_section
from ..infra.cluster import AUTOSCALERS, DEFAULT_NODE_POOLS, Cluster, NodePool
from .kubernetes import KubernetesExecutor


def kubernetes_config(settings: dict) -> KubernetesConfig:
    return from_section(KubernetesConfig, settings.get("kubernetes"))


def build_kubernetes(sim, settings: dict) -> KubernetesExecutor:
    cfg = kubernetes_config(settings)
    cl = settings.get("cluster") or {}
    pools = [NodePool(**p) for p in cl.get("node_pools") or DEFAULT_NODE_POOLS]
    auto = dict(AUTOSCALERS[cl.get("autoscaler", "cluster-autoscaler")])
    auto.update({k: v for k, v in (cl.get("autoscaler_settings") or {}).items() if v is not None})
    auto["instant"] = cfg.instant_nodes
    cluster = Cluster(sim.env, sim.state, sim.seed, sim.finished, pools, auto, cl.get("scoring", "least_allocated"))
    return KubernetesExecutor(sim, sim.executor_parallelism, cfg, cluster)
