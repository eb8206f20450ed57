"""Which processes spend real Airflow's CPU per task try, and when (issue #11).

A sampler that runs beside a harness run (like scheduler_cpu.py) and an analysis of its output
against the harness's export.

    python bench/real_airflow/process_cpu.py sample OUT_DIR [--interval 0.05] [--seconds N] &
    python bench/real_airflow/harness.py ... run --matrix M --out OUT_DIR
    kill <sampler pid>                       # SIGTERM: flushes and exits
    python bench/real_airflow/process_cpu.py analyze OUT_DIR

``sample`` lists /proc every ``interval`` seconds. A process belongs to the benchmark if it runs
PostgreSQL, Redis, harness.py, Airflow or a Celery worker, or if its parent belongs (the sampler
itself does not); each gets a ROLE from its place in the process tree and its command line (re-read
when its name changes: setproctitle changes both; a role change is passed on to its children):

  scheduler, scheduler-child (e.g. the Celery executor's send pool), dag-manager, dag-processor,
  local-manager, local-worker, task-supervisor (``airflow tasks run --local`` or its fork),
  task-raw (``--raw`` or "airflow task runner"), task-cmd (bash, sleep, true), celery-main,
  celery-pool, pg-postmaster, pg-aux, pg-autovacuum, pg:<role of the client> (a backend: its
  client's socket is found in /proc/net/tcp and the client processes' fds), redis, harness,
  harness-psql (the harness's polling), cli (``airflow dags trigger``).

For each such process it reads /proc/PID/stat's utime + stime (all threads) and cutime + cstime:
a parent's cutime grows by the whole CPU of each child it reaps, so what a child used after its
last sample, and children that lived less than one interval, are recovered from the parent (they
are charged to the dead child, or to "<parent role>>unseen"; for the postmaster "pg:unseen").

Output in OUT_DIR:
  process_cpu.csv       t,role,cpu: CPU seconds each role used in the interval ending at t
                        (Unix time); rows "_busy" (the whole machine's busy CPU, /proc/stat:
                        user+nice+system+irq+softirq+steal) and "_self" (this sampler's own CPU)
                        every interval. Gzipped at the end when over 5 MB.
  process_cpu_pids.csv  one row per process: pid, ppid, role, first/last seen, CPU it was charged,
                        client pid (backends), command line (task processes name their try).

``analyze`` reads OUT_DIR's configuration folders (task_instances.csv, dag_runs.csv,
contention.csv) and the sampler's files (OUT_DIR's and any configuration folder's own, for a
configuration run again later) and prints the coverage (attributed vs machine busy, the sampler's
own CPU), (a) core-seconds per try by role over each clean run, (b) the chain's event-aligned
profile, (c) fan-outs per role per try across configurations, (d) the CPU charged to each try's
own processes (by the try named on their command lines). A run the harness marked clean is left
out when the CPU nobody was charged with exceeds 0.1 cores (another session's short processes).

Limits: a PostgreSQL backend whose connection closed before its client was found (most live
less than a tick: Airflow's task processes connect without a pool, about 15 connections a try,
and the harness polls with psql twice a second) is "pg:unresolved", its CPU still counted. The
sampler used 0.08-0.15 cores at 50 ms beside 2.10's runs on 2 cores. /proc/stat's busy time is
tick-sampled and per-process times are not, so busy - attributed - sampler can be slightly
negative over short windows. data/airflow-runs/process-cpu was recorded before two fixes: the
client of a backend is now looked for during RESOLVE_FOR (it was given up after one look, so some
long-lived pool connections were left unresolved), and a role change is passed on to children.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import os
import signal
import time
from pathlib import Path

from harness import HZ, busy_ticks    # the harness's /proc/stat reader (a script beside this one)
PG_PORT = 5433
#: when to give up on a backend's client (its connection may belong to a process not scanned yet)
RESOLVE_FOR = 1.0
#: a child's role from its parent's, whatever its title says (a fork keeps the parent's title
#: until it calls setproctitle)
CHILD_OF = {"local-worker": "task-supervisor", "celery-pool": "task-supervisor",
            "task-supervisor": "task-raw", "task-raw": "task-cmd", "task-cmd": "task-cmd",
            "dag-manager": "dag-processor", "celery-main": "celery-pool", "cli": "cli",
            "harness-psql": "harness-psql"}
#: what a child never seen alive is charged to, by its parent's role
UNSEEN = {**CHILD_OF, "pg-postmaster": "pg:unseen", "harness": "harness-psql", "scheduler": "scheduler-child",
          "local-manager": "local-manager"}


# -- sampling ------------------------------------------------------------------------------------
def _read(path: str, size: int) -> bytes:
    """One read of a /proc file (os.open/os.read: no buffered file object per sample)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def read_stat(pid: int):
    """(comm, ppid, own ticks, reaped children's ticks, starttime) of a process, or None once gone."""
    try:
        data = _read(f"/proc/{pid}/stat", 2048)
        r = data.rfind(b")")
        f = data[r + 2:].split()
        return (data[data.find(b"(") + 1:r].decode(errors="replace"), int(f[1]),
                int(f[11]) + int(f[12]), int(f[13]) + int(f[14]), int(f[19]))
    except (OSError, IndexError, ValueError):
        return None


def read_cmd(pid: int) -> str:
    try:
        data = _read(f"/proc/{pid}/cmdline", 4096)
    except OSError:
        return ""
    return data.replace(b"\0", b" ").decode(errors="replace").strip()


def self_ticks() -> int:
    t = os.times()
    return round((t.user + t.system) * HZ)


class Proc:
    __slots__ = ("pid", "ppid", "start", "comm", "cmd", "role", "own", "cut", "bal", "pending",
                 "first", "last", "cmd_at", "charged", "client", "dead_kids", "fd_at")

    def __init__(self, pid, st, cmd, now):
        self.pid, (self.comm, self.ppid, self.own, self.cut, self.start) = pid, st
        self.cmd = cmd or self.comm
        self.role = "?"
        self.bal = 0            # reaped children's ticks seen in cut, less what their own samples held
        self.pending = 0        # the positive balance at the last tick (charged if it stays a tick)
        self.first = self.last = self.cmd_at = now
        self.charged = 0        # ticks charged to this process (own deltas + recovered)
        self.client = 0         # a PostgreSQL backend's client pid
        self.dead_kids: list[tuple[int, int]] = []    # (tick, pid) of children that died lately
        self.fd_at = 0.0        # when its fds were last scanned for sockets


def is_root(p: Proc) -> bool:
    """A process of the benchmark whatever its parent: PostgreSQL, Redis, the harness, Airflow, a
    Celery worker (by the program it runs, not by words anywhere on its command line)."""
    if p.comm == "postgres" or p.comm.startswith("redis-server"):
        return True
    argv = p.cmd.split()[:3]
    return any(a.endswith("harness.py") or a.endswith("/bin/airflow") or a == "airflow" for a in argv) \
        or p.cmd.startswith("[celeryd:")


def classify(p: Proc, parent: Proc | None) -> str:
    """A process's role from its parent's role and its command line (title)."""
    cmd, prole = p.cmd or p.comm, parent.role if parent else ""
    if "harness.py" in cmd:
        return "harness"
    if prole in CHILD_OF and not (prole == "task-raw" and "airflow" in cmd):
        return CHILD_OF[prole]
    if prole == "harness":
        if p.comm == "psql" or cmd.startswith("psql"):
            return "harness-psql"
        if "airflow scheduler" in cmd:
            return "scheduler"
        if "celery" in cmd and "worker" in cmd:
            return "celery-main"
        if "airflow" in cmd:
            return "cli"
        return "harness-child"
    if prole.startswith("pg"):                              # a postmaster's child
        if not cmd.startswith("postgres: "):
            return "pg:?"                                   # not retitled yet
        rest = cmd[10:]
        if "127.0.0.1(" in rest or "[local]" in rest:       # a backend: its client decides
            return p.role if p.role.startswith("pg:") else "pg:?"
        return "pg-autovacuum" if "autovacuum worker" in rest else "pg-aux"
    if p.comm == "postgres" or "bin/postgres" in cmd:
        return "pg-postmaster"
    if "redis-server" in cmd:
        return "redis"
    if "DagFileProcessorManager" in cmd:
        return "dag-manager"
    if "DagFileProcessor" in cmd:
        return "dag-processor"
    if "airflow executor -- LocalExecutor" in cmd:
        return "local-manager"
    if "airflow worker -- LocalExecutor" in cmd:
        return "local-worker"
    if "airflow task supervisor" in cmd or ("tasks run" in cmd and "--local" in cmd):
        return "task-supervisor"
    if "airflow task runner" in cmd or ("tasks run" in cmd and "--raw" in cmd):
        return "task-raw"
    if prole in ("scheduler", "scheduler-child"):
        return "scheduler-child"
    if "airflow scheduler" in cmd:
        return "scheduler"
    if "celery" in cmd:
        return "celery-main"
    if "airflow" in cmd:
        return "cli"
    return f"{prole}>child" if prole else "misc"


class Sampler:
    """Per-role CPU every tick (see the module's docstring)."""

    def __init__(self, out: Path):
        self.procs: dict[int, Proc] = {}
        self.ignored: dict[int, float] = {}                 # pid -> when first seen
        self.me = os.getpid()
        self.rows = open(out / "process_cpu.csv", "w", buffering=1 << 16)
        self.rows.write("t,role,cpu\n")
        self.pidf = open(out / "process_cpu_pids.csv", "w", newline="")
        self.pidw = csv.writer(self.pidf)
        self.pidw.writerow(["pid", "ppid", "role", "first_seen", "last_seen", "cpu", "client_pid", "cmd"])
        self.graveyard: dict[int, tuple[int, Proc]] = {}    # pid -> (tick of death, proc)
        self.sock_owner: dict[int, int] = {}                # socket inode -> pid
        self.tick = 0
        self.buffer = None                                  # the last tick: (t, {pid: ticks}, busy, self)

    # -- PostgreSQL backends: whose client? ------------------------------------------------------
    @staticmethod
    def _tcp() -> tuple[dict[int, int], dict[int, int]]:
        """Loopback connections to PostgreSQL: ({client port: client socket inode},
        {server socket inode: client port}); inode 0 is a socket its process has closed."""
        clients, servers, want = {}, {}, b":%04X" % PG_PORT
        try:
            with open("/proc/net/tcp", "rb") as f:
                next(f)
                for line in f:
                    if want not in line:
                        continue
                    x = line.split()
                    if x[2].endswith(want) and x[1].startswith(b"0100007F:"):
                        clients[int(x[1][9:], 16)] = int(x[9])
                    elif x[1].endswith(want) and x[2].startswith(b"0100007F:"):
                        servers[int(x[9])] = int(x[2][9:], 16)
        except OSError:
            pass
        return clients, servers

    def _socket_inodes(self, pid: int) -> list[int]:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return []
        out = []
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.append(int(link[8:-1]))
        return out

    def _resolve_backends(self, backends: list[Proc], now: float) -> None:
        """A backend's client: its port from its title (or, before PostgreSQL retitles it, from its
        own socket's peer), that port's socket inode, the tracked process holding that inode."""
        clients, servers = self._tcp()
        scanned: set[int] = set()
        cands = None
        for b in backends:
            port = None
            if "127.0.0.1(" in b.cmd:
                try:
                    port = int(b.cmd.split("127.0.0.1(", 1)[1].split(")", 1)[0])
                except (IndexError, ValueError):
                    port = None
            if port is None:
                port = next((servers[i] for i in self._socket_inodes(b.pid) if i in servers), None)
                if port is None:
                    if now - b.first > RESOLVE_FOR:
                        b.role = "pg:gone"
                    continue
            inode = clients.get(port)
            if not inode:                           # closed (or TIME_WAIT) before we looked
                b.role = "pg:gone"
                continue
            owner = self.sock_owner.get(inode)
            if owner is None:
                if cands is None:                   # newest first: most connections are new processes'
                    cands = sorted((p for p in self.procs.values() if not p.role.startswith("pg")
                                    and p.role not in ("redis", "task-cmd")), key=lambda p: -p.first)
                for c in cands:
                    # new processes every time, old ones (few new connections) five times a second
                    if c.pid not in scanned and (now - c.first < 3.0 or now - c.fd_at > 0.2):
                        scanned.add(c.pid)
                        c.fd_at = now
                        for i in self._socket_inodes(c.pid):
                            self.sock_owner.setdefault(i, c.pid)
                        if inode in self.sock_owner:
                            break
                owner = self.sock_owner.get(inode)
            cp = self.procs.get(owner) if owner else None
            if cp is None and now - b.first <= RESOLVE_FOR:
                continue                            # again next tick
            b.client = owner or 0
            b.role = f"pg:{cp.role}" if cp else "pg:unknown"

    # -- one tick ---------------------------------------------------------------------------------
    def step(self, now: float, busy: int, me: int) -> None:
        listing = {int(x) for x in os.listdir("/proc") if x.isdigit()}
        for pid in [pid for pid in self.ignored if pid not in listing]:
            del self.ignored[pid]
        deltas: dict[int, int] = {}
        dead: list[Proc] = []
        for pid, p in list(self.procs.items()):
            st = read_stat(pid) if pid in listing else None
            if st is None or st[4] != p.start:
                dead.append(p)
                del self.procs[pid]
                continue
            comm, ppid, own, cut, _ = st
            if own != p.own:
                deltas[pid] = own - p.own
                p.charged += own - p.own
            p.bal += cut - p.cut
            p.own, p.cut, p.last, p.ppid = own, cut, now, ppid
            if comm != p.comm or p.role == "pg:?" or now - p.cmd_at > 2.0:
                cmd = read_cmd(pid)
                if cmd and cmd != p.cmd:
                    p.cmd = cmd
                    self._reclassify(p)
                p.comm, p.cmd_at = comm, now
        # new processes, and young ignored ones again (a fork may exec into ours after its first look)
        new = [pid for pid in listing if pid not in self.procs and
               (pid not in self.ignored or now - self.ignored[pid] < 1.0)]
        fresh = []
        for pid in new:
            st = read_stat(pid)
            if st is not None:
                fresh.append(Proc(pid, st, read_cmd(pid), now))
        for p in sorted(fresh, key=lambda p: p.start):       # parents before their children
            parent = self.procs.get(p.ppid)
            if p.pid == self.me or "process_cpu.py" in p.cmd or (parent is None and not is_root(p)):
                self.ignored.setdefault(p.pid, now)
                continue
            self.ignored.pop(p.pid, None)
            p.role = classify(p, parent)
            self.procs[p.pid] = p
            if self.tick > 0:                  # born since the last tick: all its CPU is new
                if p.own:
                    deltas[p.pid] = p.own
                p.charged = p.own
                p.bal = p.cut                  # children it reaped before we saw it
        # deaths, children first: what each one's samples held (its own and its reaped children's)
        # is in its parent's cut now or soon, and must not be charged twice
        dead_by_pid = {p.pid: p for p in dead}
        for p in sorted(dead, key=lambda p: -p.start):
            held = p.own + p.cut - p.bal
            parent = self.procs.get(p.ppid) or dead_by_pid.get(p.ppid)
            if parent is not None:
                parent.bal -= held
                parent.dead_kids.append((self.tick, p.pid))
            self.graveyard[p.pid] = (self.tick, p)
        backends = [p for p in self.procs.values() if p.role == "pg:?"]
        if backends:
            self._resolve_backends(backends, now)
        # recovered CPU: reaped children's CPU no sample of theirs held, once it has stayed
        # unexplained for a tick (a child can be reaped between its read and its parent's);
        # charged to the child that died last, else to an unseen child, in the last tick's row
        extra: dict = {}
        for p in self.procs.values():
            if p.bal > 0 and p.pending > 0:
                rem = min(p.pending, p.bal)
                p.bal -= rem
                kids = [pid for tick, pid in p.dead_kids if self.tick - tick <= 2]
                key = kids[-1] if kids else ("unseen", p.role)
                extra[key] = extra.get(key, 0) + rem
            p.pending = max(p.bal, 0)
            if p.dead_kids and self.tick - p.dead_kids[0][0] > 2:
                p.dead_kids = [k for k in p.dead_kids if self.tick - k[0] <= 2]
        self._flush(extra)
        self.buffer = (now, deltas, busy, me)
        self.tick += 1
        if self.tick % 1200 == 0:
            self.sock_owner = {k: v for k, v in self.sock_owner.items() if v in self.procs}

    def _reclassify(self, p: Proc) -> None:
        """A process's role again, and its children's if it changed (a child's role can follow
        from its parent's)."""
        old, p.role = p.role, classify(p, self.procs.get(p.ppid))
        if p.role != old:
            for c in [c for c in self.procs.values() if c.ppid == p.pid and c is not p]:
                self._reclassify(c)

    def _proc(self, pid):
        return self.procs.get(pid) or (self.graveyard[pid][1] if pid in self.graveyard else None)

    def _flush(self, extra: dict) -> None:
        if self.buffer is not None:
            t, deltas, busy, me = self.buffer
            by_role: dict[str, int] = {}
            for pid, d in deltas.items():
                p = self._proc(pid)
                r = p.role if p else "?"
                by_role[r] = by_role.get(r, 0) + d
            for key, d in extra.items():
                if isinstance(key, tuple):
                    r = UNSEEN.get(key[1], f"{key[1]}>unseen")
                else:
                    p = self._proc(key)
                    r = p.role if p else "?"
                    if p:
                        p.charged += d
                by_role[r] = by_role.get(r, 0) + d
            w = self.rows.write
            w(f"{t:.3f},_busy,{busy / HZ:.2f}\n{t:.3f},_self,{me / HZ:.2f}\n")
            for r, d in by_role.items():
                w(f"{t:.3f},{r},{d / HZ:.2f}\n")
        for pid, (tick, p) in list(self.graveyard.items()):
            if self.tick - tick >= 4:
                self._write_pid(p)
                del self.graveyard[pid]

    def _write_pid(self, p: Proc) -> None:
        self.pidw.writerow([p.pid, p.ppid, p.role, f"{p.first:.3f}", f"{p.last:.3f}",
                            f"{p.charged / HZ:.2f}", p.client or "", (p.cmd or p.comm)[:300]])

    def close(self) -> None:
        self._flush({})
        for _, p in self.graveyard.values():
            self._write_pid(p)
        for p in self.procs.values():
            self._write_pid(p)
        self.rows.close()
        self.pidf.close()


def cmd_sample(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = Sampler(out)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    end = time.time() + args.seconds if args.seconds else float("inf")
    busy0, me0 = busy_ticks(), self_ticks()
    nxt = time.monotonic()
    while not stop and time.time() < end:
        now = time.time()
        b, m = busy_ticks(), self_ticks()
        s.step(now, b - busy0, m - me0)
        busy0, me0 = b, m
        nxt += args.interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()
    s.close()
    f = out / "process_cpu.csv"
    if f.stat().st_size > 5_000_000:
        with open(f, "rb") as src, gzip.open(str(f) + ".gz", "wb", compresslevel=6) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        f.unlink()
    return 0


# -- analysis -------------------------------------------------------------------------------------
ORDER = ["scheduler", "scheduler-child", "dag-manager", "dag-processor", "local-manager", "local-worker",
         "celery-main", "celery-pool", "task-supervisor", "task-raw", "task-cmd",
         "pg:scheduler", "pg:scheduler-child", "pg:dag-manager", "pg:dag-processor", "pg:local-worker",
         "pg:celery-main", "pg:celery-pool", "pg:task-supervisor", "pg:task-raw",
         "pg:harness-psql", "pg:cli", "pg:unresolved",
         "pg-aux", "pg-autovacuum", "pg-postmaster", "redis", "harness", "harness-psql", "harness-child", "cli"]
TOTALS = ["ATTRIBUTED", "UNATTRIBUTED", "_self", "_busy"]
LABEL = {"ATTRIBUTED": "= attributed (sum)", "UNATTRIBUTED": "busy-attr-self", "_self": "sampler itself",
         "_busy": "machine busy"}
TRY_ROLES = ("task-supervisor", "task-raw", "task-cmd", "pg:task-supervisor", "pg:task-raw")


def _files(folder: Path, name: str) -> list[Path]:
    """The sampler's files in a results folder and in its configuration folders (a configuration run
    again later, with a sampler of its own), plain or gzipped."""
    out = []
    for d in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        f = d / name
        out += [f] if f.exists() else [Path(str(f) + ".gz")] if Path(str(f) + ".gz").exists() else []
    return [f for f in out if f.stat().st_size > 100]      # (a sampler still running has written nothing)


class Series:
    """Each role's cumulative CPU over time, linear within a tick: cpu(a, b) for windows."""

    def __init__(self, folder: Path):
        import numpy as np
        import pandas as pd
        d = pd.concat([pd.read_csv(f) for f in _files(folder, "process_cpu.csv")], ignore_index=True)
        # backends whose client was not found: most lived less than a tick or two (a connection
        # opened and closed between samples: Airflow's task processes use no pool, the harness polls
        # with psql), so their client had closed its socket before we looked
        d["role"] = d["role"].replace({r: "pg:unresolved" for r in ("pg:unseen", "pg:gone", "pg:unknown", "pg:?")})
        piv = d.pivot_table(index="t", columns="role", values="cpu", aggfunc="sum", fill_value=0.0)
        piv["ATTRIBUTED"] = piv[[c for c in piv.columns if not c.startswith("_")]].sum(axis=1)
        piv["UNATTRIBUTED"] = piv["_busy"] - piv["ATTRIBUTED"] - piv["_self"]
        t = piv.index.to_numpy(dtype=float)
        step = float(np.median(np.diff(t))) if len(t) > 1 else 0.05
        self.t = np.concatenate([[t[0] - step], t])
        self.cum = np.vstack([np.zeros(len(piv.columns)), piv.cumsum().to_numpy()])
        self.roles = list(piv.columns)
        self.step = step

    def cpu(self, a, b):
        """{role: array of CPU seconds in [a_i, b_i)}."""
        import numpy as np
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        out = {}
        for i, r in enumerate(self.roles):
            c = self.cum[:, i]
            out[r] = np.interp(np.maximum(b, a), self.t, c) - np.interp(a, self.t, c)
        return out


def _epoch(s):
    import pandas as pd
    t = pd.to_datetime(s, format="ISO8601", utc=True)
    return (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


SERIES: list = []
UNATTRIBUTED_LIMIT = 0.1
_WARNED: set = set()


def _load_config(folder: Path):
    import pandas as pd
    tis = pd.read_csv(folder / "task_instances.csv")
    drs = pd.read_csv(folder / "dag_runs.csv")
    cont = pd.read_csv(folder / "contention.csv")
    for c in ("queued_dttm", "start_date", "end_date"):
        tis[c] = _epoch(tis[c])
    for c in ("queued_at", "start_date", "end_date"):
        drs[c] = _epoch(drs[c])
    clean = set(cont.loc[cont["clean"] == "yes", "run_id"])
    if SERIES:                   # stricter: what the sampler could not attribute stayed small
        ok = drs[drs["run_id"].isin(clean)]
        w = SERIES[0].cpu(ok["queued_at"], ok["end_date"])
        un = w["UNATTRIBUTED"] / (ok["end_date"] - ok["queued_at"]).to_numpy()
        bad = set(ok["run_id"][un > UNATTRIBUTED_LIMIT])
        if bad and folder not in _WARNED:
            _WARNED.add(folder)
            print(f"  {folder.name}: left out (unattributed CPU over {UNATTRIBUTED_LIMIT} cores, "
                  "something else ran): " + ", ".join(f"{r} ({u:.2f})" for r, u in zip(ok["run_id"], un) if r in bad))
        clean -= bad
    base = cont.loc[cont["run_id"].str.startswith("(baseline"), "busy_cores_mean"]
    return tis, drs, cont, clean, float(base.iloc[0]) if len(base) else float("nan")


def _roles_present(tables: list[dict], floor: float = 0.004) -> list[str]:
    seen = set().union(*[t.keys() for t in tables]) if tables else set()
    keep = [r for r in seen if not r.startswith("_") and r not in TOTALS
            and max(abs(t.get(r, 0.0)) for t in tables) >= floor]
    return sorted(keep, key=lambda r: (ORDER.index(r) if r in ORDER else len(ORDER), r)) + TOTALS


def _print_table(title: str, cols: list[str], tables: list[dict], extra_rows: list[tuple] = (), width=9) -> None:
    print(f"\n{title}")
    print(f"{'role':22s}" + "".join(f"{c:>{width}s}" for c in cols))
    for r in _roles_present(tables):
        print(f"{LABEL.get(r, r):22s}" + "".join(
            f"{t[r]:{width}.3f}" if r in t else f"{'-':>{width}s}" for t in tables))
    for name, vals in extra_rows:
        print(f"{name:22s}" + "".join(f"{v:{width}.3f}" if isinstance(v, float) else f"{v!s:>{width}s}"
                                      for v in vals))


def _registry(folder: Path):
    """process_cpu_pids.csv with each task process's try (dag, task, run) and each backend's client."""
    import re
    import pandas as pd
    p = pd.concat([pd.read_csv(f, keep_default_na=False) for f in _files(folder, "process_cpu_pids.csv")],
                  ignore_index=True)
    p["client_pid"] = pd.to_numeric(p["client_pid"], errors="coerce")
    key = [None] * len(p)
    sup = re.compile(r"'tasks', 'run', '([^']+)', '([^']+)', '([^']+)'")
    raw = re.compile(r"airflow task runner: (\S+) (\S+) (\S+)")
    for i, cmd in enumerate(p["cmd"]):
        m = sup.search(cmd) or raw.search(cmd)
        if m:
            key[i] = m.groups()
    p["key"] = key
    by_pid: dict = {}
    for i, row in enumerate(p.itertuples()):
        by_pid.setdefault(row.pid, []).append(i)

    def find(pid, at):
        for i in by_pid.get(pid, []):
            if p.at[i, "first_seen"] - 0.2 <= at <= p.at[i, "last_seen"] + 0.5:
                return i
        return None
    # a task-cmd's try is its raw parent's; a backend's its client's (two passes: cmd -> raw first)
    for _ in range(2):
        for i in range(len(p)):
            if p.at[i, "key"] is None:
                j = None
                if p.at[i, "role"] == "task-cmd":
                    j = find(p.at[i, "ppid"], p.at[i, "first_seen"])
                elif str(p.at[i, "role"]).startswith("pg:") and p.at[i, "client_pid"] == p.at[i, "client_pid"]:
                    j = find(int(p.at[i, "client_pid"]), p.at[i, "first_seen"])
                if j is not None:
                    p.at[i, "key"] = p.at[j, "key"]
    return p


def cmd_analyze(args) -> int:
    import numpy as np
    import pandas as pd
    root = Path(args.folder)
    s = Series(root)
    SERIES[:] = [s]
    reg = _registry(root)
    configs = [f for f in sorted(root.iterdir()) if (f / "task_instances.csv").exists()]
    print(f"sampler: {root}, tick {s.step * 1000:.0f} ms (median)")
    per_try: dict = {}        # (config, dag) -> {role: mean core-s per try}
    info: dict = {}
    idle: dict = {}
    cover_rows = []
    for folder in configs:
        tis, drs, cont, clean, base = _load_config(folder)
        cfg = folder.name
        # idle rates: the quiet seconds after each run (the harness sleeps 3 s before the next trigger)
        ends = drs["end_date"].to_numpy()
        w = s.cpu(ends + 1.0, ends + 3.0)
        idle[cfg] = {r: float(v.sum() / (2.0 * len(ends))) for r, v in w.items()}
        # coverage over the clean runs' windows
        ok = drs[drs["run_id"].isin(clean)]
        w = s.cpu(ok["queued_at"], ok["end_date"])
        tot = {r: float(v.sum()) for r, v in w.items()}
        secs = float((ok["end_date"] - ok["queued_at"]).sum())
        cover_rows.append((cfg, secs, tot))
        for dag, g in ok.groupby("dag_id"):
            n = tis[tis["run_id"].isin(g["run_id"])].groupby("run_id").size().reindex(g["run_id"]).to_numpy()
            w = s.cpu(g["queued_at"], g["end_date"])
            per_try[(cfg, dag)] = {r: float(np.mean(v / n)) for r, v in w.items()}
            w1 = s.cpu(g["queued_at"], g["end_date"] + 1.0)
            sec = (g["end_date"] - g["queued_at"]).to_numpy()
            c = cont.set_index("run_id").loc[g["run_id"]]
            info[(cfg, dag)] = {
                "runs": len(g), "tries": float(n.mean()), "window": float(sec.mean()),
                "busy+1s-base": float(np.mean((w1["_busy"] - base * (sec + 1.0)) / n)),
                "attr+1s": float(np.mean(w1["ATTRIBUTED"] / n)),
                "harness1s": float(np.mean((c["busy_cores_mean"] - base) * c["n_samples_1s"] / n)),
                "idle-rate": float(np.mean(sum(idle[cfg][r] for r in idle[cfg]
                                                if not r.startswith("_") and r not in TOTALS) * sec / n)),
            }

    print("\nCOVERAGE over the clean runs' windows [queued_at, end_date] (core-seconds; cores = / seconds)")
    print(f"{'config':18s}{'seconds':>9s}{'busy':>9s}{'attrib':>9s}{'attr/busy':>10s}{'sampler':>9s}"
          f"{'sampler cores':>14s}{'unattrib':>9s}")
    for cfg, secs, tot in cover_rows:
        print(f"{cfg:18s}{secs:9.1f}{tot['_busy']:9.2f}{tot['ATTRIBUTED']:9.2f}"
              f"{tot['ATTRIBUTED'] / tot['_busy']:10.3f}{tot['_self']:9.2f}{tot['_self'] / secs:14.3f}"
              f"{tot['UNATTRIBUTED']:9.2f}")

    cfgs = [f.name for f in configs]
    _print_table("IDLE cores per role (the 2 s from end_date+1 to +3 after each run; scheduler etc. idle)",
                 cfgs, [idle[c] for c in cfgs])

    dags = sorted({d for _, d in per_try}, key=lambda d: ["diamond", "chain", "fanout", "fanout0"].index(d)
                  if d in ("diamond", "chain", "fanout", "fanout0") else 9)
    for dag in dags:
        cols = [c for c in cfgs if (c, dag) in per_try]
        extra = [(k, [info[(c, dag)][k] for c in cols]) for k in
                 ("runs", "tries", "window", "idle-rate", "busy+1s-base", "attr+1s", "harness1s")]
        _print_table(f"(a) {dag}: core-seconds PER TRY by role over each clean run [queued_at, end_date], "
                     "mean of runs", cols, [per_try[(c, dag)] for c in cols], extra)
    print("  idle-rate: the roles' idle cores x window / tries;  busy+1s-base: machine busy over "
          "[queued_at, end_date+1) less the harness baseline;\n  attr+1s: attributed over the same;  "
          "harness1s: the harness's 1 s samples (contention.csv), as tests/test_fidelity_mechanisms.py reads them")

    # (c) fan-outs across configurations
    for dag in ("fanout", "fanout0"):
        cols = [c for c in cfgs if (c, dag) in per_try]
        if not cols:
            continue
        tabs = [per_try[(c, dag)] for c in cols]
        c8 = next((c for c in cols if c.endswith("c8")), None)
        c16 = next((c for c in cols if c.endswith("c16")), None)
        if c8 and c16:
            a, b = per_try[(c8, dag)], per_try[(c16, dag)]
            tabs.append({r: b.get(r, 0.0) - a.get(r, 0.0) for r in set(a) | set(b)})
            cols = cols + ["c16-c8"]
        _print_table(f"(c) {dag}: core-seconds per try by role", cols, tabs)

    # (d) each try's own processes, from the process registry
    print("\n(d) each try's own processes (process_cpu_pids.csv; CPU charged to the processes of that try), "
          "mean core-seconds per try")
    print(f"{'config':18s}{'dag':9s}{'tries':>6s}" + "".join(f"{r:>19s}" for r in TRY_ROLES) + f"{'sum':>8s}")
    reg_t = reg[reg["key"].notna()].copy()
    reg_t["dag"] = [k[0] for k in reg_t["key"]]
    reg_t["run"] = [k[2] for k in reg_t["key"]]
    for folder in configs:
        tis, drs, cont, clean, base = _load_config(folder)
        for dag in dags:
            runs = set(drs[(drs["dag_id"] == dag) & drs["run_id"].isin(clean)]["run_id"])
            n = len(tis[tis["run_id"].isin(runs)])
            if not n:
                continue
            sub = reg_t[reg_t["run"].isin(runs)]
            vals = [float(sub.loc[sub["role"] == r, "cpu"].sum()) / n for r in TRY_ROLES]
            print(f"{folder.name:18s}{dag:9s}{n:6d}" + "".join(f"{v:19.3f}" for v in vals) + f"{sum(vals):8.3f}")

    # (b) the chain, event-aligned
    names = ["[q-.5,q)", "[q,s)", "[s,e)", "[e,+.25)", "[+.25,+.5)", "[+.5,+1)", "[+1,nq)", "sum[q,nq)"]
    for folder in configs:
        tis, drs, cont, clean, base = _load_config(folder)
        runs = drs[(drs["dag_id"] == "chain") & drs["run_id"].isin(clean)]["run_id"]
        t = tis[tis["run_id"].isin(runs)].sort_values(["run_id", "queued_dttm"])
        if t.empty:
            continue
        nq = t.groupby("run_id")["queued_dttm"].shift(-1).to_numpy()
        q, st, e = t["queued_dttm"].to_numpy(), t["start_date"].to_numpy(), t["end_date"].to_numpy()
        m = ~np.isnan(nq)                   # tries with a next one (all but each run's last)
        q, st, e, nq = q[m], st[m], e[m], nq[m]
        # after the end: clipped at the next try's queueing, so [q, s) ... [+1, next q) cover [q, next q)
        c = lambda x: np.minimum(x, nq)   # noqa: E731
        edges = [(q - .5, q), (q, st), (st, e), (e, c(e + .25)), (c(e + .25), c(e + .5)), (c(e + .5), c(e + 1.0)),
                 (c(e + 1.0), nq), (q, nq)]
        tabs = []
        for a, b in edges:
            w = s.cpu(a, b)
            tabs.append({r: float(v.mean()) for r, v in w.items()})
        lens = [float(np.mean(b - a)) for a, b in edges]
        _print_table(f"(b) chain, {folder.name}: mean core-seconds per try in windows around it "
                     f"({m.sum()} tries with a next one; q queued, s start, e end)", names, tabs,
                     [("window length s", lens), ("next q - e, median", [float(np.median(nq - e))] + [""] * 7),
                      ("share next q < e+1", [float(np.mean(nq < e + 1.0))] + [""] * 7),
                      ("idle sched cores", [idle[folder.name].get("scheduler", 0.0)] + [""] * 7)], width=11)
        # when the try's own processes live, relative to its timestamps
        sub = reg_t[reg_t["run"].isin(set(runs))]
        tt = t.assign(key=list(zip(t["dag_id"], t["task_id"], t["run_id"]))).set_index("key")
        for role in ("task-supervisor", "task-raw", "task-cmd"):
            r = sub[sub["role"] == role]
            k = [x for x in r["key"] if x in tt.index]
            if not k:
                continue
            rr = r[r["key"].isin(k)]
            ref = tt.loc[list(rr["key"])]
            first, last = rr["first_seen"].to_numpy(), rr["last_seen"].to_numpy()
            print(f"  {role:16s} n={len(rr):3d}  first seen - queued "
                  f"{np.median(first - ref['queued_dttm'].to_numpy()):+.3f} s, "
                  f"- start {np.median(first - ref['start_date'].to_numpy()):+.3f} s;  "
                  f"last seen - end {np.median(last - ref['end_date'].to_numpy()):+.3f} s  (medians)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="process_cpu.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="sample per-process CPU beside a harness run")
    s.add_argument("out", help="folder for process_cpu.csv and process_cpu_pids.csv")
    s.add_argument("--interval", type=float, default=0.05)
    s.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: on SIGTERM)")
    a = sub.add_parser("analyze", help="per role and phase of each try, from a harness results folder")
    a.add_argument("folder")
    args = p.parse_args(argv)
    return {"sample": cmd_sample, "analyze": cmd_analyze}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
