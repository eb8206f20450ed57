"""Scenario script: build the seed's diamond in Python (``t1 >> [t2, t3] >> t4``), run it on the
LocalExecutor, the CeleryExecutor and the KubernetesExecutor with the same seed, print what each
costs and how long tasks wait, and save the charts of each run.

    python scenarios/compare_executors.py [--out results/compare_executors]
"""
import argparse
from pathlib import Path

from sim import DAG, Exponential, Interval, LogNormal, Scenario, run


def diamond() -> DAG:
    dag = DAG("diamond", Interval(600), max_active_runs=16)
    t1 = dag.task("T1", duration=30)
    t2 = dag.task("T2", duration=LogNormal(60, 0.5))
    t3 = dag.task("T3", duration=Exponential(45))
    t4 = dag.task("T4", duration=10, trigger_rule="all_done")
    t1 >> [t2, t3] >> t4
    return dag


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/compare_executors")
    p.add_argument("--hours", type=float, default=4.0)
    args = p.parse_args()
    print(f"{'executor':12s} {'p95 wait (s)':>13s} {'mean makespan (s)':>18s} {'cost (USD)':>11s}")
    for kind in ("local", "celery", "kubernetes"):
        scenario = Scenario.build([diamond()], name="compare-executors", seed=7, horizon=args.hours * 3600,
                                  executor=kind)
        result = run(scenario)
        s = result.summary
        print(f"{kind:12s} {s['scheduling_delay_seconds']['ready_to_started']['p95']:13.3f} "
              f"{s['dag_runs']['makespan_seconds']['mean']:18.1f} {s['cost']['total_usd']:11.3f}")
        result.write(Path(args.out) / kind)
    print(f"results and charts in {args.out}/<executor>/")


if __name__ == "__main__":
    main()
