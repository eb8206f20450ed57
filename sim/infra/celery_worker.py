"""A Celery worker (``airflow celery worker -q QUEUES``): ``concurrency`` prefork children on a
host of its own, subscribed to some queues, holding at most ``prefetch_multiplier × concurrency``
messages (reserved behind its running tasks, which is how a short task can wait behind a long
one while another worker idles, P23). Each message runs ``airflow tasks run`` in a child
(process start-up and DAG parsing on the worker's host); its Celery state goes to the result
backend; with ``task_acks_late`` the message is acknowledged only then.
"""
from __future__ import annotations

from collections import deque

from ..engine import later
from ..model.states import FAILED, RUNNING, UP_FOR_RETRY
from ..model.stimuli import CHILD_STARTED, DELIVERED, RESULT_WRITTEN, REVOKED_DISCARDED, WORKER_GONE

STARTING, ONLINE, DRAINING, GONE = "starting", "online", "draining", "gone"
#: the result event's message per Celery state (made once, not per task)
_WRITTEN = {state: f"result {state} written" for state in ("SUCCESS", "FAILURE")}


class CeleryWorker:
    """One worker, given what it works with: the broker it consumes from, the result backend it
    writes to, the state core it reports to, the task runner that runs its children, its host,
    and whom to tell when it drains or is gone (its pool's owner)."""

    def __init__(self, env, core, task_runner, broker, backend, pool, name: str, host,
                 on_draining=None, on_gone=None):
        self.env = env
        self.core = core
        self.task_runner = task_runner
        self.broker = broker
        self.backend = backend
        self.on_draining = on_draining
        self.on_gone = on_gone
        self.pool = pool
        self.name = name
        self.queues = list(pool.queues)
        self.concurrency = pool.concurrency
        mult = pool.prefetch_multiplier
        self.limit = mult * pool.concurrency if mult > 0 else 10 ** 9
        self.host = host
        #: start-up CPU its children skip: the worker imported those modules before forking them
        #: (CeleryConfig.worker_preload_cpu; set by the executor)
        self.preloaded = 0.0
        self.state = STARTING
        self.started_at = self.env.now
        self.stopped_at = None
        self.reserved: deque = deque()      # delivered, waiting for a free child
        self.held: list = []                # messages counted against the prefetch limit
        self.procs: dict = {}               # process -> message
        self.delivering = (self.receive,)   # a message's callbacks on its way here (broker.dispatch)
        self.busy_seconds = 0.0

    # -- lifecycle ------------------------------------------------------------------------------
    def go_online(self) -> None:
        if self.state is not STARTING:
            return
        self.state = ONLINE
        self.broker.subscribe(self)

    def room(self) -> int:
        return self.limit - len(self.held) if self.state is ONLINE else 0

    def hold(self, msg) -> None:
        self.held.append(msg)

    def _release(self, msg) -> None:
        try:
            self.held.remove(msg)
        except ValueError:
            pass

    # -- messages -------------------------------------------------------------------------------
    def receive(self, msg) -> None:
        if self.state is GONE:
            return                           # lost with the worker; the broker restores it
        if msg.task_id in self.broker.revoked:
            # A revoked task is discarded when it arrives (Celery keeps the revoked ids).
            self.broker.ack(msg)
            self._release(msg)
            self.core.event(self.env.now, REVOKED_DISCARDED, "revoked message discarded", msg.ti, msg.try_number, self.name)
            for q in self.queues:
                self.broker.dispatch(q)
            return
        self.core.event(self.env.now, DELIVERED, "delivered", msg.ti, msg.try_number, self.name)
        self.reserved.append(msg)
        self._start_next()

    def _start_next(self) -> None:
        runner = self.task_runner
        early_acks = False
        while self.reserved and len(self.procs) < self.concurrency and self.state is not GONE:
            msg = self.reserved.popleft()
            if msg.task_id in self.broker.revoked:
                # Celery discards a revoked request when its turn comes.
                self.broker.ack(msg)
                self._release(msg)
                self.core.event(self.env.now, REVOKED_DISCARDED, "revoked message discarded", msg.ti, msg.try_number, self.name)
                early_acks = True
                continue
            if not self.broker.acks_late:
                self.broker.ack(msg)         # early ack: acknowledged as the task starts
                self._release(msg)
                early_acks = True
            proc = runner.start(msg.ti, self.host, self.name, self._on_exit, try_number=msg.try_number,
                                preloaded=self.preloaded)
            self.procs[proc] = msg
            self.core.event(self.env.now, CHILD_STARTED, "child process started", msg.ti, msg.try_number, self.name)
        if early_acks:                        # room under the prefetch limit again
            for q in self.queues:
                self.broker.dispatch(q)

    def _on_exit(self, proc, state) -> None:
        msg = self.procs.pop(proc, None)
        if msg is None or self.state is GONE:
            return
        # The Celery task ends: its state goes to the result backend, then (acks_late) the ack.
        write = self.backend.write_time()
        celery_state = "FAILURE" if state in (FAILED, UP_FOR_RETRY) else "SUCCESS"

        def stored(_e=None):
            if self.state is GONE and not proc.alive:
                return
            self.backend.store((proc, celery_state, msg.task_id))
            self.core.event(self.env.now, RESULT_WRITTEN, _WRITTEN[celery_state], proc.ti,
                            proc.try_number, "result backend")
            self.core.changed()            # the next sync() will see it
            if self.broker.acks_late:
                self.broker.ack(msg)
                self._release(msg)
            self._start_next()
            for q in self.queues:
                self.broker.dispatch(q)
            if self.state is DRAINING and not self.procs:
                self._gone()
        if write > 0.0:
            later(self.env, write, stored)
        else:
            stored()

    # -- endings --------------------------------------------------------------------------------
    def crash(self, why: str) -> None:
        """The worker dies at once (crash, OOM, kill on scale-down): its children die with it,
        running task instances become zombies, unacknowledged messages go back to the broker."""
        if self.state is GONE:
            return
        now = self.env.now
        for proc, msg in list(self.procs.items()):
            proc.alive = False
            ti = proc.ti
            if ti.state is RUNNING and ti.try_number == proc.try_number:
                self.core.heartbeats_stopped(ti, now, f"{self.name} {why}")
        self.procs.clear()
        self.reserved.clear()
        self.core.event(now, WORKER_GONE, f"worker {why}", None, 0, self.name)
        self._gone()
        self.broker.worker_lost(list(self.held))
        self.held.clear()

    def warm_shutdown(self, grace: float) -> None:
        """Celery's warm shutdown: stop consuming, give back reserved messages, let running tasks
        finish within ``grace`` seconds, then kill what is left."""
        if self.state is GONE:
            return
        self.state = DRAINING
        self.broker.unsubscribe(self)
        if self.on_draining is not None:
            self.on_draining(self)
        for msg in list(self.reserved):
            self._release(msg)
            self.broker.requeue(msg)
        self.reserved.clear()
        if not self.procs:
            self._gone()
            return
        later(self.env, grace,
              lambda _e: self.crash("killed after the termination grace period") if self.state is DRAINING else None)

    def _gone(self) -> None:
        self.state = GONE
        self.stopped_at = self.env.now
        self.broker.unsubscribe(self)
        if self.on_gone is not None:
            self.on_gone(self)
