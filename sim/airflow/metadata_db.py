"""The metadata database: a component of its own, shared by the scheduler and the tasks.

It serves at most ``connections`` queries at once, first come first served, each taking
``query_time``. Callers book queries and get back how long they wait: the booking is arithmetic on
the connections' busy-until times (no SimPy events), exact for a FIFO multi-server queue because
bookings arrive in simulated-time order. A busy database therefore slows everyone who uses it.

On a single-machine install the server shares a host's cores with Airflow
(``Overheads.metadata_db_on_scheduler_host``): each query is also CPU work on that host, and
takes longer as the host is loaded.
"""
from __future__ import annotations

from heapq import heappop, heappush, heapreplace


class MetadataDB:
    __slots__ = ("env", "query_time", "connections", "_free_at", "queries", "busy_seconds",
                 "wait_seconds", "host")

    def __init__(self, env, query_time: float, connections: int):
        if connections < 1:
            raise ValueError("the metadata database needs at least one connection")
        self.env = env
        self.query_time = query_time
        self.connections = connections
        self._free_at = [0.0] * connections
        self.queries = 0
        self.busy_seconds = 0.0
        self.wait_seconds = 0.0
        #: the host the database's server runs on when it shares its cores with Airflow (None: a
        #: host of its own, as a managed database): a query is then CPU work on that host, and
        #: takes longer as that host is loaded (Host.stretch: the rate at the query's start)
        self.host = None

    def repeat(self, n: int) -> None:
        """Count ``n`` queries of loops that were not simulated one by one (a scheduler's
        identical idle loops, each finding a connection free)."""
        self.queries += n
        self.busy_seconds += n * self.query_time
        if self.host is not None:
            self.host.repeat(n * self.query_time)

    def book(self, n: int = 1, at: float | None = None) -> float:
        """Run ``n`` queries one after another for one client starting at ``at`` (default now);
        return the time they take, waiting for a connection included."""
        qt = self.query_time
        if n <= 0 or qt <= 0.0:
            return 0.0
        start = self.env.now if at is None else at
        self.queries += n
        self.busy_seconds += n * qt
        host = self.host
        if host is not None:
            # the server's work shares the host's cores: it waits for them, and slows what
            # else runs there (a short job: the rate it starts at is the rate it keeps; a booking
            # that starts later, ``at``, is priced and burned at the load of now)
            stretch = host.stretch()
            host.burn(n * qt)
            qt *= stretch
        free = self._free_at
        if free[0] <= start:
            # A connection is free now: the client's queries run back to back on it, each
            # finding it free again when the previous one ends, so nobody waits.
            heapreplace(free, start + n * qt)
            return n * qt
        t = start
        for _ in range(n):
            f = heappop(free)
            begin = f if f > t else t
            self.wait_seconds += begin - t
            t = begin + qt
            heappush(free, t)
        return t - start
