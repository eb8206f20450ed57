"""Sample the Airflow scheduler process's CPU and the machine's busy cores every 100 ms, beside a
harness run (issue #11: how much of the cores the scheduler's loop really uses, and gets, while
task processes compete for them).

    python bench/real_airflow/scheduler_cpu.py OUT.txt SECONDS &
    python bench/real_airflow/harness.py ... run ...

It waits for ``airflow scheduler --skip-serve-logs`` to appear, then writes one line per sample:
wall time, the scheduler process's CPU seconds so far (utime + stime, all its threads; not its
children, such as the DAG file processor manager), the machine's busy CPU seconds so far
(/proc/stat). Differences over a window give cores.
"""
import sys
import time

from harness import Sampler, busy_seconds, process_cpu   # the harness's /proc readers (a script beside this one)


def scheduler_pid(until: float) -> int | None:
    """The oldest ``airflow scheduler --skip-serve-logs`` process (the loop's, not its children)."""
    while time.time() < until:
        pids = [pid for pid, (_cpu, cmd) in Sampler._snap().items()
                if "airflow scheduler" in cmd and "--skip-serve-logs" in cmd]
        if pids:
            return min(pids)
        time.sleep(0.5)
    return None


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit(__doc__)
    end = time.time() + float(args[1])
    pid = scheduler_pid(end)
    if pid is None:
        sys.exit(f"no 'airflow scheduler --skip-serve-logs' process appeared within {args[1]} s")
    with open(args[0], "w") as out:
        out.write(f"# scheduler pid {pid}\n")
        while time.time() < end:
            try:
                cpu = process_cpu(pid)[0]
            except OSError:
                break                                   # the scheduler has stopped
            out.write(f"{time.time():.3f} {cpu:.3f} {busy_seconds():.3f}\n")
            out.flush()
            time.sleep(0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
