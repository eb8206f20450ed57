"""A host whose cores are shared by everything running on it (egalitarian processor sharing).

With ``n`` CPU-bound jobs on ``c`` cores each job progresses at rate ``min(1, c/n)``: piling more
processes onto a small host does not make it faster, it makes everything on it slower.

The host runs in one of two modes:

*free*: while no moment of the jobs' runs has more of them running than the host has cores,
every job runs at rate 1 whatever else arrives or leaves, so a job's end is known when it is
submitted: its arrival (now + ``after``) plus its ``seconds``. Its owner's continuation is then
pushed once, at submission, at that end plus the wait after it (``tail``): the host schedules
nothing of its own, and work nobody waits for (:meth:`Host.burn`) nothing at all. The
bookkeeping is lazy: a heap of the free jobs by end (their arrivals and ends on the wall clock),
from which each submission retires those done before it checks that the new job fits. A job
object exists only where a continuation is pushed: work a caller went on past at once
(engine.go_on) or that nobody waits for is an entry of that heap alone.

*classic*: a job arriving when it would not fit switches to processor sharing proper: the free
jobs' pushed continuations are disarmed, the running ones move into a *virtual work clock* ``V``
(work done by any one job since the host started) and a heap of the jobs' finishing values of
``V``, with the work they have left, and those still in their wait get an arrival timer. (A job
with a wait before it that would not fit waits for its arrival first: nothing changes on the
host before.) An arrival or a departure costs O(log n), and only one wake-up timer is live at a
time. At a departure that leaves a core idle the host goes free again: each running job's
continuation is pushed at its end, and the host's timer disarmed. (At a departure that leaves
exactly as many jobs as cores it stays classic: the next arrival would switch back at once.)

Both modes give the same ends (up to float rounding; ties at one instant may fall in another
order), and ``busy_core_seconds`` the same value at any time: the work done up to the host's
last event (a job's arrival or end, as the classic mode counts it). An unlimited host
(``cores=None``) is in neither mode: its jobs are timers, step by step, as they always were.

*Groups* (``autogroup=True``): Linux shares the cores among task groups first and among a group's
processes second. With ``sched_autogroup_enabled`` 1 (the kernel's default where it is built in,
as Debian's is) every session is a group of equal weight, so a scheduler, each Celery worker with
its children and PostgreSQL with its backends, each started in a session of its own, get a share
each however many processes the others run (measured: data/airflow-runs/autogroup-off, where a
Celery scheduler's first 16 catch-up runs took 5.5 s to make with it off and 2.3 s with it on).
The classic mode then keeps a virtual clock per group: the cores are shared equally among the
groups with jobs, a group's share capped at one core per job and what it leaves shared among
the others (water-filling), and a group's jobs share its share equally. :meth:`Host.group` gives a
group's view of the host (its jobs go in that group); the host's own methods use its first group.
The free mode is the same with groups or without: a job that fits runs at rate 1 either way.
"""
from __future__ import annotations

from heapq import heappop, heappush

from simpy import Event
from simpy.events import NORMAL

from ..engine import Wake, go_on, later_on
from .autogroup import HostGroup, share

_NOBODY = ()       # the callbacks of a superseded timer


def _fire(job) -> None:
    """A job's continuation (its own timer): its work, and the wait after it, are over."""
    job.done(job.arg)


_FIRE = (_fire,)          # its callbacks, one tuple for every job (only read)

#: back to free mode at a departure that leaves at least this many cores idle
_FREE_GAP = 1

class _Job:
    """One job: ``s`` seconds of CPU work, then ``done(arg)`` (``done`` None: nobody waits) after a
    further ``tail`` seconds' wait (None: none at all), in group ``g``. In free mode ``a`` and ``f``
    are its arrival and its end on the wall clock. It is its own timer (``callbacks``, ``_ok``) for
    its continuation, its arrival, or an unlimited host's steps."""

    __slots__ = ("callbacks", "s", "done", "arg", "tail", "seq", "a", "f", "g")
    _ok = True

    def __init__(self, s, done, arg, tail, seq, a=0.0, f=0.0, g=0):
        self.callbacks = _FIRE
        self.s = s
        self.done = done
        self.arg = arg
        self.tail = tail
        self.seq = seq
        self.a = a
        self.f = f
        self.g = g


class Host:
    __slots__ = ("env", "name", "cores", "_n", "_v", "_t", "_heap", "_seq", "_timer", "_busy",
                 "_wake", "_free", "_room", "_fheap", "_tev", "_arrive_cb", "_steps",
                 "_gn", "_rate", "_live", "_groups", "autogroup", "machine")

    def __init__(self, env, name: str, cores: float | None, autogroup: bool = False, group: str = ""):
        if cores is not None and not cores > 0:
            raise ValueError(f"host {name}: cores must be > 0 or None (unlimited), got {cores}")
        self.env = env
        self.name = name
        self.cores = cores
        self.machine = self         # (a group's view names its host here too)
        self._n = 0                 # classic: jobs running
        self._t = 0.0
        # classic, per group: jobs running, virtual clock (work done by any one of its jobs),
        # rate per job, and heap of (V at its end, seq, job)
        self._gn = [0]
        self._v = [0.0]
        self._rate = [1.0]
        self._heap = [[]]
        #: classic: the groups with jobs (a dict, ordered): the only ones each event visits, so
        #: that workers come and gone (each a group) cost nothing once they are idle
        self._live: dict = {}
        #: autogroup: the host's groups by name (group 0, the host's own, is ``group``)
        self.autogroup = autogroup
        self._groups = {group: self}
        self._seq = 0
        self._timer = None          # the one live wake-up timer (older ones are disarmed)
        self._wake = (self._on_timer,)  # its callbacks: one tuple for every timer (only read)
        #: classic: core-seconds done up to _t; free: that plus all the free jobs' work (done or
        #: not: busy_core_seconds takes off what is not done yet)
        self._busy = 0.0
        self._free = cores is not None  # (an unlimited host is in neither mode)
        self._room = cores - 1.0 if cores is not None else 0.0   # free jobs beside a new one
        #: free: [wall end, seq, arrival, seconds, job or None, group] of the jobs not yet retired
        self._fheap: list = []
        self._tev = 0.0             # free: the latest arrival or end known to be past
        self._arrive_cb = (self._arrive,)
        self._steps = ((self._step_cpu,), (self._step_tail,))

    def group(self, name: str):
        """The view of this host that runs its jobs in the group ``name`` (a session's processes:
        a Celery worker's, PostgreSQL's), made at the first call. Without ``autogroup`` every
        group is the host itself: one group, plain processor sharing."""
        got = self._groups.get(name)
        if got is None:
            if not self.autogroup:
                got = self
            else:
                g = len(self._gn)
                self._gn.append(0)
                self._v.append(0.0)
                self._rate.append(1.0)
                self._heap.append([])
                got = HostGroup(self, g)
            self._groups[name] = got
        return got

    @property
    def jobs(self) -> int:
        """Jobs running (arrived, not done) now."""
        if not self._free:
            return self._n
        now = self.env.now
        return sum(1 for f, _, a, _, _, _ in self._fheap if a <= now < f)

    def stretch(self, g: int = 0) -> float:
        """How much longer than alone a short piece of work started now (in group ``g``) takes
        here: 1 while a core is free for it, else 1 / the rate of a job that arrives now (the
        rate it keeps while nothing else arrives or leaves)."""
        cores = self.cores
        if cores is None:
            return 1.0
        counts = {g: 1}                     # the groups with jobs, this one's new job counted
        if self._free:
            now = self.env.now
            for f, _, a, _, _, gj in self._fheap:
                if a <= now < f:
                    counts[gj] = counts.get(gj, 0) + 1
        else:
            gn = self._gn
            for gj in self._live:
                counts[gj] = counts.get(gj, 0) + gn[gj]
        if sum(counts.values()) <= cores:
            return 1.0
        groups = list(counts)
        return 1.0 / share([counts[gj] for gj in groups], cores)[groups.index(g)]

    @property
    def busy_core_seconds(self) -> float:
        """Core-seconds of work done up to the host's last event (an arrival or an end), as the
        classic mode counts it; in free mode the work not done by then is taken off."""
        heap = self._fheap
        if not heap:
            return self._busy
        now = self.env.now
        t = self._tev
        for f, _, a, _, _, _ in heap:         # the last arrival or end that has happened
            if f <= now:
                if f > t:
                    t = f
            elif t < a <= now:
                t = a
        busy = self._busy
        for f, _, a, s, _, _ in heap:
            if f > t:
                busy -= s if a >= t else f - t
        return busy

    def work(self, seconds: float, after: float = 0.0, g: int = 0) -> Event:
        """An event that fires once ``seconds`` of CPU work are done on this host, the work
        starting ``after`` seconds from now (a wait that uses no CPU, e.g. for the database)."""
        if self.cores is None or seconds <= 0.0:
            if seconds > 0.0:
                self._busy += seconds
            total = (seconds if seconds > 0.0 else 0.0) + after
            return self.env.timeout(total)
        ev = Event(self.env)
        self.run(seconds, ev.succeed, None, after, None, g)
        return ev

    def work_for(self, loop, seconds: float, after: float = 0.0, tail: float | None = None, g: int = 0) -> bool:
        """:meth:`work` for an :class:`~sim.engine.Loop`: resume ``loop`` when the work is done
        (at once, from the host's timer), ``after`` seconds' wait before it and ``tail`` after
        it included. Returns whether the loop must yield: on a host with free cores, when
        nothing else is due before the work's end, the clock moves there at once and the loop
        goes on (:func:`sim.engine.go_on`; the caller yields at once if it must)."""
        if self.cores is None or seconds <= 0.0:
            if seconds > 0.0:
                self._busy += seconds
            return loop.wait((seconds if seconds > 0.0 else 0.0) + after + (tail or 0.0))
        if self._free:
            entry = self._admit(seconds, after, None, g)
            if entry is not None:
                if go_on(self.env, entry[0] if tail is None else entry[0] + tail):
                    return False
                self._push(self._job_of(entry, loop.resume, None, tail))
                return True
        self.run(seconds, loop.resume, None, after, tail, g)
        return True

    def run_last(self, seconds: float, then, arg=None, after: float = 0.0, tail: float | None = None, g: int = 0) -> None:
        """:meth:`run` for a caller in tail position (it returns at once, to SimPy's loop or to a
        caller that does): on a host with free cores, when nothing else is due before the
        work's end, the clock moves there and ``then(arg)`` is called now (engine.go_on)."""
        if self._free and seconds > 0.0:
            entry = self._admit(seconds, after, None, g)
            if entry is not None:
                if go_on(self.env, entry[0] if tail is None else entry[0] + tail):
                    then(arg)
                    return
                self._push(self._job_of(entry, then, arg, tail))
                return
        self.run(seconds, then, arg, after, tail, g)

    def _admit(self, seconds: float, after: float, job=None, g: int = 0):
        """Free mode: retire the jobs done, then admit a job of ``seconds`` of work arriving
        ``after`` from now, in group ``g``, if it fits beside them: its heap entry is returned
        (with ``job``, given its place, or with no job: :meth:`_job_of` makes one when a
        continuation is pushed), else None (the host must leave free mode for it)."""
        env = self.env
        now = env._now
        heap = self._fheap
        if heap and heap[0][0] <= now:
            t = self._tev
            while heap and heap[0][0] <= now:
                t = heappop(heap)[0]
            if t > self._tev:
                self._tev = t
        a = now + after
        f = a + seconds
        if len(heap) <= self._room or self._fits(a, f):
            self._seq = seq = self._seq + 1
            if job is not None:
                job.seq, job.a, job.f = seq, a, f
            entry = [f, seq, a, seconds, job, g]
            heappush(heap, entry)
            self._busy += seconds
            if not after > 0.0:
                self._tev = now
            return entry
        return None

    @staticmethod
    def _job_of(entry: list, done, arg, tail) -> _Job:
        """The job of a free entry that has none yet, for a continuation to be pushed."""
        f, seq, a, s, _, g = entry
        entry[4] = job = _Job(s, done, arg, tail, seq, a, f, g)
        return job

    def _push(self, job) -> None:
        """Free mode: push ``job``'s continuation at its end (known when it came) plus its tail."""
        job.callbacks = _FIRE
        env = self.env
        heappush(env._queue, (job.f if job.tail is None else job.f + job.tail, NORMAL, next(env._eid), job))

    def repeat(self, seconds: float) -> None:
        """Count ``seconds`` of CPU work done in loops that were not simulated one by one (a
        scheduler's identical idle loops): they ran while nothing else competed, so only the
        statistics change. (An unlimited host has no cores to keep busy.)"""
        if self.cores:
            self._busy += seconds

    def run(self, seconds: float, then, arg=None, after: float = 0.0, tail: float | None = None, g: int = 0) -> None:
        """Call ``then(arg)`` once ``seconds`` of CPU work are done (one event fewer than
        ``work``; the argument saves its callers a closure per job), the work starting ``after``
        seconds from now (a wait that uses no CPU) and ``then`` called ``tail`` seconds after it
        ends (another such wait; None: at once); the work in group ``g``. On a host with free
        cores that is one event in all; on an unlimited host (or for no work) the same steps,
        timers and order as a wait, then the work, then a wait."""
        if self._free and seconds > 0.0:
            entry = self._admit(seconds, after, None, g)
            if entry is not None:
                if then is not None:
                    self._push(self._job_of(entry, then, arg, tail))
                return
        elif self.cores is None or seconds <= 0.0:
            job = _Job(seconds, then, arg, tail, 0)
            if after > 0.0:
                later_on(self.env, after, job, self._steps[0])
            else:
                self._step_cpu(job)
            return
        self._enter(seconds, then, arg, after, tail, g)

    def _step_cpu(self, job) -> None:
        seconds = job.s
        if seconds > 0.0:
            self._busy += seconds
        later_on(self.env, seconds if seconds > 0.0 else 0.0, job, self._steps[1])

    def _step_tail(self, job) -> None:
        if job.tail is None:
            job.done(job.arg)
        else:
            later_on(self.env, job.tail, job, _FIRE)

    def burn(self, seconds: float, g: int = 0) -> None:
        """``seconds`` of CPU work that nobody waits for: it only slows what else runs here. On a
        host with free cores it schedules nothing at all."""
        if self.cores is None:
            self._busy += seconds
        elif seconds > 0.0:
            self.run(seconds, None, None, 0.0, None, g)

    # -- leaving free mode, classic mode ----------------------------------------------------------
    def _enter(self, seconds: float, done, arg, after: float, tail, g: int) -> None:
        """A job the free mode did not take: the host is contended (or becomes so now)."""
        env = self.env
        now = env._now
        self._seq += 1
        job = _Job(seconds, done, arg, tail, self._seq, 0.0, 0.0, g)
        if after > 0.0:
            # free or not, nothing changes on the host before the job arrives (then it checks)
            job.callbacks = self._arrive_cb
            heappush(env._queue, (now + after, NORMAL, next(env._eid), job))
            return
        if self._free:
            self._to_classic(now)
        self._submit(job, now)

    def _arrive(self, job) -> None:
        """A job's wait before its work (classic mode) is over: it arrives now, in either mode."""
        now = self.env._now
        if self._free:
            if self._admit(job.s, 0.0, job, job.g) is not None:
                if job.done is not None:
                    self._push(job)
                return
            self._to_classic(now)
        self._seq += 1
        job.seq = self._seq
        self._submit(job, now)

    def _fits(self, a: float, f: float) -> bool:
        """Would a job running from ``a`` to ``f`` leave every moment with no more free jobs
        running than cores? (Those still in their wait count from their arrival only.)"""
        room = self._room
        marks = []
        for fj, _, aj, _, _, _ in self._fheap:
            if fj > a and aj < f:                       # runs during [a, f)
                marks.append((aj if aj > a else a, 1))
                marks.append((fj, -1))
        if len(marks) <= 2.0 * room:
            return True
        marks.sort()                        # at one instant an end (-1) comes before a start
        n = 0
        for _, d in marks:
            n += d
            if n > room:
                return False
        return True

    def _to_classic(self, now: float) -> None:
        """More jobs than cores from now on (a job arrives now): processor sharing proper. The
        jobs running move to their groups' virtual clocks with the work they have left, those
        still waiting get an arrival timer; their pushed continuations are disarmed (a job done,
        waiting its tail, keeps its own). ``now`` is an arrival, an event of the classic mode:
        the work is counted up to it."""
        env = self.env
        queue = env._queue
        self._free = False
        self._t = now
        busy = self._busy
        heaps, vs, gn, live = self._heap, self._v, self._gn, self._live
        n = 0
        for f, seq, a, s, job, g in sorted(self._fheap, key=lambda e: (e[0], e[1])):
            if f <= now:                 # done (its end not retired yet): kept
                continue
            if job is None:              # nobody waits for it
                job = _Job(s, None, None, None, seq, a, f, g)
            elif job.done is not None:
                job.callbacks = _NOBODY  # the loop pops it and calls nobody; a fresh timer:
                job = _Job(job.s, job.done, job.arg, job.tail, seq, job.a, f, g)
            if job.a <= now:
                job.s = f - now
                busy -= job.s            # (counted whole when it came)
                heappush(heaps[g], (vs[g] + job.s, seq, job))
                gn[g] += 1
                live[g] = None
                n += 1
            else:
                busy -= job.s
                job.callbacks = self._arrive_cb
                heappush(queue, (job.a, NORMAL, next(env._eid), job))
        self._fheap = []
        self._busy = busy
        self._n = n
        if n:
            self._reshare()
            self._arm(now)

    def _reshare(self) -> None:
        """The live groups' rates per job, after their jobs changed (classic mode)."""
        live, gn, rate = self._live, self._gn, self._rate
        n, cores = self._n, self.cores
        if n <= cores:
            for g in live:
                rate[g] = 1.0
        elif len(live) == 1:
            for g in live:
                rate[g] = cores / n
        elif len(live) == 2:              # the common case (share's, without its lists and sort)
            g1, g2 = live
            c1, c2 = gn[g1], gn[g2]
            half = cores / 2.0
            if c1 <= half:
                rate[g1], rate[g2] = 1.0, (cores - c1) / c2
            elif c2 <= half:
                rate[g1], rate[g2] = (cores - c2) / c1, 1.0
            else:
                rate[g1], rate[g2] = half / c1, half / c2
        else:
            for g, r in zip(live, share([gn[g] for g in live], cores)):
                rate[g] = r

    def _submit(self, job, now: float) -> None:
        # The clocks to now: each live group's virtual clock at its jobs' rate, and the core-seconds
        # done (all cores while the jobs are at least as many: water-filling leaves none idle).
        # Inline here and in _on_timer: they run for every job's start and end.
        dt = now - self._t
        if dt > 0.0 and self._n:
            vs, rates = self._v, self._rate
            for g in self._live:
                vs[g] += dt * rates[g]
            self._busy += dt * (self._n if self._n < self.cores else self.cores)
        self._t = now
        g = job.g
        entry = (self._v[g] + job.s, job.seq, job)
        heap = self._heap[g]
        heappush(heap, entry)
        self._gn[g] += 1
        live = self._live
        fresh = g not in live              # (its rate is from when it last had jobs)
        live[g] = None
        n = self._n = self._n + 1
        # While the jobs are no more than the cores every rate stays 1: the live timer stays right
        # if the new job is not first to end.
        if n > self.cores or fresh:
            self._reshare()
            self._arm(now)
        elif self._timer is None or heap[0] is entry:
            self._arm(now)

    def _arm(self, now: float) -> None:
        old = self._timer
        delay = None
        vs, rates, heaps = self._v, self._rate, self._heap
        for g in self._live:
            heap = heaps[g]
            if heap:
                d = (heap[0][0] - vs[g]) / rates[g]
                if delay is None or d < delay:
                    delay = d
        if delay is None:
            if old is not None:
                old.callbacks = _NOBODY    # superseded: the loop pops it and calls nobody
            self._timer = None
            return
        if old is None or old.callbacks is not None:
            if old is not None:
                old.callbacks = _NOBODY    # still queued: disarmed, as above
            old = self._timer = Wake()
        # else the timer that just fired (the loop emptied its callbacks): queued again, not remade
        later_on(self.env, delay if delay > 0.0 else 0.0, old, self._wake)

    def _on_timer(self, _timer) -> None:
        # Only the live timer calls this (_arm disarms the one it supersedes).
        now = self.env._now
        dt = now - self._t             # the clocks to now, as in _submit
        if dt > 0.0 and self._n:
            vs, rates = self._v, self._rate
            for g in self._live:
                vs[g] += dt * rates[g]
            self._busy += dt * (self._n if self._n < self.cores else self.cores)
        self._t = now
        cores = self.cores
        finished = []
        gn, live, heaps = self._gn, self._live, self._heap
        emptied = None
        for g in live:
            heap = heaps[g]
            v = self._v[g]
            limit = v + 1e-9 * (1.0 + v)      # (the virtual time is never negative)
            while heap and heap[0][0] <= limit:   # several may end together (rare): all first
                finished.append(heappop(heap)[2])
                gn[g] -= 1
            if not heap:
                emptied = [g] if emptied is None else emptied + [g]
        if emptied is not None:
            for g in emptied:
                del live[g]
        if not finished:
            self._arm(now)
            return
        if len(finished) > 1 and len(gn) > 1:
            finished.sort(key=lambda j: j.seq)
        n = self._n = self._n - len(finished)
        if n <= cores - _FREE_GAP:
            self._to_free(now)
        else:
            self._reshare()
            self._arm(now)
        if len(finished) > 1:
            self._ended_together(finished)
            return
        job = finished[0]          # after re-arming: its callback may submit new work here
        if job.done is not None:
            if job.tail is None:
                job.done(job.arg)
            else:
                later_on(self.env, job.tail, job, _FIRE)

    def _ended_together(self, finished: list) -> None:
        """Several jobs' continuations at one instant, in turn: the clock is held for all but
        the last, so that a loop resumed first does not run on past the others (engine.go_on)."""
        env = self.env
        hold = getattr(env, "_hold", False)      # (a plain simpy.Environment has none)
        last = len(finished) - 1
        for i, job in enumerate(finished):
            done = job.done
            if done is None:
                continue
            if job.tail is None:
                env._hold = hold or i < last
                done(job.arg)
            else:
                later_on(env, job.tail, job, _FIRE)
        env._hold = hold

    def _to_free(self, now: float) -> None:
        """No more jobs than cores left: each runs at rate 1 to its end, pushed now; the host's
        timer is disarmed."""
        old = self._timer
        if old is not None:
            if old.callbacks is not None:
                old.callbacks = _NOBODY
            self._timer = None
        self._free = True
        self._tev = now
        left = []
        for g in self._live:
            v = self._v[g]
            for vf, seq, job in self._heap[g]:
                left.append((vf - v, seq, job))
            self._heap[g] = []
            self._gn[g] = 0
        self._live.clear()
        self._n = 0
        fheap = self._fheap
        busy = self._busy
        for rest, seq, job in sorted(left, key=lambda e: (e[0], e[1])):
            job.s = rest = rest if rest > 0.0 else 0.0
            job.a = now
            job.f = f = now + rest
            busy += rest
            heappush(fheap, [f, seq, now, rest, job, job.g])
            if job.done is not None:
                self._push(job)
        self._busy = busy
