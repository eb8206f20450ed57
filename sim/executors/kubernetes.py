"""KubernetesExecutor (airflow-mechanics.md §2.4): a pod per task instance.

Queued task instances wait in the executor's own ``task_queue``; each ``sync()`` (once per
scheduler loop) first drains the watcher's results, then creates at most
``worker_pods_creation_batch_size`` pods, one API call each (serially, the scheduler waiting for
each, or concurrently with ``async_pod_creation``). A pod then goes through the start-up path, each
stage timed and recorded: API create -> kube-scheduler bind (a node with room for its requests,
or the cluster autoscaler adds one) -> image pull (skipped when the node has the image) -> init
containers (git-sync) -> container start -> Python and Airflow import plus DAG parsing -> the
task runs -> exit. The watcher reports the pod's end; the scheduler sees it on its next loop.
Requested pods occupy parallelism from the moment they are queued, as in Airflow.
"""
from __future__ import annotations

import math
from array import array
from collections import deque

import numpy as np
import pandas as pd

from ..engine import later, later_on
from ..model.states import FAILED, QUEUED, RUNNING, SUCCESS, UP_FOR_RETRY
from ..model.stimuli import POD_BOUND, POD_CREATED, POD_LOST
from ..records import coded_categorical, run_id_categorical
from .base import BaseExecutor, Machine

IMAGE = "apache/airflow"
#: The fields of a pod's row (KubernetesExecutor._rows), in order.
POD_COLUMNS = ["pod", "dag", "run", "task_id", "try_number", "node", "phase", "cold_pull", "created_at",
               "bound_at", "image_ready_at", "initialized_at", "container_started_at", "ended_at", "cpu", "memory"]
_NAN = math.nan
_POD_TIMES = ("created_at", "bound_at", "image_ready_at", "initialized_at", "container_started_at", "ended_at")


class PodRows:
    """The pods table, kept by column: a run of a million pods holds arrays of numbers, not a
    million tuples of float objects. Times not reached (None) are stored as NaN, which is what
    the DataFrame shows for them. Task ids, nodes, phases, cpu and memory requests repeat: each
    is kept as a 32-bit code into ``values`` (looked up by type and value, so that 1 and 1.0 stay
    apart and the column's dtype is what the values make it)."""

    __slots__ = ("pod", "dag", "run", "task_id", "try_number", "node", "phase", "cold_pull", "times",
                 "cpu", "memory", "values", "_codes", "t_created", "t_bound", "t_image", "t_initialized",
                 "t_container", "t_ended")

    def __init__(self):
        self.pod = []
        self.dag, self.run, self.try_number = array("i"), array("i"), array("i")
        self.task_id, self.node, self.phase, self.cpu, self.memory = (array("i") for _ in range(5))
        self.cold_pull = array("b")
        self.times = {name: array("d") for name in _POD_TIMES}
        # the same arrays by attribute, for append (in _POD_TIMES' order)
        (self.t_created, self.t_bound, self.t_image, self.t_initialized, self.t_container,
         self.t_ended) = self.times.values()
        self.values: list = []
        self._codes: dict = {}

    def __len__(self) -> int:
        return len(self.pod)

    def _code(self, v) -> int:
        key = (v.__class__, v)
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self.values)
            self.values.append(v)
        return code

    def append(self, pod, ti) -> None:
        code = self._code
        self.pod.append(pod.name)
        self.dag.append(ti.run.plan.index)
        self.run.append(ti.run.idx)
        self.task_id.append(code(ti.task.task_id))
        self.try_number.append(pod.try_number)
        self.node.append(code(pod.node.name if pod.node else ""))
        self.phase.append(code(pod.phase))
        self.cold_pull.append(bool(pod.pulled))
        t = pod.created_at
        self.t_created.append(_NAN if t is None else t)
        t = pod.bound_at
        self.t_bound.append(_NAN if t is None else t)
        t = pod.image_at
        self.t_image.append(_NAN if t is None else t)
        t = pod.initialized_at
        self.t_initialized.append(_NAN if t is None else t)
        t = pod.container_at
        self.t_container.append(_NAN if t is None else t)
        t = pod.ended_at
        self.t_ended.append(_NAN if t is None else t)
        self.cpu.append(code(pod.cpu))
        self.memory.append(code(pod.memory))

    def column(self, codes) -> list:
        """The values of a coded column (cpu, memory), as a list."""
        values = self.values
        return [values[c] for c in codes]

    def categorical(self, codes) -> pd.Categorical:
        """The values of a coded column of names (task_id, node, phase), as a categorical: a
        million pods hold a code each, as the task instances' columns do."""
        return coded_categorical(codes, self.values)

    def frame(self, release: bool = False) -> pd.DataFrame:
        """The pods table. With ``release`` (a run's results are built once, at its end) the rows
        are handed over: the frame uses the time arrays' memory as it is and the rows are emptied,
        so a long run does not hold its pods twice."""
        if not len(self):
            return pd.DataFrame(columns=POD_COLUMNS)
        col = self.column
        cat = self.categorical
        cols = {"pod": self.pod, "dag": np.array(self.dag, dtype=np.int64), "run": np.array(self.run, dtype=np.int64),
                "task_id": cat(self.task_id), "try_number": np.array(self.try_number, dtype=np.int64),
                "node": cat(self.node), "phase": cat(self.phase), "cold_pull": np.array(self.cold_pull, dtype=bool)}
        for name in _POD_TIMES:
            t = self.times[name]
            cols[name] = np.frombuffer(t, dtype=np.float64) if release else np.array(t, dtype=np.float64)
        cols["cpu"], cols["memory"] = col(self.cpu), col(self.memory)
        if release:
            self.__init__()
        return pd.DataFrame(cols, columns=POD_COLUMNS, copy=False)

    def cpu_seconds(self) -> float:
        """Core-seconds the pods requested while bound: sum of (ended - bound) x cpu."""
        used = 0.0
        bound, ended, values = self.times["bound_at"], self.times["ended_at"], self.values
        for b, e, c in zip(bound, ended, self.cpu):
            cpu = values[c]
            if b == b and e == e:
                used += (e - b) * cpu
        return used


def _created(pod) -> None:
    pod.created()


def _container_started(pod) -> None:
    pod._container_started(None)


_CREATED, _CONTAINER_STARTED = (_created,), (_container_started,)   # a pod's timer callbacks (only read)


class Pod:
    """One pod, and its own timer for the two steps of its start-up the executor and the kubelet
    wait for (created by the API server, then its container started): one is pending at a time,
    and neither needs a Wake and a closure per pod (sim.engine.later_on)."""

    __slots__ = ("ex", "name", "ti", "try_number", "cpu", "memory", "node", "proc", "cancelled",
                 "created_at", "bound_at", "image_at", "pulled", "initialized_at", "container_at",
                 "ended_at", "phase", "launch_failures", "row", "callbacks")
    _ok = True

    def __init__(self, ex, name, ti, try_number, cpu, memory, launch_failures=0):
        self.ex = ex
        self.name = name
        self.ti = ti
        self.try_number = try_number
        self.cpu = cpu
        self.memory = memory
        self.node = None
        self.proc = None
        self.cancelled = False
        self.created_at = self.bound_at = self.image_at = self.initialized_at = None
        self.container_at = self.ended_at = None
        self.pulled = False
        self.phase = "Pending"
        self.launch_failures = launch_failures

    # -- the start-up path ------------------------------------------------------------------------
    def created(self) -> None:
        self.created_at = self.ex.env.now
        self.ex.cluster.submit(self)

    def bind(self, node) -> None:
        ex = self.ex
        env = ex.env
        self.node = node
        self.bound_at = env.now + ex.cfg.bind_time
        ready, self.pulled = ex.cluster.image_ready_at(node, IMAGE, ex.cfg.image_size_mb, ex.cfg.pull_bandwidth_mb_s,
                                                       self.bound_at)
        self.image_at = max(self.bound_at, ready)
        self.initialized_at = self.image_at + ex.cfg.init_container_time
        self.container_at = self.initialized_at + ex.cfg.container_start_time
        ex.sim.state.event(self.bound_at, POD_BOUND, "pod bound to a node", self.ti, self.try_number, node.name)
        later_on(env, self.container_at - env.now, self, _CONTAINER_STARTED)

    def _container_started(self, _e) -> None:
        if self.cancelled or self.node is None or self.node.gone_at is not None:
            return
        ex = self.ex
        self.phase = "Running"
        self.proc = ex.sim.task_runner.start(self.ti, self.node.host, self.name, self._exited,
                                             try_number=self.try_number, startup=ex.cfg.airflow_boot_time)

    def _exited(self, proc, outcome) -> None:
        ex = self.ex
        self.proc = None          # (it holds this method: a cycle that only the collector would break)
        self.ended_at = ex.env.now
        self.phase = "Failed" if outcome in (FAILED, UP_FOR_RETRY) else "Succeeded"
        ex.cluster.release(self)
        ex.pod_finished(self, FAILED if self.phase == "Failed" else SUCCESS)

    def node_lost(self, why: str) -> None:
        """The node went away (spot interruption): the pod fails with it."""
        ex = self.ex
        now = ex.env.now
        started = (self.proc is not None and self.proc.alive and self.ti.state is RUNNING
                   and self.ti.try_number == self.try_number)
        if self.proc is not None:
            self.proc.alive = False
        self.cancelled = True
        self.ended_at = now
        self.phase = "Failed"
        ex.cluster.release(self)
        ex.sim.state.event(now, POD_LOST, f"pod lost: {why}", self.ti, self.try_number, self.name)
        if started:
            ex.sim.state.heartbeats_stopped(self.ti, now, why)
        ex.pod_finished(self, FAILED, launch_failed=not started)


class KubernetesExecutor(BaseExecutor):
    name = "KubernetesExecutor"

    def __init__(self, sim, parallelism: int, cfg, cluster):
        super().__init__(sim, parallelism)
        self.cfg = cfg
        self.cluster = cluster
        self.task_queue: deque = deque()      # (ti, try, launch failures) waiting for a pod
        self._results: list = []              # (pod, state) reported by the watcher
        self._pods: dict = {}                 # (ti, try) -> its live pod
        self._rows = PodRows()                # one row per pod once it ended (the pods table)
        self._n = 0
        self._pod_prefix: dict = {}   # task -> its pods' name up to the number (made once)
        self.cold_pulls = 0
        self.pods_deleted = 0
        self.pods_kept = 0

    def start(self) -> None:
        self.cluster.start()

    def has_pending_work(self) -> bool:
        return bool(self.queued_tasks or self.task_queue)   # pods still to create, a batch a loop

    def trigger_tasks(self, tis: list) -> float:
        for ti in tis:
            self.task_queue.append((ti, ti.try_number, 0))
        return 0.0

    def sync(self) -> float:
        # 1. the watcher's results; a finished pod is deleted with an API call (kept if it failed
        #    and delete_worker_pods_on_failure is off, or if delete_worker_pods is off)
        cost = 0.0
        cfg = self.cfg
        if self._results:
            results, self._results = self._results, []
            for pod, state in results:
                key = (pod.ti, pod.try_number)
                if cfg.delete_worker_pods and (state is SUCCESS or cfg.delete_worker_pods_on_failure):
                    cost += cfg.api_create_time
                    self.pods_deleted += 1
                else:
                    self.pods_kept += 1
                if key in self.running and self._pods.get(key) is pod:
                    del self._pods[key]
                    self.change_state(pod.ti, pod.try_number, state)
        # 2. create at most worker_pods_creation_batch_size pods
        # revoked entries leave the queue without taking a place in the batch
        while self.task_queue and (self.task_queue[0][0].state is not QUEUED
                                   or self.task_queue[0][0].try_number != self.task_queue[0][1]):
            self.task_queue.popleft()
        n = min(cfg.worker_pods_creation_batch_size, len(self.task_queue))
        if n <= 0:
            return cost
        env = self.env
        latency = cfg.api_create_time
        base = cost
        if cfg.async_pod_creation:
            width = cfg.pod_creation_max_concurrency or n
            rounds = -(-n // width)
            done = [base + latency * (i // width + 1) for i in range(n)]
            cost += rounds * latency
        else:
            done = [base + latency * (i + 1) for i in range(n)]
            cost += n * latency
        for i in range(n):
            ti, try_number, failures = self.task_queue.popleft()
            if ti.state is not QUEUED or ti.try_number != try_number:
                continue                     # revoked meanwhile (task_queued_timeout)
            self._n += 1
            task = ti.task
            prefix = self._pod_prefix.get(task)
            if prefix is None:
                prefix = self._pod_prefix[task] = f"{ti.run.plan.dag_id}-{task.task_id}-".lower().replace("_", "-")
            pod = Pod(self, prefix + str(self._n),
                      ti, try_number, cfg.default_cpu if task.cpu is None else task.cpu,
                      cfg.default_memory if task.memory is None else task.memory, failures)
            ti.launched_at = env.now + done[i]
            ti.worker = pod.name
            self._pods[(ti, try_number)] = pod
            self.sim.state.event(env.now + done[i], POD_CREATED, "pod created", ti, try_number, pod.name)
            later_on(env, done[i], pod, _CREATED)
        return cost

    def _record(self, pod: Pod) -> None:
        """Keep the pod's row, not the pod: a long run must not hold every pod in memory."""
        ti = pod.ti
        self.cold_pulls += pod.pulled
        end = pod.ended_at
        container = pod.container_at
        if end is not None and (container is None or container > end):
            # a pod lost or deleted before its container started never reached its planned stages
            # (the stages are in order: with its container started by its end, all of them were)
            for stage in ("bound_at", "image_at", "initialized_at", "container_at"):
                t = getattr(pod, stage)
                if t is not None and t > end:
                    setattr(pod, stage, float("nan"))
        self._rows.append(pod, ti)

    def pod_finished(self, pod: Pod, state, launch_failed: bool = False) -> None:
        """The watcher reports a pod's end after ``watcher_delay``; a pod that died before its
        task started is launched again (pod_launch_failure_retries) without using a task retry."""
        self._record(pod)
        cfg = self.cfg
        key = (pod.ti, pod.try_number)
        if launch_failed and pod.launch_failures < cfg.pod_launch_failure_retries and key in self.running \
                and pod.ti.state is QUEUED:
            self._pods.pop(key, None)
            self.task_queue.append((pod.ti, pod.try_number, pod.launch_failures + 1))
            self.sim.state.changed()
            return

        def report(_e=None):
            self._results.append((pod, state))
            self.sim.state.changed()
        if cfg.watcher_delay > 0:
            later(self.env, cfg.watcher_delay, report)
        else:
            report()

    def revoke(self, ti, try_number: int) -> None:
        super().revoke(ti, try_number)
        pod = self._pods.pop((ti, try_number), None)
        if pod is not None and pod.phase == "Pending":
            pod.cancelled = True
            pod.phase = "Deleted"
            pod.ended_at = self.env.now
            self.cluster.release(pod)
            self._record(pod)
        self.task_queue = deque(e for e in self.task_queue if not (e[0] is ti and e[1] == try_number))

    def machines(self, window: float) -> list:
        out = [Machine("Kubernetes control plane", window, fee_per_hour="kubernetes_control_plane_per_hour")]
        for node, life in self._node_lives(window):
            pool = node.pool
            out.append(Machine(f"nodes ({pool.name})", life, instance_type=pool.instance_type, spot=pool.spot,
                               fallback_price=pool.price_per_hour))
        return out

    def paid_capacity(self, window: float) -> float:
        paid = 0.0
        for node, life in self._node_lives(window):
            paid += node.pool.cores * life
        return paid

    def _node_lives(self, window: float):
        for node in self.cluster.all_nodes:
            end = node.gone_at if node.gone_at is not None else window
            yield node, max(0.0, end - node.created_at)

    def pod_usage(self) -> tuple[list, float]:
        return self._rows.pod, self._rows.cpu_seconds()

    def record_unfinished(self) -> None:
        """At the simulation's end: rows for the pods still alive (no ``ended_at``), e.g. the last
        task's pod between its task's end and its container's exit, so that every pod created is
        in the pods table."""
        for pod in self._pods.values():
            if pod.ended_at is None:
                self._record(pod)

    def pods_frame(self, plans, run_ids, release: bool = False):
        """One row per pod: where it ran and the time spent in each start-up stage (with
        ``release``, the rows are handed over: see :meth:`PodRows.frame`)."""
        df = self._rows.frame(release)
        dag, run = df["dag"].to_numpy(np.int64), df["run"].to_numpy(np.int64)
        df.insert(1, "dag_id", pd.Categorical.from_codes(dag, categories=[p.dag_id for p in plans]))
        df.insert(2, "run_id", run_id_categorical(dag, run, run_ids))
        df = df.drop(columns=["dag", "run"])
        df["scheduling_s"] = df["bound_at"] - df["created_at"]
        df["image_pull_s"] = df["image_ready_at"] - df["bound_at"]
        df["init_containers_s"] = df["initialized_at"] - df["image_ready_at"]
        df["container_start_s"] = df["container_started_at"] - df["initialized_at"]
        return df

    def stats(self) -> dict:
        peak: dict = {}
        for _, pool, n in self.cluster.node_log:
            peak[pool] = max(peak.get(pool, 0), n)
        return {"pods_created": self._n, "pods_deleted": self.pods_deleted, "pods_kept": self.pods_kept,
                "cold_image_pulls": self.cold_pulls,
                "nodes_added": self.cluster.scale_ups, "nodes_removed": self.cluster.scale_downs,
                "peak_nodes": peak}
