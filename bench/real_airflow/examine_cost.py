"""What the scheduler's loop costs per task instance it examines but cannot schedule yet (issue #11).

Every loop, ``_schedule_all_dag_runs`` examines each running DAG run: ``DagRun.
task_instance_scheduling_decisions`` loads the run's task instances and checks the dependencies of
each one not yet scheduled (2.10.5's ``dagrun.py``), whether or not anything changed. This measures
that cost on real Airflow 2.10: a DAG ``examine_N`` is one task ``hold`` (``sleep 40``) and N
downstream EmptyOperators with ``trigger_rule="all_failed"`` (skipped when ``hold`` succeeds, so
they never run). While ``hold`` sleeps, the scheduler is idle but for examining those N task
instances every loop. The scheduler process's own CPU (utime + stime, not its children) over a
window of that sleep, for N = 0, 200 and 800, gives the CPU per loop and its growth with N.

    python bench/real_airflow/examine_cost.py --workdir /work/ra [--executor celery] OUT_FOLDER [--reps 3]

Needs ``harness.py setup`` (Airflow 2.10) first. Writes ``OUT_FOLDER/examine_cost.csv`` (one row
per run: N, the window, the scheduler's CPU seconds in it, the machine's busy cores; N "idle" is a
window before any DAG run, nothing running) and prints the CPU per loop for each N. An idle loop
sleeps ``scheduler_idle_sleep_time`` (1 s) and lasts ``w`` seconds besides, so it runs
``c = cpu / (1 + w)`` cores; with ``w = cpu + d`` (``d``: its DB waits, a few ms) the CPU per loop
is ``cpu = c (1 + d) / (1 - c)``. The examine DAG file is removed from the DAGs folder at the end,
so later harness runs do not parse it.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import harness as H                       # the harness's helpers (a script beside this one)
from scheduler_cpu import scheduler_pid

SIZES = (0, 200, 800)
HOLD = 40.0           # seconds hold sleeps
SETTLE = 5.0          # after hold starts: its run's first loops are not idle
WINDOW = 25.0         # seconds sampled
DB_WAIT = 0.015       # ASSUMPTION: an idle loop's DB round trips (4 queries of ~3-4 ms, the airflow-2.10 fit)

DAG_FILE = '''"""examine_cost.py's DAGs: one sleeping task and N never-run downstream tasks."""
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator

for n in {sizes!r}:
    with DAG(f"examine_{{n}}", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             catchup=False, is_paused_upon_creation=False, max_active_tasks=64,
             default_args=dict(retries=0)) as dag:
        hold = BashOperator(task_id="hold", bash_command="sleep {hold:g}")
        for i in range(n):
            hold >> EmptyOperator(task_id=f"w{{i:04d}}", trigger_rule="all_failed")
    globals()[f"examine_{{n}}"] = dag
'''


def cpu_per_loop(cores: float, db_wait: float = DB_WAIT) -> float:
    """CPU seconds of one idle loop that runs ``cores`` on average (see the module's docstring)."""
    return cores * (1.0 + db_wait) / (1.0 - cores)


def _hold_running(rid: str, timeout: float = 120.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if H.psql(f"select state from task_instance where run_id='{rid}' and task_id='hold'").strip() == "running":
            return True
        time.sleep(0.5)
    return False


def _window(pid: int) -> dict:
    """The scheduler's own CPU and the machine's busy cores over WINDOW seconds from now."""
    c0, t0, b0 = H.process_cpu(pid)[0], time.time(), H.busy_seconds()
    time.sleep(WINDOW)
    c1, t1, b1 = H.process_cpu(pid)[0], time.time(), H.busy_seconds()
    cores = (c1 - c0) / (t1 - t0)
    return {"window_s": round(t1 - t0, 3), "scheduler_cpu_s": round(c1 - c0, 4), "scheduler_cores": round(cores, 4),
            "busy_cores": round((b1 - b0) / (t1 - t0), 4), "cpu_per_loop_s": round(cpu_per_loop(cores), 5)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="~/.cache/sim-real-airflow")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--executor", choices=("local", "celery"), default="local")
    p.add_argument("out", help="results folder (must not exist)")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        sys.exit(f"{out} exists: name a new folder")
    w = H.workdir(args)
    H.use_version("2.10")
    dag_file = w / H.V["home"] / "dags" / "examine_dags.py"
    cfg = {"name": "examine", "executor": "CeleryExecutor" if args.executor == "celery" else "LocalExecutor",
           "parallelism": 8}
    env = H.env_for(w, cfg)
    procs = H.Processes(w)
    probe_before, steal0 = H.cpu_probe(), H.steal_seconds()
    rows = []
    out.mkdir(parents=True)
    try:
        dag_file.write_text(DAG_FILE.format(sizes=SIZES, hold=HOLD))
        H.start_services(w)
        time.sleep(5)
        H.fail_leftover_runs()
        if args.executor == "celery":
            procs.start("worker0", ["airflow", "celery", "worker", "--concurrency", "4", "--skip-serve-logs",
                                    "--without-gossip", "--without-mingle", "--celery-hostname", "bench0@localhost"],
                        env, out / "worker0.log")
        procs.start("scheduler", ["airflow", "scheduler", "--skip-serve-logs"], env, out / "scheduler.log")
        H._wait_for_dags([f"examine_{n}" for n in SIZES])
        pid = scheduler_pid(time.time() + 60)
        time.sleep(10)
        rows.append({"n": "idle", "rep": 0, "run_id": "", "state": "", **_window(pid)})
        print(rows[-1], flush=True)
        for rep in range(args.reps):
            for n in SIZES:
                rid = f"examine_{n}__{rep}__{int(time.time() * 1000)}"
                H.sh(["airflow", "dags", "trigger", f"examine_{n}", "-r", rid], env=env, capture_output=True)
                if not _hold_running(rid):
                    sys.exit(f"{rid}: hold did not start within 120 s (see {out / 'scheduler.log'})")
                time.sleep(SETTLE)
                sample = _window(pid)
                rows.append({"n": n, "rep": rep, "run_id": rid, "state": H._wait_run(rid), **sample})
                print(rows[-1], flush=True)
                time.sleep(3)
    finally:
        procs.stop_all()
        dag_file.unlink(missing_ok=True)
    with open(out / "examine_cost.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    (out / "machine.yaml").write_text(H.machine_yaml("examine-cost", probe_before, H.cpu_probe(),
                                                     H.steal_seconds() - steal0))
    print(f"idle (no DAG run): {rows[0]['cpu_per_loop_s'] * 1000:.1f} ms CPU per loop")
    base = statistics.median(r["cpu_per_loop_s"] for r in rows if r["n"] == 0)
    for n in SIZES:
        per = statistics.median(r["cpu_per_loop_s"] for r in rows if r["n"] == n)
        extra = f", {1000 * (per - base) / n:.3f} ms per task instance examined" if n else ""
        print(f"N={n}: {per * 1000:.1f} ms CPU per loop{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
