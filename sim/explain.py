"""``sim explain``: the story of one DAG run, in numbered steps and plain words.

Built from what a run records: each try's times (``task_instances``), every state change with
its cause (``transitions``) and what the components did (``events``: a message published,
delivered, a result written and seen). Steps follow the architecture note's walk-through (the
scheduler sends tasks to the broker; a worker takes one, runs it and records completion in the
result backend; ...) and add the delays that walk-through leaves out.
"""
from __future__ import annotations

import math

from .model.stimuli import EventKind as E, Stimulus

MINI = Stimulus.MINI_SCHEDULER.value


def _fmt(t: float) -> str:
    return f"{t:9.3f} s"


def _d(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x:.3f} s" if x < 60 else f"{x / 60:.1f} min"


def _names(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class RunStory:
    def __init__(self, result, run_index: int = 0, dag_id: str | None = None):
        runs = result.dag_runs
        if dag_id is not None:
            runs = runs[runs["dag_id"] == dag_id]
            if not len(runs):
                raise ValueError(f"no DAG run of dag_id {dag_id!r}")
        if not 0 <= run_index < len(runs):
            raise ValueError(f"--dag-run {run_index}: the run has {len(runs)} DAG runs (0 to {len(runs) - 1})")
        self.run = runs.iloc[run_index]
        self.result = result
        tis = result.task_instances
        self.tis = tis[(tis["dag_id"] == self.run["dag_id"]) & (tis["run_id"] == self.run["run_id"])]
        uids = set(self.tis["ti_uid"])
        ev = result.events
        self.events = ev[ev["ti_uid"].isin(uids)] if len(ev) else ev
        tr = result.transitions
        self.transitions = tr[tr["ti_uid"].isin(uids)] if len(tr) else tr
        self.name = dict(zip(self.tis["ti_uid"], self.tis["task_id"].astype(str)))

    # -- per-try facts -------------------------------------------------------------------------
    def _event(self, uid, try_number, kind: E, after: float = -math.inf) -> float:
        """The first such event of the try at or after ``after`` (a re-queued try was published
        and delivered again: the attempt that ran is the one after its last queueing)."""
        ev = self.events
        if not len(ev):
            return math.nan
        m = ev[(ev["ti_uid"] == uid) & (ev["try_number"] == try_number) & (ev["kind"] == kind.value)
               & (ev["time"] >= (after if after == after else -math.inf) - 1e-9)]
        return float(m["time"].iloc[0]) if len(m) else math.nan

    def _stimulus(self, uid, to_state, after: float) -> str:
        """The kind of stimulus (sim.model.stimuli.Stimulus) of the try's first change into
        ``to_state`` at or after ``after``; "" when transitions were not recorded."""
        tr = self.transitions
        if not len(tr):
            return ""
        m = tr[(tr["ti_uid"] == uid) & (tr["to_state"] == to_state) & (tr["time"] >= after - 1e-9)]
        return str(m["stimulus"].iloc[0]) if len(m) else ""

    def tries(self) -> list[dict]:
        out = []
        for r in self.tis.itertuples():
            uid, k = r.ti_uid, r.try_number
            out.append({
                "task": str(r.task_id), "uid": uid, "try": k, "state": str(r.state), "worker": str(r.worker),
                "map_index": int(r.map_index),
                "queue": str(r.queue), "ready": r.ready_at, "scheduled": r.scheduled_at, "queued": r.queued_at,
                "launched": r.launched_at, "started": r.started_at, "ended": r.ended_at, "released": r.released_at,
                "published": self._event(uid, k, E.PUBLISHED, r.queued_at),
                "delivered": self._event(uid, k, E.DELIVERED, r.queued_at),
                "written": self._event(uid, k, E.RESULT_WRITTEN, r.started_at),
                "seen": self._event(uid, k, E.RESULT_SEEN, r.started_at),
                "scheduled_by": self._stimulus(uid, "scheduled", r.scheduled_at),
            })
        return out

    def creation(self) -> list[str]:
        """Why a scheduled run was created well after it was due (more than an idle loop's second):
        the DAG's earlier intervals made first, one a loop; max_active_runs; the next_dagrun
        pointer sent back by each run's end (sim/airflow/dagrun_creation.py). Facts from the DAG
        runs' own times; nothing for a triggered run, which is created when it arrives."""
        run = self.run
        wait = run["created_at"] - run["due_at"]
        if not str(run["run_id"]).startswith("scheduled__") or not wait > 1.0:
            return []
        runs = self.result.dag_runs
        same = runs[runs["dag_id"] == run["dag_id"]]
        due, made = run["due_at"], run["created_at"]
        before = same[(same["run_id"] < run["run_id"]) & (same["due_at"] <= due)]      # by logical date
        window = same[(same["created_at"] < made) & ~(same["ended_at"] <= due)]
        moments = [due, *window["created_at"][window["created_at"] > due]]
        busy = max(int(((window["created_at"] <= t) & ~(window["ended_at"] <= t)).sum()) for t in moments)
        ended = int(((window["ended_at"] > due) & (window["ended_at"] <= made)).sum())
        return [f"It was created {_d(wait)} after it was due. Meanwhile up to {busy} runs of {run['dag_id']} "
                f"were queued or running and {ended} of them ended, and its {len(before)} earlier intervals due "
                f"by then were made first. A scheduler loop makes one run a DAG, none while the DAG has max_active_runs "
                f"runs queued or running, and each run's end points its next_dagrun back to the interval after "
                f"that run's, so later loops walk it past the runs that exist before a new one is made "
                f"(background: Scheduled runs: one a loop, and the pointer that goes back)."]

    # -- the story -----------------------------------------------------------------------------
    def story(self) -> str:
        run = self.run
        executor = self.result.executor
        lines = [f"DAG run {run['dag_id']} {run['run_id']} on the {executor} executor "
                 f"({self.result.summary['profile']} profile): {run['state']}, "
                 f"makespan {_d(run['ended_at'] - run['started_at'])}",
                 f"(times are simulated seconds since the start; the run was due at {run['due_at']:.3f} s "
                 f"and started at {run['started_at']:.3f} s)", *self.creation(), ""]
        tries = [t for t in self.tries() if t["started"] == t["started"]]
        steps: list[tuple[float, str, list[str]]] = []
        celery = executor == "celery"
        # 1. the scheduler hands tasks over: grouped by the moment they left the scheduler
        key = "published" if celery else "launched"
        groups: dict = {}
        for t in tries:
            groups.setdefault(round(t[key], 6), []).append(t)
        for at, group in groups.items():
            names = _names([t["task"] for t in group])
            if celery:
                queues = sorted({t["queue"] for t in group})
                head = f"the scheduler sends {names} to the broker (queue {', '.join(queues)})"
            elif "kubernetes" in executor:
                head = f"the scheduler's KubernetesExecutor asks the API server for a pod for {names}"
            else:
                head = f"the scheduler hands {names} to LocalExecutor worker processes"
            notes = []
            for t in group:
                by = "the mini-scheduler of the upstream task" if t["scheduled_by"] == MINI else "a scheduler loop"
                notes.append(f"{t['task']}: ready at {t['ready']:.3f}, scheduled by {by} after "
                             f"{_d(t['scheduled'] - t['ready'])}, queued by the critical section after "
                             f"{_d(t['queued'] - t['scheduled'])}, "
                             + (f"published {_d(t['published'] - t['queued'])} later (executor heartbeat)"
                                if celery else f"launched {_d(t['launched'] - t['queued'])} later (executor heartbeat)"))
            steps.append((at, head, notes))
        # 2. workers take, run and record: grouped by the moment they took the tasks
        key = "delivered" if celery else "launched"
        groups = {}
        for t in tries:
            groups.setdefault(round(t[key], 6), []).append(t)
        for at, group in groups.items():
            if celery:
                takes = _names([f"{t['worker']} takes {t['task']}" for t in group])
                each = "each runs its task and records completion" if len(group) > 1 else \
                    "runs it and writes its completion"
                head = f"{takes} from the broker; {each} in the result backend"
            else:
                head = _names([f"{t['worker']} runs {t['task']}" for t in group])
            notes = []
            for t in group:
                parts = []
                if celery:
                    parts.append(f"broker hop {_d(t['delivered'] - t['published'])}")
                    wait = t["launched"] - t["delivered"]
                    if wait > 1e-9:
                        parts.append(f"prefetched behind another task on {t['worker']} for {_d(wait)}")
                boot = ("pod start-up (scheduling, image pull, init containers, container start) and "
                        "Airflow boot with DAG parsing") if "kubernetes" in executor else "process start-up and DAG parsing"
                parts.append(f"{boot} {_d(t['started'] - t['launched'])}")
                parts.append(f"runs {_d(t['ended'] - t['started'])} until {t['ended']:.3f} ({t['state']})")
                if celery:
                    parts.append(f"{t['state'].upper() if t['state'] != 'success' else 'SUCCESS'} written to the "
                                 f"result backend at {t['written']:.3f}")
                    parts.append(f"the scheduler sees it {_d(t['seen'] - t['written'])} later, on its next "
                                 f"loop's sync (slot free at {t['released']:.3f})")
                elif "kubernetes" in executor:
                    parts.append(f"the watcher reports the pod's end; the scheduler's next heartbeat frees "
                                 f"the slot at {t['released']:.3f}")
                else:
                    parts.append(f"the scheduler's next heartbeat frees the slot at {t['released']:.3f}")
                notes.append(f"{t['task']}: " + "; ".join(parts))
            steps.append((at + 1e-9, head, notes))
        steps.sort(key=lambda s: s[0])
        for i, (at, head, notes) in enumerate(steps, 1):
            head = head[0].upper() + head[1:] if head.startswith("the ") else head   # worker names stay as named
            lines.append(f"{i:2d}. [{_fmt(at)}] {head}.")
            for n in notes:
                lines.append(f"      - {n}")
        lines.append("")
        if tries:
            lines.append(f"The run ends at {run['ended_at']:.3f} s, when a scheduler loop examines it and finds "
                         f"every task done ({_d(run['ended_at'] - max(t['ended'] for t in tries))} after the last "
                         "task ended).")
        else:
            lines.append(f"No task of this run started: the run ends at {run['ended_at']:.3f} s with "
                         f"{_names(sorted(set(self.tis['state'].astype(str))))} task instances.")
        return "\n".join(lines)

    def why(self, task_id: str) -> str:
        """Why one task instance waited between 'dependencies met' and 'code starts', stage by stage."""
        rows = [t for t in self.tries() if t["task"] == task_id]
        if not rows:
            raise ValueError(f"no task {task_id!r} in this DAG run (tasks: {', '.join(sorted(set(self.name.values())))})")
        out = []
        celery = self.result.executor == "celery"
        cfg = self.result.scenario.airflow
        parallelism = cfg.parallelism * cfg.schedulers       # each scheduler's executor has its own
        tis = self.result.task_instances
        for t in rows:
            element = f" [map_index {t['map_index']}]" if t["map_index"] >= 0 else ""
            out.append(f"{task_id}{element} try {t['try']} ({t['state']}): ready at {t['ready']:.3f} s, "
                       f"started at {t['started']:.3f} s, waited {_d(t['started'] - t['ready'])}:")
            if t["scheduled"] == t["scheduled"]:
                by = "the mini-scheduler (right after its upstream task)" if t["scheduled_by"] == MINI else \
                    "its trigger's event, handed back by the triggerer (a resumed half)" \
                    if t["scheduled_by"] == Stimulus.TRIGGER_FIRED.value else "waiting for the next scheduler loop to examine its DAG run"
                out.append(f"  - {_d(t['scheduled'] - t['ready'])} ready -> scheduled: {by}")
            if t["queued"] == t["queued"]:
                busy = ((tis["queued_at"] <= t["scheduled"]) & (tis["released_at"] > t["scheduled"])).sum()
                reason = (f"no free slot: {busy} of parallelism {parallelism} occupied when it was scheduled"
                          if busy >= parallelism else "waiting for the next scheduler loop's critical section")
                out.append(f"  - {_d(t['queued'] - t['scheduled'])} scheduled -> queued: {reason}")
            if celery and t["published"] == t["published"]:
                out.append(f"  - {_d(t['published'] - t['queued'])} queued -> in the broker: the executor "
                           f"heartbeat sends it (apply_async)")
                hop = t["delivered"] - t["published"]
                why = "broker hop" if hop < 1.0 else \
                    f"queue {t['queue']!r} had no listening worker with room (no worker, or all at their prefetch limit)"
                out.append(f"  - {_d(hop)} in the broker -> delivered to {t['worker']}: {why}")
                wait = t["launched"] - t["delivered"]
                if wait > 1e-9:
                    out.append(f"  - {_d(wait)} delivered -> a child process starts it: prefetched behind another "
                               f"task on {t['worker']}")
            elif t["launched"] == t["launched"]:
                out.append(f"  - {_d(t['launched'] - t['queued'])} queued -> launched: the executor heartbeat")
            boot = ("the pod's start-up (see pods.csv for its stages) and Airflow boot with DAG parsing"
                    if "kubernetes" in self.result.executor else "process start-up and DAG parsing")
            out.append(f"  - {_d(t['started'] - t['launched'])} launched -> started: {boot}")
            if t["state"] == "deferred":
                out.append(self._deferral(t))
        return "\n".join(out)

    def _deferral(self, t: dict) -> str:
        """What a deferred try's trigger did between its two halves (mechanics §1.11)."""
        ev = self.events
        mine = ev[(ev["ti_uid"] == t["uid"]) & (ev["try_number"] == t["try"]) & (ev["time"] >= t["ended"] - 1e-9)]
        claimed = mine[mine["kind"] == E.TRIGGER_CLAIMED.value]
        fired = mine[mine["kind"] == E.TRIGGER_EVENT.value]
        if not len(claimed):
            return f"  - deferred at {t['ended']:.3f} s; no triggerer had room for its trigger before the run ended"
        c, who = float(claimed["time"].iloc[0]), str(claimed["who"].iloc[0])
        text = (f"  - deferred at {t['ended']:.3f} s (its slots freed); {who} claimed the trigger "
                f"{_d(c - t['ended'])} later")
        if c - t["ended"] > 1.5:
            text += " (the triggerers were at capacity)"
        if len(fired):
            text += (f"; the event was handled at {float(fired['time'].iloc[0]):.3f} s and the task went back to "
                     f"scheduled: its next row is the resumed half")
        return text


def explain(result, run_index: int = 0, dag_id: str | None = None, task_id: str | None = None) -> str:
    story = RunStory(result, run_index, dag_id)
    return story.why(task_id) if task_id else story.story()
