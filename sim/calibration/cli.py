"""``sim calibrate``: fit, print the fit quality per DAG and stage, predict held-out DAGs, write
the profile."""
from __future__ import annotations

import sys

from ..errors import SimError
from .fit import PARAMETERS, calibrate
from .inputs import parse_bodies, parse_sets
from .profile_file import quality_table


def run_calibrate(args) -> int:
    if args.seeds < 1:
        raise SimError("--seeds must be at least 1")
    if args.evaluations < 10:
        raise SimError("--evaluations must be at least 10")
    seeds = tuple(range(args.seed, args.seed + args.seeds))
    cal = calibrate(args.runs, args.dag, executor=args.executor, dag_runs=args.dag_runs,
                    base_profile=args.base, settings=parse_sets(args.sets), config=args.config,
                    bodies=parse_bodies(args.bodies), seeds=seeds, max_evaluations=args.evaluations,
                    progress=not args.no_progress and sys.stderr.isatty())
    runs = sum(cal.problem.runs.values())
    print(f"calibrate {cal.executor}: {len(cal.fitted)} parameters fitted on {', '.join(cal.dags)} "
          f"({runs} DAG runs) in {cal.wall_seconds:.1f} s ({cal.evaluations} evaluations x {len(seeds)} seeds)")
    print("  fitted:")
    for key, value in cal.fitted.items():
        unit = "" if key.endswith("cores") else " s"
        print(f"    {key:34s} {value:10.4g}{unit:2s}  {PARAMETERS[key][3]}")
    import textwrap
    known = ", ".join(f"{k}={v}" for k, v in cal.known.items()) or "none"
    print(textwrap.fill(known, 100, initial_indent="  known (not fitted): ", subsequent_indent="    "))
    print(f"  fit quality (mean squared relative error {cal.objective:.4g}):")
    print(quality_table(cal.quality, "    "))
    if args.predict:
        pred = cal.predict(args.predict)
        print("  predicted with the fitted profile (not fitted on):")
        print(quality_table(pred, "    "))
    if args.out:
        path = cal.write(args.out)
        print(f"  profile written to {path}; what-ifs: sim run SCENARIO --profile {path} "
              f"--set airflow.parallelism=4")
    else:
        print("  (--out FILE writes the fitted profile)")
    return 0
