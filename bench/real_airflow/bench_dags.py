"""The benchmark DAGs the harness runs on real Airflow 2.10 (Airflow 3: the harness rewrites its imports).

The first four are exactly those of data/airflow-runs/bench_dags.py, so new measurements compare
with the shared ones: every task a BashOperator, retries 0.
  diamond   t1 >> [t2, t3] >> t4, each `sleep 2`
  chain     c0 >> ... >> c9, each `sleep 0.5`
  fanout    start >> [p00..p39] >> end, each `sleep 1`, max_active_tasks 64
  fanout0   the same shape with `true`: pure per-task overhead
Added for the wider training set (issue #11):
  cpufanout start >> [q00..q19] >> end, each a PythonOperator that burns 1.0 CPU-second
            (time.process_time), so task bodies compete for the cores as real work does
  widefan   start >> [w000..w119] >> end, each `sleep 1`, max_active_tasks 128
Added for a held-out session (data/airflow-runs/held-out-3), a shape no fit has seen:
  etl       extract >> 8 branches of a{i} >> b{i} >> c{i} >> load: `sleep 1`, then per branch
            `sleep 0.5`, `sleep 2` and `true`, then `sleep 1` (chains side by side, mixed durations)
Added for a held-out session of Airflow's own limits and retries (data/airflow-runs/features):
  pooled    start >> [r00..r23] >> end, each `sleep 1`; the middle tasks in pool `bench_pool`
            (4 slots, made by the harness from the matrix's `pools`)
  capped    start >> [k00..k23] >> end, each `sleep 1`, max_active_tasks 6 (the DAG's own cap)
  retry     f0 >> f1 >> f2 >> f3, each `sleep 0.5`, then it fails its first try (exit 1) and
            succeeds on its second; retries 1, retry_delay 2 s
  sensed    wait >> after: a PythonSensor in reschedule mode (poke_interval 3 s) whose condition
            holds at its third poke (a counter per DAG run), then `sleep 1`
Added for a held-out session of mapping and trigger rules (data/airflow-runs/features-2):
  mapped    start >> m[0..11] >> end: `m` expands over twelve `sleep 1` commands (dynamic task
            mapping: the twelve instances exist only once start has succeeded)
  rules     a >> [b, c] >> z: `a` sleeps 0.5 s and fails (no retries), `b` (all_success) is
            upstream_failed, `c` (one_failed) and `z` (all_done) run: `sleep 1` and `sleep 0.5`
Added for a held-out session of the scheduler's own run creation (data/airflow-runs/catchup):
  catchup_<tag>_<rep>  t1 >> [t2, t3] >> t4, each `sleep 1`, scheduled every minute with
            catchup=True from a start_date far enough back that `runs` data intervals have ended:
            unpaused, the scheduler creates those runs itself (one a loop, at most
            max_active_runs_per_dag active). Defined only when the harness sets BENCH_CATCHUP
            ("<tag>|<runs>|<reps>|<start ISO>[|<max_active_runs>]") for a configuration; paused at creation, so each
            waits for the harness to unpause it; a dag_id per configuration, session and
            repetition (the harness puts the time in the tag), so no run of an earlier one counts
            as already made.
"""
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator
from airflow.sensors.python import PythonSensor

START = pendulum.datetime(2024, 1, 1, tz="UTC")
common = dict(start_date=START, schedule=None, catchup=False, is_paused_upon_creation=False,
              default_args=dict(retries=0))


def burn(cpu_seconds: float = 1.0) -> None:
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


def third_poke(run_id: str, **_) -> bool:
    """True from the third poke of this DAG run on: each poke counts itself in a file, so the
    condition depends on the pokes, not on the time the scheduler took between them."""
    folder = Path(tempfile.gettempdir()) / "bench_sensor"
    folder.mkdir(exist_ok=True)
    f = folder / "".join(c if c.isalnum() else "_" for c in run_id)
    n = int(f.read_text()) + 1 if f.exists() else 1
    f.write_text(str(n))
    return n >= 3


with DAG("diamond", **common) as diamond:
    t1, t2, t3, t4 = [BashOperator(task_id=f"t{i}", bash_command="sleep 2") for i in range(1, 5)]
    t1 >> [t2, t3] >> t4

with DAG("fanout", max_active_tasks=64, **common) as fanout:
    start = BashOperator(task_id="start", bash_command="sleep 1")
    end = BashOperator(task_id="end", bash_command="sleep 1")
    mids = [BashOperator(task_id=f"p{i:02d}", bash_command="sleep 1") for i in range(40)]
    start >> mids >> end

with DAG("chain", **common) as chain:
    prev = None
    for i in range(10):
        t = BashOperator(task_id=f"c{i}", bash_command="sleep 0.5")
        if prev is not None:
            prev >> t
        prev = t

with DAG("fanout0", max_active_tasks=64, **common) as fanout0:
    s0 = BashOperator(task_id="start", bash_command="true")
    e0 = BashOperator(task_id="end", bash_command="true")
    m0 = [BashOperator(task_id=f"p{i:02d}", bash_command="true") for i in range(40)]
    s0 >> m0 >> e0

with DAG("cpufanout", max_active_tasks=64, **common) as cpufanout:
    cs = BashOperator(task_id="start", bash_command="true")
    ce = BashOperator(task_id="end", bash_command="true")
    cq = [PythonOperator(task_id=f"q{i:02d}", python_callable=burn, op_args=[1.0]) for i in range(20)]
    cs >> cq >> ce

with DAG("widefan", max_active_tasks=128, **common) as widefan:
    ws = BashOperator(task_id="start", bash_command="sleep 1")
    we = BashOperator(task_id="end", bash_command="sleep 1")
    wm = [BashOperator(task_id=f"w{i:03d}", bash_command="sleep 1") for i in range(120)]
    ws >> wm >> we

with DAG("etl", **common) as etl:
    extract = BashOperator(task_id="extract", bash_command="sleep 1")
    load = BashOperator(task_id="load", bash_command="sleep 1")
    for i in range(8):
        a = BashOperator(task_id=f"a{i}", bash_command="sleep 0.5")
        b = BashOperator(task_id=f"b{i}", bash_command="sleep 2")
        c = BashOperator(task_id=f"c{i}", bash_command="true")
        extract >> a >> b >> c >> load

with DAG("pooled", max_active_tasks=64, **common) as pooled:
    ps = BashOperator(task_id="start", bash_command="sleep 1")
    pe = BashOperator(task_id="end", bash_command="sleep 1")
    pm = [BashOperator(task_id=f"r{i:02d}", bash_command="sleep 1", pool="bench_pool") for i in range(24)]
    ps >> pm >> pe

with DAG("capped", max_active_tasks=6, **common) as capped:
    ks = BashOperator(task_id="start", bash_command="sleep 1")
    ke = BashOperator(task_id="end", bash_command="sleep 1")
    km = [BashOperator(task_id=f"k{i:02d}", bash_command="sleep 1") for i in range(24)]
    ks >> km >> ke

with DAG("retry", **common) as retry:
    prev = None
    for i in range(4):
        t = BashOperator(task_id=f"f{i}", bash_command="sleep 0.5; [ {{ ti.try_number }} -gt 1 ] || exit 1",
                         retries=1, retry_delay=timedelta(seconds=2))
        if prev is not None:
            prev >> t
        prev = t

with DAG("sensed", **common) as sensed:
    wait = PythonSensor(task_id="wait", python_callable=third_poke, mode="reschedule", poke_interval=3)
    after = BashOperator(task_id="after", bash_command="sleep 1")
    wait >> after

with DAG("mapped", max_active_tasks=64, **common) as mapped:
    ms = BashOperator(task_id="start", bash_command="true")
    me = BashOperator(task_id="end", bash_command="true")
    mm = BashOperator.partial(task_id="m").expand(bash_command=["sleep 1"] * 12)
    ms >> mm >> me

with DAG("rules", **common) as rules:
    ra = BashOperator(task_id="a", bash_command="sleep 0.5; exit 1")
    rb = BashOperator(task_id="b", bash_command="sleep 1")
    rc = BashOperator(task_id="c", bash_command="sleep 1", trigger_rule="one_failed")
    rz = BashOperator(task_id="z", bash_command="sleep 0.5", trigger_rule="all_done")
    ra >> [rb, rc] >> rz

_catchup = os.environ.get("BENCH_CATCHUP")
if _catchup:
    _tag, _runs, _reps, _start, *_max = _catchup.split("|")
    _first = pendulum.parse(_start)
    _limit = dict(max_active_runs=int(_max[0])) if _max else {}     # default: max_active_runs_per_dag
    for _rep in range(int(_reps)):
        with DAG(f"catchup_{_tag}_{_rep}", schedule=timedelta(minutes=1), start_date=_first,
                 end_date=_first + timedelta(minutes=int(_runs) - 1), catchup=True,
                 is_paused_upon_creation=True, default_args=dict(retries=0), **_limit) as _dag:
            _t = [BashOperator(task_id=f"t{i}", bash_command="sleep 1") for i in range(1, 5)]
            _t[0] >> [_t[1], _t[2]] >> _t[3]
        globals()[_dag.dag_id] = _dag
