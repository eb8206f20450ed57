"""CeleryExecutor (airflow-mechanics.md §2.3), inside the scheduler process.

``trigger_tasks`` publishes each queued task instance to the broker queue named by its ``queue``
(``apply_async``), in parallel over ``sync_parallelism`` processes when there are several: the
scheduler waits for the sends. A send during a broker outage times out after
``operation_timeout``; the task instance stays queued to the executor and is sent again at the
next heartbeat, up to ``task_publish_max_retries`` times, after which it fails (as in CE).
``sync`` fetches the state of every running task from the result backend in one bulk round trip;
only then does the scheduler learn that a task ended and free its slot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..engine import later
from ..infra.autoscaler import KedaAutoscaler, KedaSettings
from ..infra.broker import Broker, Message
from ..infra.celery_worker import CeleryWorker
from ..infra.host import Host
from ..infra.result_backend import ResultBackend
from ..model.rng import stream
from ..model.states import FAILED, QUEUED, SUCCESS
from ..model.stimuli import PUBLISH_TIMED_OUT, RESULT_SEEN
from .base import BaseExecutor, Machine

#: the scheduler's event per Celery state read from the result backend (made once, not per task)
_SEEN = {state: f"scheduler saw {state} in the result backend" for state in ("SUCCESS", "FAILURE")}


@dataclass
class WorkerPool:
    """Workers started alike (one ``celery worker`` Deployment): queues, size, host, autoscaling."""

    name: str
    queues: list = field(default_factory=lambda: ["default"])
    replicas: int = 1
    concurrency: int = 16
    prefetch_multiplier: int = 1
    host_cores: float | None = None
    autoscaling: dict | None = None          # KEDA settings, see sim.infra.autoscaler
    crash_rate_per_hour: float = 0.0         # per worker, Poisson
    crash_at: tuple = ()                     # (time, worker index) pairs
    instance_type: str | None = None         # for cost; default: the catalogue's celery_worker


class CeleryExecutor(BaseExecutor):
    name = "CeleryExecutor"

    def __init__(self, sim, parallelism: int, cfg, pools: list[WorkerPool], outages=()):
        super().__init__(sim, parallelism)
        self.cfg = cfg
        self.broker = Broker(sim.env, sim.state, cfg.broker, cfg.delivery_time, cfg.visibility_timeout,
                             cfg.task_acks_late, outages)
        self.backend = ResultBackend(sim.env, sim.db, cfg.result_backend, cfg.redis_write_time, cfg.fetch_base,
                                     cfg.fetch_per_task, cfg.result_backend_connect_time)
        self.pools = pools
        self.workers: dict[str, list[CeleryWorker]] = {p.name: [] for p in pools}
        self._next_index = {p.name: 0 for p in pools}
        self._all_workers: dict[str, list[CeleryWorker]] = {}
        self._publish_tries: dict = {}
        self._task_ids: dict = {}            # (ti, try) -> Celery task id of its latest publish
        self._next_task_id = 0
        cores = sim.scheduler_host.cores
        self.send_processes = cfg.sync_parallelism or max(1, int(cores or 2) - 1)
        self.worker_count_log: list = []     # (time, pool, workers online or starting)
        self.publish_failures = 0

    # -- workers --------------------------------------------------------------------------------
    def start(self) -> None:
        for pool in self.pools:
            for _ in range(pool.replicas):
                self.add_worker(pool, startup=0.0)
            if pool.autoscaling is not None:
                KedaAutoscaler(self.env, self.sim.state.limits.queue_active, self.sim.finished, pool,
                               KedaSettings(**pool.autoscaling), self.add_worker, self.live_workers).start()
            if pool.crash_rate_per_hour > 0.0 or pool.crash_at:
                self.env.process(self._crashes(pool))

    def _crashes(self, pool):
        """Worker crashes: at set times (``crash_at``: [{at, worker}]) and at a Poisson rate per
        worker. A crashed worker of a fixed-size pool is replaced (its Deployment recreates the
        pod); an autoscaled pool gets it back from its autoscaler."""
        env = self.env
        finished = self.sim.finished
        rng = stream(self.sim.seed, f"failures/{pool.name}")
        planned = sorted((float(c["at"]), int(c.get("worker", 0))) for c in pool.crash_at)
        rate = pool.crash_rate_per_hour / 3600.0
        next_random = env.now + rng.expovariate(rate) if rate > 0 else math.inf
        while not finished.triggered:
            t = min(planned[0][0] if planned else math.inf, next_random)
            if t == math.inf:
                return
            yield env.timeout(max(0.0, t - env.now))
            live = [w for w in self.live_workers(pool.name) if w.state == "online"]
            if planned and planned[0][0] <= env.now:
                _, index = planned.pop(0)
                victim = next((w for w in live if w.name == f"{pool.name}-{index}"), None)
            else:
                victim = live[int(rng.random() * len(live))] if live else None
                # the pool's crashes: one Poisson stream per live worker, merged
                next_random = env.now + rng.expovariate(rate * max(1, len(live)))
            if victim is None:
                continue
            victim.crash("crashed")
            if pool.autoscaling is None:
                self.add_worker(pool)

    def add_worker(self, pool: WorkerPool, startup: float | None = None) -> CeleryWorker:
        index = self._next_index[pool.name]
        self._next_index[pool.name] += 1
        cores = pool.host_cores if pool.host_cores is not None else self.cfg.worker_host_cores
        name = f"{pool.name}-{index}"
        # A one-machine deployment: the worker's children share the scheduler's cores, as a
        # group of their own (the worker's session, Linux's autogroups: sim/infra/host.py).
        if self.cfg.workers_on_scheduler_host:
            host = self.sim.scheduler_host.group(f"celery worker {name}")
        else:
            host = Host(self.env, name, cores, autogroup=self.sim.overheads.host_autogroup, group=name)
        w = CeleryWorker(self.env, self.sim.state, self.sim.task_runner, self.broker, self.backend, pool, name,
                         host, self.worker_draining, self.worker_gone)
        w.preloaded = self.cfg.worker_preload_cpu / self.sim.overheads.cpu_speed    # CPU work: at the hosts' speed
        self.workers[pool.name].append(w)
        self._all_workers.setdefault(pool.name, []).append(w)
        delay = self.cfg.worker_startup_time if startup is None else startup
        if delay > 0.0:
            later(self.env, delay, lambda _e: w.go_online())
        else:
            w.go_online()
        self._log_count(pool)
        return w

    def worker_draining(self, worker: CeleryWorker) -> None:
        self._log_count(worker.pool)          # a draining worker no longer counts as a replica

    def worker_gone(self, worker: CeleryWorker) -> None:
        pool = worker.pool
        if worker in self.workers[pool.name]:
            self.workers[pool.name].remove(worker)
        self._log_count(pool)

    def machines(self, window: float) -> list:
        out = [Machine("broker", window, component="broker")]
        if self.cfg.result_backend == "redis":
            out.append(Machine("result backend", window, component="result_backend"))
        for pool, life in self._worker_lives(window):
            out.append(Machine(f"workers ({pool.name})", life, instance_type=pool.instance_type,
                               component="celery_worker"))
        return out

    def paid_capacity(self, window: float) -> float:
        paid = 0.0
        for pool, life in self._worker_lives(window):
            paid += pool.concurrency * life
        return paid

    def _worker_lives(self, window: float):
        """(pool, seconds alive) of every worker that ever started, pool by pool."""
        for pool_name, workers in self._all_workers.items():
            pool = next(p for p in self.pools if p.name == pool_name)
            for w in workers:
                end = w.stopped_at if w.stopped_at is not None else window
                yield pool, max(0.0, end - w.started_at)

    def stats(self) -> dict:
        peak: dict = {}
        for _, pool, n in self.worker_count_log:
            peak[pool] = max(peak.get(pool, 0), n)
        return {
            "messages_published": self.broker.published,
            "messages_redelivered": self.broker.redeliveries,
            "publish_failures": self.publish_failures,
            "result_backend_writes": self.backend.writes,
            "result_backend_fetches": self.backend.fetches,
            "peak_workers": peak,
            "worker_seconds": {p.name: round(self._worker_seconds(p.name), 3) for p in self.pools},
        }

    def _worker_seconds(self, pool_name: str) -> float:
        """Worker lifetime summed over the pool's workers (what a fixed or autoscaled pool costs)."""
        now = self.env.now
        total = 0.0
        for w in self._all_workers.get(pool_name, []):
            end = w.stopped_at if w.stopped_at is not None else now
            total += end - w.started_at
        return total

    def live_workers(self, pool_name: str) -> list[CeleryWorker]:
        return [w for w in self.workers[pool_name] if w.state in ("starting", "online")]

    def _log_count(self, pool) -> None:
        self.worker_count_log.append((self.env.now, pool.name, len(self.live_workers(pool.name))))

    # -- the executor contract --------------------------------------------------------------------
    def trigger_tasks(self, tis: list) -> float:
        env = self.env
        now = env.now
        n = len(tis)
        parallel = n > 1 and self.send_processes > 1
        rounds = math.ceil(n / min(n, self.send_processes)) if parallel else n
        down = self.broker.down_until(now) is not None
        per_send = self.cfg.operation_timeout if down else self.cfg.publish_time
        cost = (self.cfg.send_pool_startup if parallel else 0.0) + rounds * per_send
        if down:
            failed = []
            for ti in tis:
                tries = self._publish_tries.get(ti, 0) + 1
                self.sim.state.event(now, PUBLISH_TIMED_OUT, "publish timed out (broker down)", ti, ti.try_number, "scheduler")
                if tries <= self.cfg.task_publish_max_retries:
                    self.running.pop((ti, ti.try_number), None)
                    self._publish_tries[ti] = tries
                    self.queued_tasks[ti] = None     # sent again at the next heartbeat
                else:
                    self._publish_tries.pop(ti, None)
                    self.publish_failures += 1
                    failed.append((ti, ti.try_number))
            if failed:
                # The key stays in running until the sends have timed out (CE's fail(key) runs
                # after them): another scheduler sharing this executor must not take the slot.
                if cost > 0.0:
                    later(env, cost, lambda _e: self._publish_failed(failed))
                else:
                    self._publish_failed(failed)
            return cost
        msgs = []
        events = self.event_buffer
        for ti in tis:
            self._publish_tries.pop(ti, None)
            self._next_task_id += 1
            self._task_ids[(ti, ti.try_number)] = self._next_task_id
            msgs.append(Message(self._next_task_id, ti, ti.try_number, ti.task.queue, now + cost))
            # CeleryExecutor._process_tasks: event_buffer[key] = (QUEUED, the Celery task id), which
            # this loop's _process_executor_events stores as the try's external_executor_id.
            events.append((ti, ti.try_number, QUEUED))
        if cost > 0.0:
            later(env, cost, lambda _e: [self.broker.publish(m) for m in msgs])
        else:
            for m in msgs:
                self.broker.publish(m)
        return cost

    def _publish_failed(self, keys: list) -> None:
        now = self.env.now
        for ti, try_number in keys:
            if self.running.pop((ti, try_number), ...) is not ...:
                self.sim.state.slot_freed(ti, try_number, now)
                self.event_buffer.append((ti, try_number, FAILED))

    def revoke(self, ti, try_number: int) -> None:
        """``cleanup_stuck_queued_tasks``: revoke the Celery task (a worker receiving it discards
        it) and forget the key."""
        super().revoke(ti, try_number)
        task_id = self._task_ids.pop((ti, try_number), None)
        if task_id is not None:
            self.broker.revoked.add(task_id)

    def sync(self) -> float:
        ready, cost = self.backend.fetch_all(len(self.running))
        now = self.env.now
        for proc, celery_state, task_id in ready:
            key = (proc.ti, proc.try_number)
            if key not in self.running or self._task_ids.get(key) != task_id:
                continue                         # sync() only asks about each key's latest task id
            del self._task_ids[key]
            state = FAILED if celery_state == "FAILURE" else SUCCESS
            self.sim.state.event(now, RESULT_SEEN, _SEEN[celery_state], proc.ti, proc.try_number, "scheduler")
            self.change_state(proc.ti, proc.try_number, state)
        return cost
