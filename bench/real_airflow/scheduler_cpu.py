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
import os
import sys
import time

hz = os.sysconf("SC_CLK_TCK")
out = open(sys.argv[1], "w")


def busy():
    f = open("/proc/stat").readline().split()[1:]
    u, n, s, _idle, _iowait, irq, soft, st = map(int, f[:8])
    return u + n + s + irq + soft + st


def sched_pids():
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "airflow scheduler" in cmd and "--skip-serve-logs" in cmd:
                pids.append(int(p))
    return pids


end = time.time() + float(sys.argv[2])
while time.time() < end:
    pids = sched_pids()
    if pids:
        break
    time.sleep(0.5)
pid = min(pids)
out.write(f"# scheduler pid {pid}\n")
while time.time() < end:
    try:
        st = open(f"/proc/{pid}/stat").read()
    except OSError:
        break
    rest = st[st.rfind(")") + 2:].split()
    cpu = (int(rest[11]) + int(rest[12])) / hz
    out.write(f"{time.time():.3f} {cpu:.3f} {busy() / hz:.3f}\n"); out.flush()
    time.sleep(0.1)
