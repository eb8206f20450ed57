"""Measure real Apache Airflow on this machine: the ground truth the simulator is fitted to and
cross-validated against (issue #11). Not run by CI: a configuration takes minutes.

    python bench/real_airflow/harness.py setup                       # once: Airflow 2.10, PostgreSQL, Redis
    python bench/real_airflow/harness.py run --matrix bench/real_airflow/matrices/af210-wide.yaml \\
        --out data/airflow-runs/af210-wide
    python bench/real_airflow/harness.py analyze data/airflow-runs/af210-wide
    python bench/real_airflow/harness.py stop                        # every process it started, by PID

Everything lives in a work folder (``--workdir``, default ~/.cache/sim-real-airflow): the Airflow
virtualenv, a PostgreSQL cluster of its own on 127.0.0.1:5433 (trust auth), Redis on
127.0.0.1:6379 without persistence, AIRFLOW_HOME and the logs. Servers bind to the loopback only;
the scheduler and workers run with --skip-serve-logs (otherwise they serve logs on 0.0.0.0).

``run`` does, per configuration of the matrix: start PostgreSQL and Redis if needed, record a
quiet baseline, write Airflow's effective settings to ``config.txt``, make the matrix's ``pools``
(exported to ``pools.json``), start the Celery workers and the scheduler, trigger each DAG
``runs`` times (round-robin; ``concurrent_runs`` at once for overlapping load), wait for each run
to end, and export the ``task_instance`` and ``dag_run`` rows in the layout
``sim.importers.airflow_export`` reads. Run it with the project's Python (the logs' analyses need
NumPy and pandas); the Airflow commands run in the work folder's virtualenv. A sampler reads /proc
every second; a run during which other processes used 0.3 cores or more on average is marked
unclean in ``contention.csv`` and run again (at most ``max_reruns`` times). ``machine.yaml``
records the session (one ``run`` invocation) and a CPU probe before and after: the same VM type
was 10 % faster in one session than in another, and calibration fits each session's speed. Every
process is stopped by PID, also on Ctrl-C or failure.

Pins (Airflow's constraints file cannot be fetched here): celery 5.4.0, kombu 5.4.2 and
apache-airflow-providers-celery 3.10.0, because the newest celery an unconstrained install brings
(5.5+) breaks the 2.10 provider's worker start-up (found by ../shared/reference/real-airflow-recipe).
For Airflow 3: celery 5.5.3 and kombu 5.5.x, because celery 5.7 (what an unconstrained install
brought) removed ``retry`` from ``celery.backends.database``, which the 3.x celery provider
(3.26.0) imports at worker start-up; the provider then reports the ImportError as "Failed to
import providers_configuration_loaded" (worker log, 2026-12-05). The provider needs celery>=5.5.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
PG_PORT, REDIS_PORT = 5433, 6379
PG_BIN = "/usr/lib/postgresql/{v}/bin"
OURS = ("airflow", "celery", "postgres", "redis", "sleep", "bash -c", "harness.py")
TIMESTAMP_TYPES = ("timestamp with time zone", "timestamp without time zone")
#: Linux's group scheduling by session: with it on, the scheduler, each Celery worker and PostgreSQL
#: (each started in a session of its own) share the cores as groups first (a matrix may set it)
AUTOGROUP = "/proc/sys/kernel/sched_autogroup_enabled"
PINS = ["celery[redis]==5.4.0", "kombu==5.4.2", "apache-airflow-providers-celery==3.10.0"]
PINS3 = ["celery[redis]==5.5.3", "kombu>=5.5,<5.6"]
#: Each Airflow version in a virtualenv, AIRFLOW_HOME and database of its own (the recipe's
#: layout): 3.x also needs asyncpg (its API server's async DB access) and psycopg2 for Celery's
#: result backend, and its DAG file imports from airflow.sdk and the standard provider
#: (dag_file_text rewrites bench_dags.py's imports, so the DAGs stay one file).
VERSIONS = {
    "2.10": {"venv": "venv210", "home": "airflow_home", "db": "airflow", "broker_db": 0,
             "pip": ["apache-airflow[postgres,celery]==2.10.*"], "pins": PINS},
    "3": {"venv": "venv3", "home": "airflow3_home", "db": "airflow3", "broker_db": 1,
          "pip": ["apache-airflow[postgres,celery]==3.*", "asyncpg", "psycopg2-binary"], "pins": PINS3},
}
V = dict(VERSIONS["2.10"])          # the version in use (set by `setup --airflow` and by a matrix)


#: bench_dags.py's imports -> Airflow 3's (the DAGs themselves are the same).
AF3_IMPORTS = {"from airflow import DAG": "from airflow.sdk import DAG",
               "from airflow.operators.bash import BashOperator":
                   "from airflow.providers.standard.operators.bash import BashOperator",
               "from airflow.operators.python import PythonOperator":
                   "from airflow.providers.standard.operators.python import PythonOperator",
               "from airflow.sensors.python import PythonSensor":
                   "from airflow.providers.standard.sensors.python import PythonSensor"}


def dag_file_text() -> str:
    """The benchmark DAG file for the Airflow version in use."""
    text = (HERE / "bench_dags.py").read_text()
    if V["venv"] == "venv3":
        for old, new in AF3_IMPORTS.items():
            assert old in text, old
            text = text.replace(old, new)
    return text


def use_version(version) -> None:
    key = "3" if str(version).startswith("3") else "2.10"
    V.clear()
    V.update(VERSIONS[key], name=key)


# -- the work folder ---------------------------------------------------------------------------
def workdir(args) -> Path:
    w = Path(args.workdir).expanduser().resolve()
    w.mkdir(parents=True, exist_ok=True)
    return w


def pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        sys.exit("PostgreSQL is not installed: run `harness.py setup` (Debian's postgresql package)")
    return versions[-1].parent


def sh(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def env_for(w: Path, cfg: dict) -> dict:
    """Airflow's settings for one configuration, as AIRFLOW__SECTION__KEY variables."""
    e = dict(os.environ)
    home = w / V["home"]
    e.update({
        "AIRFLOW_HOME": str(home), "PATH": f"{w / V['venv'] / 'bin'}:{e['PATH']}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{PG_PORT}/{V['db']}",
        "AIRFLOW__CORE__EXECUTOR": cfg.get("executor", "LocalExecutor"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(cfg.get("parallelism", 32)),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__FERNET_KEY": "",
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/{V['broker_db']}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://airflow:airflow@127.0.0.1:{PG_PORT}/{V['db']}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(cfg.get("worker_concurrency", 16)),
    })
    if V["venv"] == "venv3":
        # Airflow 3: tasks reach the metadata DB through the API server's Execution API; the
        # scheduler, DAG processor and workers share a JWT secret (a bench secret, loopback only).
        e.update({
            "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": "8080", "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "bench-secret-not-for-prod-0123456789abcdef",
            "AIRFLOW__API__SECRET_KEY": "bench-secret-key-0123456789",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "8793",
        })
    for key, value in (cfg.get("airflow_cfg") or {}).items():       # e.g. scheduler.max_tis_per_query: 16
        section, option = key.split(".", 1)
        e[f"AIRFLOW__{section.upper()}__{option.upper()}"] = str(value)
    return e


# -- processes, stopped by PID ------------------------------------------------------------------
class Processes:
    """The servers a run started; all stopped by PID (the process group) on exit or on a signal."""

    def __init__(self, w: Path):
        self.w = w
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
        p = subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        (self.w / f"{name}.pid").write_text(str(p.pid))
        self.started.append((name, p))
        return p

    def stop_all(self) -> None:
        for name, p in reversed(self.started):
            _stop_group(p.pid)
            p.wait(timeout=60)
            (self.w / f"{name}.pid").unlink(missing_ok=True)
        self.started.clear()


def _stop_group(pid: int, grace: float = 20.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.time() + grace
    while time.time() < end:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_services(w: Path) -> None:
    """PostgreSQL (own cluster, 127.0.0.1:5433) and Redis (127.0.0.1:6379), if not running."""
    pg = pg_bin()
    if subprocess.run([str(pg / "pg_ctl"), "-D", str(w / "pgdata"), "status"], capture_output=True,
                      user="postgres").returncode != 0:
        sh([str(pg / "pg_ctl"), "-D", str(w / "pgdata"), "-l", str(w / "pgsock" / "pg.log"), "-w", "-o",
            f"-c listen_addresses=127.0.0.1 -p {PG_PORT} -c unix_socket_directories={w / 'pgsock'} "
            "-c max_connections=300", "start"], user="postgres", stdin=subprocess.DEVNULL,
           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), "ping"],
                      capture_output=True, text=True).stdout.strip() != "PONG":
        (w / "redis").mkdir(exist_ok=True)
        p = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT),
                              "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                              "--dir", str(w / "redis"), "--logfile", str(w / "redis" / "redis.log")],
                             start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)      # a server must not hold our streams open
        (w / "redis.pid").write_text(str(p.pid))
        time.sleep(1)


def stop_services(w: Path) -> None:
    pid = w / "redis.pid"
    if pid.exists():
        _stop_group(int(pid.read_text()))
        pid.unlink()
    if (w / "pgdata").exists():
        subprocess.run([str(pg_bin() / "pg_ctl"), "-D", str(w / "pgdata"), "-m", "fast", "stop"],
                       user="postgres", capture_output=True)


def psql(sql: str, csv_out: bool = False) -> str:
    cmd = ["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "airflow", "-d", V["db"], "-X", "-q"]
    cmd += ["-c", f"COPY ({sql}) TO STDOUT WITH CSV HEADER"] if csv_out else ["-At", "-c", sql]
    return sh(cmd, capture_output=True, env={**os.environ, "PGPASSWORD": "airflow"}).stdout


def fail_leftover_runs() -> int:
    """Mark failed what an earlier, aborted attempt left unfinished in the database, before a
    scheduler starts: it would carry those runs on beside the new ones (in
    data/airflow-runs/af210-wide/local-p2 an aborted attempt's fan-out ran on for 845 s beside the
    next attempt's first diamond). Returns how many DAG runs it failed."""
    n = psql("with r as (update dag_run set state='failed', end_date=now() "
             "where state in ('queued', 'running') returning 1) select count(*) from r").strip()
    psql("update task_instance set state='failed', end_date=now() where state in "
         "('scheduled', 'queued', 'running', 'up_for_retry', 'up_for_reschedule', 'restarting', 'deferred')")
    return int(n or 0)


# -- contention: CPU of everything that is not the benchmark, from /proc -------------------------
HZ = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> tuple[float, str]:
    """(CPU seconds so far, utime + stime of all its threads; its command line) of a process.
    Raises OSError once it is gone."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rfind(")") + 2:].split()
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return (int(rest[11]) + int(rest[12])) / HZ, cmd or stat[stat.find("(") + 1:stat.rfind(")")]


def _cpu_ticks() -> list[int]:
    """/proc/stat's machine-wide CPU ticks: user, nice, system, idle, iowait, irq, softirq, steal."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def busy_ticks() -> int:
    """Clock ticks the whole machine has been busy (/proc/stat: user, nice, system, irq, softirq,
    steal; not idle or iowait)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = _cpu_ticks()
    return user + nice + system + irq + softirq + steal


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (:func:`busy_ticks`)."""
    return busy_ticks() / HZ


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave this machine's cores to others (/proc/stat's steal)."""
    return _cpu_ticks()[7] / HZ


def cpu_probe(loops: int = 2_000_000, repeat: int = 5) -> float:
    """Seconds a fixed piece of pure-Python work takes on one core (the fastest of ``repeat``):
    the machine's speed. Airflow's own start-up and run overheads are CPU work of this kind, and
    the same cloud VM type ran them 10 % apart in two sessions of one day (data/airflow-runs)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        x = 0
        for i in range(loops):
            x += i * i
        best = min(best, time.perf_counter() - t)
    return round(best, 4)


def machine_yaml(session: str, probe_before: float, probe_after: float, steal: float) -> str:
    """``machine.yaml`` of a configuration: its measuring session (sim calibrate-all fits one
    cpu_speed per session) and what the machine was."""
    def read(path, default=""):
        try:
            return Path(path).read_text()
        except OSError:
            return default
    model = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), "unknown")
    return (f"# Written by bench/real_airflow/harness.py: the machine these runs were measured on.\n"
            f"session: \"{session}\"                # one harness invocation; calibrate-all fits a cpu_speed per session\n"
            f"boot_id: \"{read('/proc/sys/kernel/random/boot_id').strip()}\"\n"
            f"cpu_model: \"{model}\"\n"
            f"cores: {os.cpu_count()}\n"
            f"cpu_probe_seconds_before: {probe_before}   # cpu_probe(): fixed pure-Python work, fastest of 5, machine quiet\n"
            f"cpu_probe_seconds_after: {probe_after}\n"
            f"steal_seconds: {round(steal, 2)}             # /proc/stat steal during the configuration\n"
            f"sched_autogroup_enabled: {read(AUTOGROUP, 'unknown').strip()}   # 1: CPU shared between sessions first "
            f"(the harness starts each server in its own)\n")


class Sampler(threading.Thread):
    """Every second: cores used by the benchmark's processes and by all others, and by the whole
    machine. The per-process split misses processes that start and end between two samples and a
    process's last second before it exits (short task processes), so it undercounts what Airflow
    used; the machine's busy cores from /proc/stat (user, nice, system, irq, softirq, steal) miss
    nothing, so the benchmark's own use is about busy - other."""

    def __init__(self):
        super().__init__(daemon=True)
        #: time, ours, other, load1, busy cores of the whole machine
        self.samples: list[tuple[float, float, float, float, float]] = []
        self.done = threading.Event()

    @staticmethod
    def _snap() -> dict:
        out = {}
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    out[int(p)] = process_cpu(int(p))
                except (OSError, IndexError, ValueError):
                    pass
        return out

    def run(self) -> None:
        prev, t0, busy0 = self._snap(), time.time(), busy_seconds()
        while not self.done.wait(1.0):
            cur, t1, busy1 = self._snap(), time.time(), busy_seconds()
            ours = other = 0.0
            for pid, (cpu, cmd) in cur.items():
                d = cpu - prev[pid][0] if pid in prev else cpu
                if d > 0:
                    if any(k in cmd for k in OURS):
                        ours += d
                    else:
                        other += d
            load1 = float(Path("/proc/loadavg").read_text().split()[0])
            busy = (busy1 - busy0) / (t1 - t0)
            self.samples.append((t1, ours / (t1 - t0), other / (t1 - t0), load1, busy))
            prev, t0, busy0 = cur, t1, busy1

    def between(self, a: float, b: float) -> dict:
        s = [x for x in self.samples if a < x[0] <= b + 1.0]
        mean = lambda i: round(statistics.mean(x[i] for x in s), 3) if s else float("nan")  # noqa: E731
        busy = [x[4] for x in s if len(x) > 4]
        return {"n_samples_1s": len(s), "ours_cores_mean": mean(1), "other_cores_mean": mean(2),
                "other_cores_max": round(max((x[2] for x in s), default=float("nan")), 3), "load1_mean": mean(3),
                "busy_cores_mean": round(statistics.mean(busy), 3) if busy else float("nan")}


# -- one configuration ---------------------------------------------------------------------------
def run_configuration(w: Path, cfg: dict, dags: list[str], runs: int, out: Path, max_reruns: int,
                      clean_limit: float, session: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    probe_before, steal0 = cpu_probe(), steal_seconds()
    env = env_for(w, cfg)
    tag = cfg["name"].replace("-", "_")
    catchup = catchup_dags(cfg, tag, env)
    procs = Processes(w)
    sampler = Sampler()
    sampler.start()
    rows = []
    try:
        start_services(w)
        time.sleep(10)
        base = sampler.between(time.time() - 10, time.time())
        rows.append({"run_id": "(baseline, nothing of ours running)", "dag_id": "", **base,
                     "clean": "yes" if base["other_cores_mean"] < clean_limit else "no"})
        # Airflow 3 lists option names only unless asked for their values
        show = ["--show-values", "--hide-sensitive", "--color", "off"] if V["venv"] == "venv3" else []
        listing = sh(["airflow", "config", "list", *show], env=env, capture_output=True).stdout
        (out / "airflow.cfg.txt").write_text("".join(          # no generated secret in committed data
            f"{line.split('=')[0].rstrip()} = <removed>\n" if "=" in line and any(
                w in line.split("=")[0] for w in ("secret", "password")) else line + "\n"
            for line in listing.splitlines()))
        (out / "config.txt").write_text(_config_txt(listing))
        for i in range(int(cfg.get("workers", 1)) if cfg.get("executor") == "CeleryExecutor" else 0):
            procs.start(f"worker{i}", ["airflow", "celery", "worker", "--concurrency",
                                       str(cfg.get("worker_concurrency", 16)), "--skip-serve-logs",
                                       "--without-gossip", "--without-mingle", "--celery-hostname",
                                       f"bench{i}@localhost"], env, out / f"worker{i}.log")
        if V["venv"] == "venv3":
            procs.start("api-server", ["airflow", "api-server", "--host", "127.0.0.1", "--port", "8080", "-w", "1"],
                        env, out / "api-server.log")
            procs.start("dag-processor", ["airflow", "dag-processor"], env, out / "dag-processor.log")
            time.sleep(5)
        for name, slots in sorted((cfg.get("pools") or {}).items()):
            # a pool the DAGs name (bench_dags.py's pooled), made before the scheduler starts; the
            # export is what the calibration reads the pools from
            sh(["airflow", "pools", "set", name, str(int(slots)), "benchmark pool"], env=env, capture_output=True)
        if cfg.get("pools"):
            sh(["airflow", "pools", "export", str(out / "pools.json")], env=env, capture_output=True)
        left = fail_leftover_runs()
        if left:
            print(f"  failed {left} DAG run(s) an earlier attempt left unfinished", flush=True)
        procs.start("scheduler", ["airflow", "scheduler", "--skip-serve-logs"], env, out / "scheduler.log")
        _wait_for_dags(dags + catchup)
        time.sleep(5)
        # A warm-up run, not exported (its run_id lacks the configuration's prefix): the first run
        # after the scheduler starts waits for the DAG file to be parsed again (54 s for a 10 s
        # diamond at parallelism 2), which is start-up, not steady state.
        warm = f"warmup__{tag}__{int(time.time() * 1000)}"
        sh(["airflow", "dags", "trigger", dags[0], "-r", warm], env=env, capture_output=True)
        _wait_run(warm)
        time.sleep(3)
        queue = [(d, r) for r in range(runs) for d in dags]
        reruns, at_once = 0, int(cfg.get("concurrent_runs", 1))
        while queue:
            batch, queue = queue[:at_once], queue[at_once:]
            ids = {}
            for dag, rep in batch:
                rid = f"{tag}__{dag}__{rep}__{int(time.time() * 1000)}"
                sh(["airflow", "dags", "trigger", dag, "-r", rid], env=env, capture_output=True)
                ids[rid] = (dag, rep)
            for rid, (dag, rep) in ids.items():
                state = _wait_run(rid)
                q, e = psql(f"select extract(epoch from queued_at), extract(epoch from end_date) from dag_run "
                            f"where run_id='{rid}'").strip().split("|")
                c = sampler.between(float(q), float(e))
                clean = c["other_cores_mean"] < clean_limit
                rows.append({"run_id": rid, "dag_id": dag, **c, "clean": "yes" if clean else "no", "state": state})
                print(f"  {rid}: {state}, {float(e) - float(q):.2f} s, other cores {c['other_cores_mean']}"
                      f"{'' if clean else ' (contaminated: run again)'}", flush=True)
                if not clean and reruns < max_reruns:
                    reruns += 1
                    queue.append((dag, 100 + reruns))
            time.sleep(3)
        # one DAG after the other, or (together: true) all unpaused at once: a burst of DAGs due
        for group in ([catchup] if cfg.get("catchup", {}).get("together") else [[d] for d in catchup]):
            rows += _catch_up(group, int(cfg["catchup"]["runs"]), env, sampler, clean_limit, out)
            time.sleep(3)
    finally:
        procs.stop_all()
        sampler.done.set()
    (out / "machine.yaml").write_text(machine_yaml(session or out.parent.name, probe_before, cpu_probe(),
                                                   steal_seconds() - steal0))
    _export([(r["dag_id"], r["run_id"]) for r in rows if r.get("dag_id")], out)
    # written before the analyses below, so that one failing (a module missing from the Python
    # that runs the harness) leaves the runs' contention with their rows
    with open(out / "contention.csv", "w", newline="") as f:
        keys = ["run_id", "dag_id", "state", "other_cores_mean", "other_cores_max", "load1_mean",
                "ours_cores_mean", "busy_cores_mean", "n_samples_1s", "clean"]
        wr = csv.DictWriter(f, keys, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
    if V["venv"] == "venv3":
        # Airflow 3: how long each supervisor held its task process (the logs are not kept)
        from supervisor_exits import main as supervisor_exits   # lazy: a script beside this one
        supervisor_exits([str(out), *map(str, sorted(out.glob("*.log")))])
    if (out / "scheduler.log").exists():
        # when each try's end reached the scheduler, and how long its slot stayed empty
        from executor_events import main as executor_events
        executor_events([str(out), str(out / "scheduler.log")])
    workers = sorted(out.glob("worker*.log"))
    if V["venv"] == "venv210" and workers:
        # Celery: from queueing to the worker's child executing the task (2.10's worker log lines)
        from celery_handoff import main as celery_handoff
        celery_handoff([str(out), *map(str, workers)])
    if V["venv"] == "venv210":
        # each try's way out: outcome committed, return code seen, the mini-scheduler's commit (task logs)
        from task_exit_path import main as task_exit_path
        task_exit_path([str(out), str(w / V["home"] / "logs")])
        # and its way in: the hand-off, the fork, the DAG file's parse (the worker's or scheduler's log)
        from task_start_path import main as task_start_path
        task_start_path([str(out), *map(str, workers or [out / "scheduler.log"])])
    # The processes' logs (MBs; what the results need is derived above) go to the work folder
    kept = w / "logs" / f"{out.parent.name}-{out.name}"
    kept.mkdir(parents=True, exist_ok=True)
    for log in out.glob("*.log"):
        shutil.move(str(log), kept / log.name)


def catchup_dags(cfg: dict, tag: str, env: dict) -> list[str]:
    """The matrix's ``catchup: {runs: N, reps: R, max_active_runs: M}`` (M optional: the DAGs'
    own max_active_runs): R DAGs (bench_dags.py's catchup_<tag>_<rep>)
    scheduled every minute with catchup from a start_date N + 5 minutes back, so that each has N
    runs due when the harness unpauses it (its end_date stops it there). Sets BENCH_CATCHUP in
    ``env``, which every process that parses the DAG file inherits; returns the dag_ids."""
    spec = cfg.get("catchup")
    if not spec:
        return []
    runs, reps = int(spec["runs"]), int(spec.get("reps", 3))
    now = time.time()
    first = time.strftime("%Y-%m-%dT%H:%M:00+00:00", time.gmtime(now - now % 60 - (runs + 5) * 60))
    # the DAGs' ids carry when they were made: the database keeps every earlier session's runs,
    # and a DAG id seen before would find its runs there (catchup-sequential's first attempt,
    # 2026-12-07, found catchup's 30 and made none)
    tag = f"{tag}_{time.strftime('%m%d%H%M', time.gmtime(now))}"
    limit = f"|{int(spec['max_active_runs'])}" if spec.get("max_active_runs") else ""
    env["BENCH_CATCHUP"] = f"{tag}|{runs}|{reps}|{first}{limit}"
    return [f"catchup_{tag}_{rep}" for rep in range(reps)]


def _catch_up(dags: list[str], runs: int, env: dict, sampler, clean_limit: float, out: Path) -> list[dict]:
    """Unpause ``dags`` (one: with Airflow's CLI; several: all in one UPDATE of the dag table, so
    they are due together) and wait until the scheduler has made and finished each one's ``runs``
    runs; one contention row a run. When they were unpaused goes to ``catchup.csv`` (the runs'
    own times come from the database: dag_run.queued_at is when the scheduler created each)."""
    names = ", ".join(f"'{d}'" for d in dags)          # the harness's own ids: no quotes in them

    def paused(flag: bool) -> None:
        if len(dags) == 1:
            sh(["airflow", "dags", "pause" if flag else "unpause", dags[0]], env=env, capture_output=True)
        else:
            psql(f"update dag set is_paused = {str(flag).lower()} where dag_id in ({names})")

    unpaused = time.time()
    paused(False)
    end = time.time() + 1800.0
    done = 0
    while time.time() < end:
        done = int(psql(f"select count(*) from dag_run where dag_id in ({names}) and state in ('success', 'failed')")
                   .strip() or 0)
        if done >= runs * len(dags):
            break
        time.sleep(2.0)
    paused(True)
    new = not (out / "catchup.csv").exists()
    at = datetime.fromtimestamp(unpaused, timezone.utc).isoformat(timespec="microseconds")
    with open(out / "catchup.csv", "a") as f:
        if new:
            f.write("dag_id,unpaused_at,runs_finished\n")
        for dag in dags:
            f.write(f"{dag},{at},{done if len(dags) == 1 else ''}\n")
    rows = []
    for line in psql(f"select dag_id, run_id, state, extract(epoch from queued_at), extract(epoch from end_date) "
                     f"from dag_run where dag_id in ({names}) order by queued_at").split("\n"):
        if not line:
            continue
        dag, rid, state, q, e = line.split("|")
        c = sampler.between(float(q), float(e or time.time()))
        rows.append({"run_id": rid, "dag_id": dag, **c, "clean": "yes" if c["other_cores_mean"] < clean_limit else "no",
                     "state": state})
    ok = sum(r["state"] == "success" for r in rows)
    print(f"  {', '.join(dags) if len(dags) < 4 else f'{len(dags)} DAGs'}: {ok} of {runs * len(dags)} runs succeeded, "
          f"{time.time() - unpaused:.1f} s from the unpause, {sum(r['clean'] == 'no' for r in rows)} contaminated",
          flush=True)
    return rows


def _wait_for_dags(dags: list[str], timeout: float = 180.0) -> None:
    names = ",".join(f"'{d}'" for d in dags)
    end = time.time() + timeout
    while time.time() < end:
        if len(psql(f"select dag_id from dag where dag_id in ({names})").split()) == len(dags):
            return
        time.sleep(1)
    sys.exit(f"the DAGs {dags} were not parsed within {timeout:g} s: see scheduler.log")


def _wait_run(rid: str, timeout: float = 1800.0) -> str:
    end = time.time() + timeout
    while time.time() < end:
        state = psql(f"select state from dag_run where run_id='{rid}'").strip()
        if state in ("success", "failed"):
            return state
        # Every poll is a psql process and a PostgreSQL backend: 48 + 8 ms of CPU on the 2-core
        # machine (data/airflow-runs/process-cpu), 0.08 cores while polling twice a second, which
        # the runs before 2026-12-06 share with Airflow. Every 2 s: 0.03 cores; the run's times
        # come from the database, so only the gap before the next run grows.
        time.sleep(2.0)
    return "timeout"


def _export(runs: list[tuple[str, str]], out: Path) -> None:
    """task_instance and dag_run rows of these (dag_id, run_id) runs, Airflow's column names, ISO
    times. The runs of this invocation only: the database keeps those of earlier or aborted
    attempts at the same configuration, with the same run_id prefix (the export took them all
    until 2026-12-06); and a scheduled run's id (``scheduled__<logical date>``) is unique only
    within its DAG."""
    first = {"task_instance": ["dag_id", "run_id", "task_id", "map_index", "state", "try_number", "queued_dttm",
                               "start_date", "end_date", "duration", "pid", "hostname", "queue", "pool", "operator",
                               "executor", "job_id", "queued_by_job_id"],
             "dag_run": ["dag_id", "run_id", "queued_at", "start_date", "end_date", "state", "run_type",
                         "execution_date", "logical_date"]}
    for table, name in (("task_instance", "task_instances.csv"), ("dag_run", "dag_runs.csv")):
        cols = [line.split("|") for line in psql(
            f"select column_name, data_type from information_schema.columns where table_name='{table}' "
            "and data_type <> 'bytea' order by ordinal_position").split("\n") if line]
        types = dict(cols)
        order = [c for c in first[table] if c in types] + [c for c, _ in cols if c not in first[table]]
        sel = ", ".join(f"""to_char({c} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') as {c}"""
                        if types[c] in TIMESTAMP_TYPES else c for c in order)
        ids = ", ".join(f"('{d}', '{r}')" for d, r in runs) or "(NULL, NULL)"   # the harness's own: no quotes
        text = psql(f"select {sel} from {table} where (dag_id, run_id) in ({ids}) "
                    "order by run_id, start_date nulls last", csv_out=True)
        (out / name).write_text(text)


def _config_txt(listing: str) -> str:
    """The settings the simulator's calibration reads, 'section.key = value' (config.txt)."""
    want = {"core": ["executor", "parallelism", "max_active_tasks_per_dag", "max_active_runs_per_dag",
                     "default_pool_task_slot_count", "execute_tasks_new_python_interpreter"],
            "scheduler": ["scheduler_heartbeat_sec", "job_heartbeat_sec", "scheduler_idle_sleep_time",
                          "max_tis_per_query", "max_dagruns_per_loop_to_schedule", "max_dagruns_to_create_per_loop",
                          "schedule_after_task_execution", "task_queued_timeout", "zombie_detection_interval",
                          "scheduler_zombie_task_threshold", "min_file_process_interval", "dag_dir_list_interval",
                          "parsing_processes", "standalone_dag_processor", "pool_metrics_interval",
                          "task_instance_heartbeat_timeout", "task_instance_heartbeat_timeout_detection_interval",
                          "trigger_timeout_check_interval", "parsing_cleanup_interval",
                          "orphaned_tasks_check_interval", "task_queued_timeout_check_interval"],
            "metrics": ["statsd_on", "otel_on"],
            "traces": ["otel_on"],
            "dag_processor": ["min_file_process_interval", "parsing_processes", "refresh_interval"],
            "workers": ["min_heartbeat_interval"],
            "celery": ["worker_concurrency", "worker_prefetch_multiplier", "task_acks_late", "operation_timeout",
                       "sync_parallelism", "pool"],
            "database": ["sql_alchemy_pool_size"]}
    section, vals = None, {}
    for line in listing.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line and section and not line.startswith("#"):
            k, v = line.split("=", 1)
            vals[(section, k.strip())] = v.strip()
    return "".join(f"{s}.{k} = {vals.get((s, k), '<not present in this Airflow version>')}\n"
                   for s, keys in want.items() for k in keys)


# -- commands ------------------------------------------------------------------------------------
def cmd_setup(args) -> None:
    w = workdir(args)
    if not shutil.which("redis-server") or not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        sh(["apt-get", "update", "-qq"])
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql", "redis-server"],
           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    use_version(args.airflow)
    venv = w / V["venv"]
    if not (venv / "bin" / "airflow").exists():
        sh([sys.executable, "-m", "venv", str(venv)])
        sh([str(venv / "bin" / "pip"), "install", "-q", *V["pip"]])
        if V["pins"]:
            sh([str(venv / "bin" / "pip"), "install", "-q", *V["pins"]])
    for d in ("pgdata", "pgsock"):
        (w / d).mkdir(exist_ok=True)
        shutil.chown(w / d, "postgres", "postgres")
    if not (w / "pgdata" / "PG_VERSION").exists():
        sh([str(pg_bin() / "initdb"), "-D", str(w / "pgdata"), "-U", "postgres", "--auth=trust"],
           user="postgres", capture_output=True)
    start_services(w)
    su = ["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-X", "-q", "-c"]
    if "airflow" not in sh(su + ["select usename from pg_user"], capture_output=True).stdout:
        sh(su + ["CREATE USER airflow PASSWORD 'airflow';"])
    if V["db"] not in sh(su + ["select datname from pg_database"], capture_output=True).stdout.split():
        sh(su + [f"CREATE DATABASE {V['db']} OWNER airflow;"])
    dags = w / V["home"] / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "bench_dags.py").write_text(dag_file_text())
    sh(["airflow", "db", "migrate"], env=env_for(w, {}), capture_output=True)
    print(f"ready: Airflow {V['name']} in {venv}, PostgreSQL 127.0.0.1:{PG_PORT}, Redis 127.0.0.1:{REDIS_PORT}")


def cmd_run(args) -> None:
    import importlib.util
    for name in ("numpy", "pandas", "yaml"):
        # the logs' analyses after each configuration need them: fail before measuring, not after
        try:
            found = importlib.util.find_spec(name) is not None
        except ValueError:               # a module set to None in sys.modules
            found = False
        if not found:
            sys.exit(f"{name} is missing: run the harness with the project's Python (pip install -e .), "
                     "not the Airflow virtualenv's")
    import yaml
    w = workdir(args)
    matrix = yaml.safe_load(Path(args.matrix).read_text())
    use_version(matrix.get("airflow", "2.10"))
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.add:
        sys.exit(f"{out} is not empty: name a new folder (or --add to add configurations to it)")
    (w / V["home"] / "dags" / "bench_dags.py").write_text(dag_file_text())
    runs = args.runs or int(matrix.get("runs", 3))
    chosen = [c for c in matrix["configurations"] if not args.only or c["name"] in args.only]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    session = f"{Path(args.matrix).stem}-{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}"
    autogroup = Path(AUTOGROUP).read_text().strip() if Path(AUTOGROUP).exists() else None
    if matrix.get("sched_autogroup") is not None:
        if autogroup is None:
            sys.exit(f"the matrix sets sched_autogroup, but {AUTOGROUP} does not exist on this machine")
        Path(AUTOGROUP).write_text(f"{int(matrix['sched_autogroup'])}\n")     # restored below
    try:
        _run_matrix(w, matrix, chosen, runs, out, session)
    finally:
        if autogroup is not None and Path(AUTOGROUP).read_text().strip() != autogroup:
            Path(AUTOGROUP).write_text(autogroup + "\n")
    (out / "matrix.yaml").write_text(Path(args.matrix).read_text())


def _run_matrix(w: Path, matrix: dict, chosen: list, runs: int, out: Path, session: str) -> None:
    for cfg in chosen:
        dags = cfg.get("dags") or matrix["dags"]
        cfg = {"pools": matrix.get("pools") or {}, **cfg}       # the matrix's pools, for every configuration
        print(f"{cfg['name']}: {cfg}", flush=True)
        t0 = time.time()
        run_configuration(w, cfg, dags, runs, out / cfg["name"], int(matrix.get("max_reruns", 3)),
                          float(matrix.get("clean_other_cores", 0.3)), session)
        print(f"{cfg['name']}: done in {time.time() - t0:.0f} s", flush=True)


def cmd_analyze(args) -> None:
    """Per configuration and DAG: median makespan of clean runs and per-stage figures."""
    import pandas as pd
    for folder in sorted(p for p in Path(args.folder).iterdir() if (p / "task_instances.csv").exists()):
        tis = pd.read_csv(folder / "task_instances.csv")
        drs = pd.read_csv(folder / "dag_runs.csv")
        cont = pd.read_csv(folder / "contention.csv")
        clean = set(cont.loc[cont["clean"] == "yes", "run_id"])
        for c in ("queued_dttm", "start_date", "end_date"):
            tis[c] = pd.to_datetime(tis[c], format="ISO8601")
        for c in ("queued_at", "start_date", "end_date"):
            drs[c] = pd.to_datetime(drs[c], format="ISO8601")
        drs = drs[drs["run_id"].isin(clean)]
        tis = tis[tis["run_id"].isin(clean)]
        for dag, g in drs.groupby("dag_id"):
            mk = (g["end_date"] - g["start_date"]).dt.total_seconds()
            t = tis[tis["dag_id"] == dag]
            q2s = (t["start_date"] - t["queued_dttm"]).dt.total_seconds()
            print(f"{folder.name:28s} {dag:10s} runs {len(g):2d}  makespan median {mk.median():7.2f} s "
                  f"(min {mk.min():.2f}, max {mk.max():.2f})  queued->start median {q2s.median():.2f} s  "
                  f"duration median {t['duration'].median():.2f} s")


def cmd_stop(args) -> None:
    w = workdir(args)
    for pid in w.glob("*.pid"):
        if pid.name != "redis.pid":
            _stop_group(int(pid.read_text()))
            pid.unlink()
    stop_services(w)
    print("stopped")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="harness.py", allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="~/.cache/sim-real-airflow", help="installs, databases, logs")
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("setup", help="install Airflow (virtualenv), PostgreSQL and Redis; migrate the DB")
    st.add_argument("--airflow", default="2.10", choices=sorted(VERSIONS), help="Airflow version (default 2.10)")
    r = sub.add_parser("run", help="run a configuration matrix and export the results")
    r.add_argument("--matrix", required=True, help="matrix YAML (bench/real_airflow/matrices/)")
    r.add_argument("--out", required=True, help="results folder, one sub-folder per configuration")
    r.add_argument("--runs", type=int, help="runs per DAG (default: the matrix's)")
    r.add_argument("--only", action="append", help="run only this configuration (repeatable)")
    r.add_argument("--add", action="store_true", help="add configurations to an existing results folder")
    a = sub.add_parser("analyze", help="per-configuration figures of a results folder")
    a.add_argument("folder", help="results folder")
    sub.add_parser("stop", help="stop every process the harness started, PostgreSQL and Redis")
    args = p.parse_args(argv)
    {"setup": cmd_setup, "run": cmd_run, "analyze": cmd_analyze, "stop": cmd_stop}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
