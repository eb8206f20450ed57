"""Scenario script: the what-if behind Airflow's ``worker_pods_creation_batch_size``. A burst of
tasks lands on the KubernetesExecutor; how long until every task has a pod, for batch sizes 1, 4,
16 and 64? Builds the DAG with the Python API and saves one chart.

    python scenarios/batch_size_what_if.py [--out results/batch_size_what_if]
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sim import DAG, At, Exponential, Scenario, run  # noqa: E402


def fan_out(n: int) -> DAG:
    dag = DAG("burst", At((0.0,)), max_active_tasks=n)
    start = dag.task("start", duration=1)
    start >> [dag.task(f"t{i:03d}", duration=Exponential(20), cpu=0.25, memory=256) for i in range(n)]
    return dag


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/batch_size_what_if")
    p.add_argument("--tasks", type=int, default=60)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes, spreads = [1, 4, 16, 64], []
    for batch in sizes:
        scenario = Scenario.build(
            [fan_out(args.tasks)], name="batch-size", seed=3, horizon=0, executor="kubernetes",
            airflow={"parallelism": 128, "max_active_tasks_per_dag": 128},
            executor_settings={"kubernetes": {"worker_pods_creation_batch_size": batch},
                               "cluster": {"autoscaler": "none", "node_pools": [
                                   {"name": "warm", "initial_nodes": 4, "min_nodes": 4, "cores": 8,
                                    "memory": 32768}]}})
        r = run(scenario)
        created = r.pods[r.pods["task_id"] != "start"]["created_at"]
        spreads.append(created.max() - created.min())
        print(f"batch {batch:3d}: all {args.tasks} pods created within {spreads[-1]:7.1f} s")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([str(s) for s in sizes], spreads, marker="o")
    ax.set_xlabel("worker_pods_creation_batch_size")
    ax.set_ylabel("seconds to create every pod")
    ax.set_title(f"{args.tasks} queued tasks: pods are created a batch per scheduler loop")
    fig.tight_layout()
    fig.savefig(out / "batch_size.png", dpi=110)
    print(f"chart in {out}/batch_size.png")


if __name__ == "__main__":
    main()
