"""Celery's result backend (airflow-mechanics.md §2.3): workers write each task's Celery state;
the CeleryExecutor's ``sync()`` fetches the states of all its running tasks once per scheduler
loop, in one bulk round trip whose cost grows with their number (BulkStateFetcher).

Flavour ``database`` is the metadata DB itself (Airflow's default when ``result_backend`` is
unset), so its writes and fetches queue for the same connections as the scheduler's queries;
flavour ``redis`` is a separate store with its own latency.
"""
from __future__ import annotations


class ResultBackend:
    def __init__(self, env, db, flavour: str, redis_write_time: float, fetch_base: float, fetch_per_task: float,
                 connect_time: float = 0.0):
        if flavour not in ("database", "redis"):
            raise ValueError(f"result backend flavour must be database or redis, got {flavour!r}")
        self.env = env
        self.db = db                      # the metadata DB: the `database` backend's home
        self.flavour = flavour
        self.redis_write_time = redis_write_time
        self.fetch_base = fetch_base
        self.fetch_per_task = fetch_per_task
        #: the database backend: each of the scheduler's fetches opens a connection first (CeleryConfig)
        self.connect_time = connect_time
        self._ready: list = []       # (process, celery state, row) written, not yet fetched
        self.writes = 0
        self.fetches = 0

    def write_time(self) -> float:
        """Time a worker spends storing a task's state."""
        self.writes += 1
        if self.flavour == "database":
            return self.db.book(1)
        return self.redis_write_time

    def store(self, item) -> None:
        self._ready.append(item)

    def fetch_all(self, n_running: int) -> tuple[list, float]:
        """``sync()``'s bulk fetch: every stored result, and the scheduler time it took."""
        if n_running <= 0 and not self._ready:
            return [], 0.0
        self.fetches += 1
        if self.flavour == "database":
            cost = self.connect_time + self.db.book(1, at=self.env.now + self.connect_time) \
                + self.fetch_per_task * n_running
        else:
            cost = self.fetch_base + self.fetch_per_task * n_running
        ready, self._ready = self._ready, []
        return ready, cost
