"""KEDA autoscaling of Celery workers, as the official Helm chart sets it up (P21, HK):

    desired = ceil((queued + running task instances on the pool's queues) / worker_concurrency)

polled every ``polling_interval`` seconds, clamped to [min_replicas, max_replicas]. KEDA hands the
number to a Horizontal Pod Autoscaler, which scales up at once and scales down to the highest
recommendation of the last ``scale_down_stabilization`` seconds (HPA's default window is 300 s);
KEDA's ``cooldown_period`` applies only to scaling to zero. A new worker needs
``worker_startup_time`` to come online. Scale-down either lets a worker finish its tasks (Celery's
warm shutdown within ``termination_grace_period``) or kills it with its tasks (the behaviour users
report, apache/airflow#26587, #32180), by ``scale_down: warm | kill``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

@dataclass
class KedaSettings:
    """Defaults with their sources (HV: the official Helm chart's values.yaml)."""

    min_replicas: int = 0                  # HV: minReplicaCount 0
    max_replicas: int = 10                 # HV: maxReplicaCount 10
    polling_interval: float = 5.0          # HV: pollingInterval 5 s
    cooldown_period: float = 30.0          # HV: cooldownPeriod 30 s (scale to zero only)
    scale_down_stabilization: float = 300.0  # Kubernetes HPA default downscale stabilization window
    scale_down: str = "warm"               # Celery warm shutdown on SIGTERM
    termination_grace_period: float = 600.0  # HV: workers terminationGracePeriodSeconds 600


class KedaAutoscaler:
    """KEDA scaling one worker pool's Deployment: it reads the queued + running counts per queue
    (``queue_counts``, kept by the state core) and adds or stops workers through the pool's
    owner (``add_worker(pool)``, ``live_workers(pool_name)``)."""

    def __init__(self, env, queue_counts, finished, pool, settings: KedaSettings, add_worker, live_workers):
        self.env = env
        self.queue_counts = queue_counts
        self.finished = finished
        self.add_worker = add_worker
        self.live_workers = live_workers
        self.pool = pool
        self.s = settings
        self._recent: deque = deque()       # (time, desired) within the stabilization window
        self._last_active = 0.0
        self.decisions: list = []           # (time, load, desired, replicas)

    def start(self) -> None:
        self.env.process(self._loop())

    def load(self) -> int:
        """COUNT of task instances queued or running on the pool's queues (the KEDA query)."""
        per_queue = self.queue_counts
        return sum(per_queue.get(q, 0) for q in self.pool.queues)

    def desired(self, load: int) -> int:
        want = math.ceil(load / self.pool.concurrency) if load > 0 else 0
        return max(self.s.min_replicas, min(self.s.max_replicas, want))

    def _loop(self):
        env = self.env
        finished = self.finished
        while not finished.triggered:
            now = env.now
            load = self.load()
            want = self.desired(load)
            if load > 0:
                self._last_active = now
            recent = self._recent
            recent.append((now, want))
            while recent and recent[0][0] < now - self.s.scale_down_stabilization:
                recent.popleft()
            live = self.live_workers(self.pool.name)
            current = len(live)
            if want > current:
                target = want
            else:
                # HPA scale-down stabilization: no lower than the highest recommendation of the
                # window, and never a scale-up from an old recommendation.
                target = min(current, max(w for _, w in recent))
                if target == 0 and now - self._last_active < self.s.cooldown_period:
                    target = min(current, 1)      # KEDA's cooldown delays only the step to zero
            if target > current:
                for _ in range(target - current):
                    self.add_worker(self.pool)
            elif target < current:
                # Kubernetes deletes the newest pods first.
                for w in sorted(live, key=lambda w: w.started_at, reverse=True)[:current - target]:
                    if self.s.scale_down == "kill":
                        w.crash("killed by scale-down")
                    else:
                        w.warm_shutdown(self.s.termination_grace_period)
            self.decisions.append((now, load, want, target))
            yield env.timeout(self.s.polling_interval)
