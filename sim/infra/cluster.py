"""A Kubernetes cluster for pod-per-task execution (airflow-mechanics.md §2.4, §3 P12-P20):
node pools of one instance type each, the kube-scheduler binding pending pods to nodes with room
for their CPU and memory requests, kubelets pulling the worker image once per node, a cluster
autoscaler that adds nodes while pods are pending and removes nodes empty for
``scale_down_unneeded_time``, and spot nodes that get interrupted with a two-minute notice.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..engine import later
from ..model.rng import stream
from ..model.stimuli import EventKind as E
from .host import Host

#: Ready autoscaler profiles (P16-P19).
AUTOSCALERS = {
    # Cluster Autoscaler defaults: scan-interval 10 s, scale-down-unneeded-time 10 min,
    # scale-down-delay-after-add 10 min (P17); a new node on EKS in 3-5 min (P18).
    "cluster-autoscaler": {"scan_interval": 10.0, "provision_min": 180.0, "provision_max": 300.0,
                           "scale_down_unneeded_time": 600.0, "scale_down_delay_after_add": 600.0},
    # Karpenter-like: decides within a second or so, node Running in ~47 s (P19), < 60 s (P18),
    # empty nodes consolidated after 30 s (P19's consolidateAfter).
    "karpenter": {"scan_interval": 1.0, "provision_min": 40.0, "provision_max": 60.0,
                  "scale_down_unneeded_time": 30.0, "scale_down_delay_after_add": 0.0},
    "none": {"scan_interval": 0.0, "provision_min": 0.0, "provision_max": 0.0,
             "scale_down_unneeded_time": math.inf, "scale_down_delay_after_add": 0.0},
}
SPOT_NOTICE = 120.0  # the two-minute interruption notice (§4, AWS Spot)


@dataclass
class NodePool:
    """One node pool; its defaults are the scenario schema's and the deployment summary's too."""

    name: str
    instance_type: str = "m5.xlarge"
    cores: float = 4.0                 # allocatable CPU
    memory: float = 16384.0            # allocatable MiB
    price_per_hour: float = 0.192      # §4: m5.xlarge on-demand us-east-1
    spot: bool = False
    min_nodes: int = 0
    max_nodes: int = 10
    initial_nodes: int = 0
    interruptions_per_hour: float = 0.0   # per spot node


#: The node pool of a cluster a scenario does not describe.
DEFAULT_NODE_POOLS = ({"name": "default"},)


@dataclass
class Node:
    name: str
    pool: NodePool
    host: Host
    created_at: float
    ready_at: float
    cpu_free: float = 0.0
    mem_free: float = 0.0
    pods: dict = field(default_factory=dict)     # pod -> None: ordered, unlike a set of objects
    images: dict = field(default_factory=dict)   # image -> time it is (or will be) on the node
    pull_free_at: float = 0.0                   # kubelet pulls one image at a time
    ready: bool = False
    cordoned: bool = False
    gone_at: float | None = None
    empty_since: float = 0.0


class Cluster:
    def __init__(self, env, core, seed: int, finished, pools: list[NodePool], autoscaler: dict,
                 scoring: str = "least_allocated"):
        self.env = env
        self.core = core                  # the state core, told of spot interruptions
        self.finished = finished          # the simulation's end: the autoscaler stops
        self.pools = pools
        self.auto = autoscaler
        self.scoring = scoring
        self.nodes: list[Node] = []
        self.all_nodes: list[Node] = []
        self.pending: deque = deque()       # pods waiting for a node
        self._next = {p.name: 0 for p in pools}
        self._rng = stream(seed, "cluster")
        self.node_log: list = []            # (time, pool, nodes)
        self.scale_ups = 0
        self.scale_downs = 0
        self._last_add = -math.inf         # Cluster Autoscaler pauses scale-down cluster-wide
        self._scaling = False

    # -- nodes ------------------------------------------------------------------------------------
    def start(self) -> None:
        for pool in self.pools:
            for _ in range(max(pool.initial_nodes, pool.min_nodes)):
                self._add_node(pool, 0.0)
        if self.auto.get("scan_interval", 0) > 0:
            self.env.process(self._autoscaler())

    def _add_node(self, pool: NodePool, provision: float) -> Node:
        i = self._next[pool.name]
        self._next[pool.name] += 1
        now = self.env.now
        node = Node(f"{pool.name}-{i}", pool, Host(self.env, f"{pool.name}-{i}", pool.cores), now, now + provision,
                    cpu_free=pool.cores, mem_free=pool.memory)
        self.nodes.append(node)
        self.all_nodes.append(node)
        if provision > 0:
            later(self.env, provision, lambda _e: self._ready(node))
        else:
            self._ready(node)
        self._log(pool)
        return node

    def _ready(self, node: Node) -> None:
        if node.gone_at is not None:
            return
        node.ready = True
        node.empty_since = self.env.now
        if node.pool.spot and node.pool.interruptions_per_hour > 0:
            t = self._rng.expovariate(node.pool.interruptions_per_hour / 3600.0)
            later(self.env, t, lambda _e: self._interrupt(node))
        self.schedule_pending()

    def _remove_node(self, node: Node) -> None:
        node.gone_at = self.env.now
        if node in self.nodes:
            self.nodes.remove(node)
        self._log(node.pool)

    def _interrupt(self, node: Node) -> None:
        """Spot interruption: the two-minute notice cordons the node, then it goes with its pods."""
        if node.gone_at is not None:
            return
        node.cordoned = True
        self.core.event(self.env.now, E.SPOT_NOTICE, "spot interruption notice", None, 0, node.name)

        def terminate(_e):
            if node.gone_at is not None:
                return
            for pod in list(node.pods):
                pod.node_lost(f"spot node {node.name} interrupted")
            self._remove_node(node)
            self.schedule_pending()
        later(self.env, SPOT_NOTICE, terminate)

    def node_count(self, pool_name: str) -> int:
        return sum(1 for n in self.nodes if n.pool.name == pool_name)

    def _log(self, pool: NodePool) -> None:
        self.node_log.append((self.env.now, pool.name, self.node_count(pool.name)))

    # -- the kube-scheduler ---------------------------------------------------------------------
    def submit(self, pod) -> None:
        self.pending.append(pod)
        self.schedule_pending()

    def _fits(self, node: Node, pod) -> bool:
        return node.ready and not node.cordoned and node.cpu_free >= pod.cpu - 1e-9 and node.mem_free >= pod.memory - 1e-9

    def schedule_pending(self) -> None:
        """Bind pending pods in order to a node with room (NodeResourcesFit scoring)."""
        if not self.pending:
            return
        keep = deque()
        while self.pending:
            pod = self.pending.popleft()
            if pod.cancelled:
                continue
            nodes = [n for n in self.nodes if self._fits(n, pod)]
            if not nodes:
                keep.append(pod)
                continue
            if self.scoring == "most_allocated":
                node = min(nodes, key=lambda n: (n.cpu_free / n.pool.cores, n.name))
            else:                                    # least_allocated: the Kubernetes default
                node = max(nodes, key=lambda n: (n.cpu_free / n.pool.cores, n.name))
            node.cpu_free -= pod.cpu
            node.mem_free -= pod.memory
            node.pods[pod] = None
            pod.bind(node)
        self.pending = keep
        if keep and self.auto.get("instant") and not self._scaling:
            self._scale_up()                 # nodes that are ready at once bind the pods left

    def release(self, pod) -> None:
        node = pod.node
        if node is None or pod not in node.pods:
            return
        node.pods.pop(pod, None)
        node.cpu_free += pod.cpu
        node.mem_free += pod.memory
        if not node.pods:
            node.empty_since = self.env.now
        self.schedule_pending()

    def image_ready_at(self, node: Node, image: str, size_mb: float, bandwidth: float,
                       at: float) -> tuple[float, bool]:
        """When ``image`` is on ``node`` for a pod bound at ``at`` (pulling it then if needed);
        and whether this pod pulled it."""
        ready = node.images.get(image)
        if ready is not None:
            return ready, False
        pull = size_mb / bandwidth if bandwidth > 0 else 0.0
        start = max(at, node.pull_free_at)
        node.pull_free_at = node.images[image] = start + pull
        return start + pull, True

    # -- the cluster autoscaler ---------------------------------------------------------------------
    def _autoscaler(self):
        env = self.env
        a = self.auto
        finished = self.finished
        while not finished.triggered:
            yield env.timeout(a["scan_interval"])
            self._scale_up()
            self._scale_down()

    def _scale_up(self) -> None:
        """Add nodes for the pods no ready node can take, and no node on its way could take. With
        ``instant`` (the ideal profile's ``instant_nodes``) they are ready at once."""
        a = self.auto
        coming = [n for n in self.nodes if not n.ready]
        waiting = [p for p in self.pending if not p.cancelled]
        need: dict = {}
        room = [[n.pool.cores, n.pool.memory, n.pool] for n in coming]
        for pod in waiting:
            if any(self._fits(n, pod) for n in self.nodes):
                continue
            slot = next((r for r in room if r[0] >= pod.cpu and r[1] >= pod.memory), None)
            if slot is None:
                pool = next((p for p in self.pools if p.cores >= pod.cpu and p.memory >= pod.memory
                             and self.node_count(p.name) + need.get(p.name, 0) < p.max_nodes), None)
                if pool is None:
                    continue
                need[pool.name] = need.get(pool.name, 0) + 1
                slot = [pool.cores, pool.memory, pool]
                room.append(slot)
            slot[0] -= pod.cpu
            slot[1] -= pod.memory
        self._scaling = True                 # a node ready at once binds pods: no nested scale-up
        for pool in self.pools:
            for _ in range(need.get(pool.name, 0)):
                provision = 0.0 if a.get("instant") else self._rng.uniform(a["provision_min"], a["provision_max"])
                self.scale_ups += 1
                self._last_add = self.env.now
                self._add_node(pool, provision)
        self._scaling = False

    def _scale_down(self) -> None:
        """Remove empty nodes unneeded for long enough (bare pods block eviction, so only empty
        nodes go), not too soon after a scale-up, above the pool's minimum."""
        a = self.auto
        now = self.env.now
        for node in list(self.nodes):
            pool = node.pool
            if node.ready and not node.pods and now - node.empty_since >= a["scale_down_unneeded_time"] \
                    and now - self._last_add >= a["scale_down_delay_after_add"] \
                    and self.node_count(pool.name) > pool.min_nodes:
                self._remove_node(node)
                self.scale_downs += 1
