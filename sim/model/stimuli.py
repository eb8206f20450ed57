"""What made something happen: the kind of every state change and of every component event.

Each transition and event a run records carries one of these kinds beside its message, so
``sim explain`` and analyses match on kinds, never on the wording of a message (rewording a
message changes no explanation). Names follow the Airflow mechanism that acts.
"""
from __future__ import annotations

from enum import Enum


class Stimulus(str, Enum):
    """Why a task instance changed state."""

    # the scheduler loop (SchedulerJobRunner)
    DEPENDENCIES_MET = "dependencies_met"           # examined run: upstream done, trigger rule passes
    TRIGGER_RULE = "trigger_rule"                   # examined run: the rule decides skipped/upstream_failed
    RETRY_DELAY_PASSED = "retry_delay_passed"       # up_for_retry -> scheduled
    RESCHEDULE_POKE = "reschedule_poke"             # a reschedule-mode sensor's next poke is due
    MAPPED_EXPANSION = "mapped_expansion"           # a mapped task's expansion failed or was empty
    CRITICAL_SECTION = "critical_section"           # scheduled -> queued within the limits
    EXECUTOR_KILLED = "executor_killed"             # executor reported an end of a try never started
    ZOMBIE = "zombie"                               # no heartbeat for task_instance_heartbeat_timeout
    STUCK_IN_QUEUED = "stuck_in_queued"             # task_queued_timeout: re-queued or failed
    # the task process (airflow tasks run / the Task SDK)
    MINI_SCHEDULER = "mini_scheduler"               # schedule_after_task_execution of an upstream task
    TASK_STARTED = "task_started"                   # the try marked running (start_date)
    TASK_OUTCOME = "task_outcome"                   # the try wrote its outcome
    # the triggerer
    TRIGGER_FIRED = "trigger_fired"                 # deferred -> scheduled, to resume

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


class EventKind(str, Enum):
    """What a component did (not a state change)."""

    PUBLISHED = "published"                         # the executor's apply_async reached the broker
    PUBLISH_TIMED_OUT = "publish_timed_out"         # the broker was down for operation_timeout
    RETURNED_TO_QUEUE = "returned_to_queue"         # unacknowledged message back to the broker
    REDELIVERED = "redelivered"                     # visibility timeout passed
    DELIVERED = "delivered"                         # a worker received the message
    REVOKED_DISCARDED = "revoked_discarded"         # a worker dropped a revoked task's message
    CHILD_STARTED = "child_started"                 # a worker's child process took the task
    RESULT_WRITTEN = "result_written"               # the task's state in the result backend
    RESULT_SEEN = "result_seen"                     # the executor's sync() read it
    WORKER_GONE = "worker_gone"                     # a Celery worker crashed or stopped
    POD_CREATED = "pod_created"
    POD_BOUND = "pod_bound"
    POD_LOST = "pod_lost"
    SPOT_NOTICE = "spot_notice"                     # a spot node's interruption notice
    TRIGGER_CLAIMED = "trigger_claimed"             # a triggerer took the trigger
    TRIGGER_EVENT = "trigger_event"                 # the trigger's event was handled

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


# The members as module constants, for the hot paths: on Python 3.11 ``Stimulus.X`` goes through
# EnumType's ``__getattr__`` hook on every access (see sim/model/states.py). The same objects.
DEPENDENCIES_MET, TRIGGER_RULE = Stimulus.DEPENDENCIES_MET, Stimulus.TRIGGER_RULE
RETRY_DELAY_PASSED, RESCHEDULE_POKE = Stimulus.RETRY_DELAY_PASSED, Stimulus.RESCHEDULE_POKE
MAPPED_EXPANSION, CRITICAL_SECTION = Stimulus.MAPPED_EXPANSION, Stimulus.CRITICAL_SECTION
EXECUTOR_KILLED, ZOMBIE = Stimulus.EXECUTOR_KILLED, Stimulus.ZOMBIE
STUCK_IN_QUEUED, MINI_SCHEDULER = Stimulus.STUCK_IN_QUEUED, Stimulus.MINI_SCHEDULER
TASK_STARTED, TASK_OUTCOME = Stimulus.TASK_STARTED, Stimulus.TASK_OUTCOME
TRIGGER_FIRED = Stimulus.TRIGGER_FIRED
PUBLISHED, PUBLISH_TIMED_OUT = EventKind.PUBLISHED, EventKind.PUBLISH_TIMED_OUT
RETURNED_TO_QUEUE, REDELIVERED = EventKind.RETURNED_TO_QUEUE, EventKind.REDELIVERED
DELIVERED, REVOKED_DISCARDED = EventKind.DELIVERED, EventKind.REVOKED_DISCARDED
CHILD_STARTED, RESULT_WRITTEN = EventKind.CHILD_STARTED, EventKind.RESULT_WRITTEN
RESULT_SEEN, WORKER_GONE = EventKind.RESULT_SEEN, EventKind.WORKER_GONE
POD_CREATED, POD_BOUND = EventKind.POD_CREATED, EventKind.POD_BOUND
POD_LOST, SPOT_NOTICE = EventKind.POD_LOST, EventKind.SPOT_NOTICE
TRIGGER_CLAIMED, TRIGGER_EVENT = EventKind.TRIGGER_CLAIMED, EventKind.TRIGGER_EVENT


class Said:
    """A message made of a fixed wording and a name (``task process started on <pod>``), kept in
    its two parts: a run of a million pods has a million such messages, each used once, and the
    recorder keeps only the name (which it keeps anyway) until the results are built."""

    __slots__ = ("wording", "name")

    def __init__(self, wording: str, name: str):
        self.wording = wording
        self.name = name

    def __str__(self) -> str:
        return self.wording + self.name

    def __repr__(self) -> str:
        return repr(str(self))
