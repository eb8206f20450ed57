"""CeleryKubernetesExecutor (airflow-mechanics.md §2.5, Airflow 2.x): one executor to the
scheduler, two inside. A task whose ``queue`` is ``kubernetes_queue`` (default ``kubernetes``)
goes to the KubernetesExecutor, every other task to the CeleryExecutor. Both share the scheduler
and its limits; each keeps its own parallelism, as the real one does.
"""
from __future__ import annotations

from .base import BaseExecutor
from .celery_setup import build_celery
from .kubernetes_setup import build_kubernetes


class CeleryKubernetesExecutor(BaseExecutor):
    name = "CeleryKubernetesExecutor"

    def __init__(self, sim, celery, kubernetes, kubernetes_queue: str = "kubernetes"):
        super().__init__(sim, celery.parallelism + kubernetes.parallelism)
        self.celery = celery
        self.kubernetes = kubernetes
        self.kubernetes_queue = kubernetes_queue

    def _route(self, ti):
        return self.kubernetes if ti.task.queue == self.kubernetes_queue else self.celery

    @property
    def slots_occupied(self) -> int:
        return self.celery.slots_occupied + self.kubernetes.slots_occupied

    @property
    def slots_available(self) -> int:
        return self.celery.slots_available + self.kubernetes.slots_available

    @property
    def queued_tasks(self):                    # read by the idle check and the stuck-in-queued check
        return self.celery.queued_tasks | self.kubernetes.queued_tasks

    @queued_tasks.setter
    def queued_tasks(self, value):
        pass                                   # the parts keep their own

    @property
    def running(self):
        return self.celery.running | self.kubernetes.running

    @running.setter
    def running(self, value):
        pass

    @property
    def event_buffer(self):
        return self.celery.event_buffer + self.kubernetes.event_buffer

    @event_buffer.setter
    def event_buffer(self, value):
        pass

    def has_pending_work(self) -> bool:
        return self.celery.has_pending_work() or self.kubernetes.has_pending_work()

    def queue_workload(self, ti) -> None:
        self._route(ti).queue_workload(ti)

    def heartbeat(self) -> float:
        return self.celery.heartbeat() + self.kubernetes.heartbeat()

    def get_event_buffer(self) -> list:
        return self.celery.get_event_buffer() + self.kubernetes.get_event_buffer()

    def revoke(self, ti, try_number: int) -> None:
        self._route(ti).revoke(ti, try_number)

    def start(self) -> None:
        self.celery.start()
        self.kubernetes.start()

    def stats(self) -> dict:
        return {"celery": self.celery.stats(), "kubernetes": self.kubernetes.stats()}

    def parts(self) -> list:
        return [self.celery, self.kubernetes]

    def kubernetes_executors(self) -> list:
        return [self.kubernetes]

    @property
    def worker_count_log(self):
        return self.celery.worker_count_log


def build_celery_kubernetes(sim, settings: dict) -> CeleryKubernetesExecutor:
    return CeleryKubernetesExecutor(sim, build_celery(sim, settings), build_kubernetes(sim, settings),
                                    settings.get("kubernetes_queue", "kubernetes"))
