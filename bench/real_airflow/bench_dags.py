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
"""
import time

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")
common = dict(start_date=START, schedule=None, catchup=False, is_paused_upon_creation=False,
              default_args=dict(retries=0))


def burn(cpu_seconds: float = 1.0) -> None:
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


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
