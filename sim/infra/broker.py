"""Celery's message broker (airflow-mechanics.md §2.3): named queues between the scheduler's
CeleryExecutor and the workers subscribed to them.

* Delivery: a message goes to a subscribed worker with room under its prefetch limit
  (``worker_prefetch_multiplier`` × concurrency), round robin among them, after ``delivery_time``.
* Acks: with ``task_acks_late`` a message stays unacknowledged until its task ends, and counts
  against the worker's prefetch limit all that time; otherwise it is acknowledged when its task
  starts.
* Redelivery: an unacknowledged message comes back when its worker is lost (RabbitMQ at once,
  when the connection drops; Redis once ``visibility_timeout`` has passed since delivery, which
  also re-delivers a task that simply runs longer than the timeout, PR #62869).
* Outages: during an outage window nothing is published or delivered.
"""
from __future__ import annotations

from collections import deque

from ..engine import later, later_on
from ..model.stimuli import PUBLISHED, REDELIVERED, RETURNED_TO_QUEUE


class Message:
    """One Celery task message. ``task_id`` is the Celery task id (Airflow's
    external_executor_id): a redelivered message keeps it, a new publish gets a new one. It is
    its own timer on its way to a worker (engine.later_on): no closure and timer per delivery."""

    __slots__ = ("task_id", "ti", "try_number", "queue", "published_at", "worker", "delivered_at",
                 "acked", "redelivered", "deadline", "callbacks")
    _ok = True          # as a timer: SimPy's loop reads it

    def __init__(self, task_id: int, ti, try_number: int, queue: str, published_at: float,
                 redelivered: bool = False):
        self.task_id = task_id
        self.ti = ti
        self.try_number = try_number
        self.queue = queue
        self.published_at = published_at
        self.worker = None
        self.delivered_at = None
        self.acked = False
        self.redelivered = redelivered
        self.deadline = None              # its [deadline, message] entry while Redis watches it

    def copy(self, now: float) -> "Message":
        return Message(self.task_id, self.ti, self.try_number, self.queue, now, redelivered=True)


class Broker:
    def __init__(self, env, core, flavour: str, delivery_time: float, visibility_timeout: float,
                 acks_late: bool, outages=()):
        if flavour not in ("redis", "rabbitmq"):
            raise ValueError(f"broker flavour must be redis or rabbitmq, got {flavour!r}")
        self.env = env
        self.core = core                  # the state core, told what the broker did
        self.flavour = flavour
        self.delivery_time = delivery_time
        self.visibility_timeout = visibility_timeout
        self.acks_late = acks_late
        self.outages = sorted((float(a), float(b)) for a, b in outages)
        self.queues: dict[str, deque] = {}
        self.subscribers: dict[str, list] = {}
        self._rr: dict[str, int] = {}
        #: [deadline, message] per unacknowledged Redis delivery, in delivery order; an ack empties
        #: its entry, so a settled message (and its task instance) is not kept for the timeout
        self._visibility: deque = deque()
        self._visibility_armed = False
        self._resume_armed = False
        self.published = 0
        self.redeliveries = 0
        self.revoked: set = set()                # Celery task ids revoked by the executor
        self._who: dict[str, str] = {}           # queue -> "broker queue <name>", made once

    # -- outages --------------------------------------------------------------------------------
    def down_until(self, t: float) -> float | None:
        """End of the outage covering ``t``, or None if the broker is up."""
        for start, end in self.outages:
            if start <= t < end:
                return end
        return None

    # -- queues ---------------------------------------------------------------------------------
    def queue(self, name: str) -> deque:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = deque()
        return q

    def depth(self, name: str) -> int:
        q = self.queues.get(name)
        return len(q) if q else 0

    def who(self, queue: str) -> str:
        """The name events give a queue (one string per queue, not one per message)."""
        name = self._who.get(queue)
        if name is None:
            name = self._who[queue] = f"broker queue {queue}"
        return name

    def publish(self, msg: Message) -> None:
        self.queue(msg.queue).append(msg)
        self.published += 1
        self.core.event(self.env.now, PUBLISHED, "published", msg.ti, msg.try_number, self.who(msg.queue))
        self.dispatch(msg.queue)

    def subscribe(self, worker) -> None:
        for name in worker.queues:
            self.subscribers.setdefault(name, []).append(worker)
        for name in worker.queues:
            self.dispatch(name)

    def unsubscribe(self, worker) -> None:
        for name in worker.queues:
            subs = self.subscribers.get(name)
            if subs and worker in subs:
                subs.remove(worker)

    def dispatch(self, name: str) -> None:
        """Hand queued messages of ``name`` to subscribed workers with room, round robin."""
        q = self.queues.get(name)
        subs = self.subscribers.get(name)
        if not q or not subs:
            return
        now = self.env.now
        end = self.down_until(now)
        if end is not None:
            self._resume_at(end)
            return
        n = len(subs)
        i = self._rr.get(name, 0)
        tried = 0
        while q and tried < n:
            w = subs[i % n]
            i += 1
            if w.room() <= 0:
                tried += 1
                continue
            tried = 0
            msg = q.popleft()
            w.hold(msg)
            msg.worker = w
            msg.delivered_at = now
            if self.delivery_time > 0.0:
                later_on(self.env, self.delivery_time, msg, w.delivering)
            else:
                w.receive(msg)
            if self.flavour == "redis":         # every unacked delivery has a visibility deadline
                entry = msg.deadline = [now + self.visibility_timeout, msg]
                self._visibility.append(entry)
                self._arm_visibility()
        self._rr[name] = i % n

    def _resume_at(self, end: float) -> None:
        if self._resume_armed:
            return
        self._resume_armed = True

        def resume(_e):
            self._resume_armed = False
            for name in list(self.queues):
                self.dispatch(name)
        later(self.env, end - self.env.now, resume)

    # -- acknowledgements and redelivery ---------------------------------------------------------
    def ack(self, msg: Message) -> None:
        msg.acked = True
        entry = msg.deadline
        if entry is not None:                 # settled: Redis no longer watches it
            entry[1] = None
            msg.deadline = None

    def requeue(self, msg: Message) -> None:
        """A message goes back to the head of its queue (a warm shutdown returns what it reserved)."""
        new = msg.copy(self.env.now)
        self.ack(msg)                         # the old delivery is settled
        self.core.event(self.env.now, RETURNED_TO_QUEUE, "returned to the queue", msg.ti, msg.try_number,
                        self.who(msg.queue))
        self.queue(new.queue).appendleft(new)
        self.redeliveries += 1
        self.dispatch(new.queue)

    def worker_lost(self, held: list) -> None:
        """The connection of a dead worker is gone: its unacknowledged messages come back."""
        pending = [m for m in held if not m.acked]
        if not pending:
            return
        if self.flavour == "rabbitmq":
            for m in pending:
                self.requeue(m)
        # Redis: restored by the visibility timeout (already armed for every delivery).

    def _arm_visibility(self) -> None:
        if self._visibility_armed or not self._visibility:
            return
        self._visibility_armed = True
        delay = max(0.0, self._visibility[0][0] - self.env.now)
        later(self.env, delay, self._visibility_expired)

    def _visibility_expired(self, _e) -> None:
        self._visibility_armed = False
        now = self.env.now
        vis = self._visibility
        while vis and vis[0][0] <= now:
            _, msg = vis.popleft()
            if msg is not None and not msg.acked:
                # kombu restores an unacknowledged message once its visibility timeout passes,
                # whether its worker died or is still running it (duplicate delivery).
                self.core.event(now, REDELIVERED, "visibility timeout: redelivered", msg.ti, msg.try_number,
                                self.who(msg.queue))
                self.requeue(msg)
        self._arm_visibility()
