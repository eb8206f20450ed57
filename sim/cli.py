"""The command line: ``sim run | validate | bench | schema | profile | calibrate | ...``.

Exit codes: 0 success, 2 bad input (the message names the file, the field and the problem),
1 internal error (a bug: please report it with the scenario).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

from .errors import SimError, SimNote
from .limits import add_argument as add_limit_argument

_warn_default = warnings.showwarning

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """No prefix matching (``--seed`` must not mean ``--seeds``), and ``--debug`` accepted after the
    subcommand as well as before it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        if kwargs.get("prog", "").startswith("sim "):
            self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                              help="show tracebacks of internal errors")


def _version() -> str:
    try:
        from importlib.metadata import version  # lazy: keeps sim --help fast
        return version("airflow-executor-sim")
    except Exception:                          # not installed (run from a checkout)
        from . import __version__  # lazy: keeps sim --help fast
        return __version__


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sim", description="Simulate Apache Airflow executor architectures.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    p.add_argument("--version", action="version", version=f"sim {_version()}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def scenario_args(sp):
        sp.add_argument("scenario", help="scenario YAML file")
        sp.add_argument("--executor", help="override executor.kind (local, celery, kubernetes, celery_kubernetes)")
        sp.add_argument("--seed", type=int, help="override the scenario's seed")
        sp.add_argument("--profile", help="override the profile (built-in name or a profile YAML file)")
        sp.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting by dotted path, e.g. airflow.parallelism=4 (repeatable)")
        add_limit_argument(sp)

    r = sub.add_parser("run", help="simulate a scenario and write its results")
    scenario_args(r)
    r.add_argument("--out", help="results folder (default results/<scenario>/<executor>)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--no-charts", action="store_true", help="do not draw the charts")
    r.add_argument("--no-transitions", action="store_true",
                   help="do not record every state transition (less memory for very long runs)")
    r.add_argument("--stream", action="store_true",
                   help="write transitions.csv and events.csv while the simulation runs instead of "
                        "keeping them in memory to its end (less memory for long runs; the same files)")

    c = sub.add_parser("compare", help="run the same workload on several executors over several seeds")
    c.add_argument("scenario", help="scenario YAML file")
    c.add_argument("--executors", default="local,celery,kubernetes",
                   help="comma-separated executor kinds (default local,celery,kubernetes)")
    c.add_argument("--seeds", type=int, default=5, help="seeds per executor (default 5)")
    c.add_argument("--seed", type=int, help="the first seed (default: the scenario's); seeds are seed, seed+1, ...")
    c.add_argument("--jobs", type=int, help="parallel processes (default: all cores)")
    c.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting by dotted path for every run (repeatable)")
    c.add_argument("--out", help="results folder (default results/<scenario>/compare)")
    c.add_argument("--no-charts", action="store_true", help="do not draw the charts or the report")
    add_limit_argument(c)

    w = sub.add_parser("sweep", help="run the Cartesian product of settings x seeds")
    w.add_argument("scenario", help="scenario YAML file")
    w.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a setting (a --set path, or 'executor') and its values (repeatable)")
    w.add_argument("--seeds", type=int, default=3, help="seeds per point (default 3)")
    w.add_argument("--seed", type=int, help="the first seed (default: the scenario's); seeds are seed, seed+1, ...")
    w.add_argument("--jobs", type=int, help="parallel processes (default: all cores)")
    w.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (the [dask] extra)")
    w.add_argument("--dask-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="give up when the Dask scheduler does not answer within this time (default 5)")
    add_limit_argument(w)
    w.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting by dotted path for every point (repeatable)")
    w.add_argument("--out", help="results folder (default results/<scenario>/sweep)")
    w.add_argument("--no-charts", action="store_true", help="do not draw the charts")

    e = sub.add_parser("explain", help="tell the story of one DAG run, step by step")
    scenario_args(e)
    e.add_argument("--dag-run", type=int, default=0, help="which DAG run (0 = the first, default)")
    e.add_argument("--dag", help="dag_id, when the scenario has several DAGs")
    e.add_argument("--task", help="say why this task instance waited, stage by stage")

    v = sub.add_parser("validate", help="check a scenario file without running it")
    scenario_args(v)

    b = sub.add_parser("bench", help="the standard speed benchmark (task instances per second, peak memory)")
    b.add_argument("--task-instances", type=int, default=200_000,
                   help="size of the workload (default 200000; the issue's target is checked with 1000000)")
    b.add_argument("--profile", default="airflow-2.10", help="profile to simulate (default airflow-2.10)")
    b.add_argument("--executor", default="local",
                   help="local, celery or kubernetes; with --scaling or --end-to-end also 'all' (default local)")
    b.add_argument("--json", action="store_true", help="print the figures as JSON")
    b.add_argument("--scaling", action="store_true",
                   help="time bursts of 1k/4k/16k runs and fan-outs of 2k/8k/32k tasks: the cost per "
                        "task instance must not grow with the backlog")
    b.add_argument("--reference", action="store_true",
                   help="alternate the model with the minimal SimPy simulation of the same workload "
                        "(fresh processes) and print the median speed ratio")
    b.add_argument("--pairs", type=int, default=3, help="with --reference: alternating pairs (default 3)")
    b.add_argument("--end-to-end", action="store_true",
                   help="also write the run's results folder (CSVs, charts, report) as sim run does and "
                        "print what it adds to the simulation's time (target: at most 25 %%); with "
                        "--executor all, each executor in a fresh process")
    add_limit_argument(b)

    s = sub.add_parser("schema", help="write the JSON Schema of scenario files (for editors)")
    s.add_argument("--out", default="-", help="file to write (default: standard output)")

    pr = sub.add_parser("profile", help="print a built-in profile, to copy and edit")
    pr.add_argument("name", nargs="?", help="profile name (omit to list them)")

    k = sub.add_parser("calibrate", help="fit a profile's overheads to exports of real Airflow runs")
    k.add_argument("--runs", action="append", required=True, metavar="EXPORT",
                   help="task_instance export (CSV, Airflow's columns); repeatable")
    k.add_argument("--dag", action="append", required=True, metavar="STRUCTURE",
                   help="a DAG to fit on: <dag_id>.tasks.json from Airflow's REST API; repeatable")
    k.add_argument("--executor", required=True, choices=["local", "celery"],
                   help="the executor the exports were recorded on")
    k.add_argument("--dag-runs", action="append", metavar="CSV", help="dag_run export (CSV); repeatable")
    k.add_argument("--config", metavar="FILE", help="the deployment's configuration, 'section.key = value' lines")
    k.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a known setting, not fitted, e.g. overheads.scheduler_host_cores=2 (repeatable)")
    k.add_argument("--body", dest="bodies", action="append", default=[], metavar="DAG[.TASK]=SECONDS",
                   help="a task's own work when known (e.g. chain=0.5 for `sleep 0.5`); else estimated")
    k.add_argument("--predict", action="append", default=[], metavar="STRUCTURE",
                   help="a DAG not fitted on, to predict with the fitted profile and compare; repeatable")
    k.add_argument("--base", default="airflow-2.10", help="profile to start from (default airflow-2.10)")
    k.add_argument("--out", help="write the fitted profile to this YAML file")
    k.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    k.add_argument("--seeds", type=int, default=3, help="simulations per evaluation (default 3)")
    k.add_argument("--evaluations", type=int, default=300, help="optimiser budget (default 300)")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")
    j = sub.add_parser("calibrate-all", help="fit one profile to many recorded configurations at once; "
                                             "--cross-validate leaves each one out in turn")
    j.add_argument("folders", nargs="+", metavar="FOLDER",
                   help="a folder of recorded runs (task_instances.csv, dag_runs.csv, config.txt), or a "
                        "folder of such folders (the real-Airflow harness's results)")
    j.add_argument("--structures", metavar="DIR",
                   help="folder of <dag_id>.tasks.json (default: the first 'rest' folder beside or above "
                        "the first FOLDER)")
    j.add_argument("--dag", action="append", default=[], metavar="DAG_ID", help="only these DAGs (repeatable)")
    j.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a known fact of the measuring machine (default: overheads.scheduler_host_cores=2, "
                        "celery.workers_on_scheduler_host=true, the machine of data/airflow-runs)")
    j.add_argument("--body", dest="bodies", action="append", default=[], metavar="DAG=SECONDS",
                   help="a DAG's task bodies (default: the benchmark DAGs' sleeps)")
    j.add_argument("--cross-validate", action="store_true",
                   help="leave one configuration out at a time: fit on the others, predict it")
    j.add_argument("--held-out-speed", choices=("lone", "session"), default="lone",
                   help="with --cross-validate, the machine speed a left-out configuration is predicted at: "
                        "'lone' (default), for each DAG the speed at which the fold's profile takes the "
                        "configuration's other DAGs' lone tasks from queued to end (less their sleep) as the "
                        "recording did, as a user measures their own machine; 'session', its session's speed "
                        "fitted on the session's other configurations")
    j.add_argument("--speed-only", action="store_true",
                   help="fit only each session's cpu_speed against the base profile's machine, its "
                        "mechanisms as they are: the speed at which the model starts a lone task as fast as "
                        "the recording did (with Airflow 3, whose start_date precedes the start-up: finishes "
                        "it as fast); a few lone tasks recorded on your machine are enough")
    j.add_argument("--base", default="airflow-2.10", help="profile to start from (default airflow-2.10)")
    j.add_argument("--out", help="write the profile fitted on every configuration to this YAML file")
    j.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    j.add_argument("--seeds", type=int, default=2, help="simulations per configuration and evaluation (default 2)")
    j.add_argument("--evaluations", type=int, default=None,
                   help="optimiser budget per fit (default 240; --speed-only has none: it simulates 10 speeds)")
    j.add_argument("--rounds", type=int, default=1,
                   help="search this many times, each from where the last ended with --evaluations of its own "
                        "(default 1): a round's steps start large again")
    j.add_argument("--first", dest="first", action="append", default=[], metavar="KEY=VALUE",
                   help="a staged fit: search first with this setting on top (e.g. a measured mechanism "
                        "switched off, overheads.task_background_in_run=0), then as long again from there "
                        "with the settings as they are (repeatable; every fold the same)")
    j.add_argument("--processes", type=int, default=1, help="cross-validation folds fitted at once (default 1)")
    j.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _load(args):
    from .limits import check_limit_flag, check_work  # lazy: keeps sim --help fast
    from .scenario import load_scenario  # lazy: keeps sim --help fast
    check_limit_flag(args.max_task_instances)
    scenario = load_scenario(args.scenario, sets=args.sets, executor=args.executor, seed=args.seed,
                             profile=args.profile)
    check_work(scenario, args.max_task_instances)
    return scenario


def _out_dir(args, scenario, leaf) -> Path:
    """--out, or results/<scenario name as a safe folder name>/<leaf>; refused (exit 2) before any
    work if it is not ours to write (sim.results.check_out_dir)."""
    from .results import check_out_dir, safe_name  # lazy: keeps sim --help fast
    if isinstance(leaf, (list, tuple)):
        leaf = "+".join(leaf)
    return check_out_dir(Path(args.out) if args.out else Path("results") / safe_name(scenario.name) / safe_name(leaf))


def cmd_run(args) -> int:
    from .simulation import Simulation  # lazy: keeps sim --help fast
    scenario = _load(args)
    out = _out_dir(args, scenario, scenario.executor.kind)
    from .results import stream_folder  # lazy: keeps sim --help fast
    # --stream: transitions and events go to a folder beside --out as the run goes (None: kept in memory)
    with stream_folder(out) if args.stream else nullcontext() as folder:
        sim = Simulation(scenario, record_transitions=not args.no_transitions, progress=not args.no_progress,
                         stream_to=folder)
        result = sim.run()
        result.write(out, charts=not args.no_charts)
    s = result.summary
    d = s["scheduling_delay_seconds"]
    print(f"{scenario.name}: {s['dag_runs']['count']} DAG runs, {s['task_instances']['count']} task "
          f"instances on {scenario.executor.kind} ({s['profile']} profile, seed {s['seed']}), "
          f"{s['simulated_seconds'] / 3600:.2f} simulated hours")
    for line in s["deployment"]:
        print(f"  on {line}")
    print(f"  DAG-run makespan   mean {_f(s['dag_runs']['makespan_seconds']['mean'])}  "
          f"p95 {_f(s['dag_runs']['makespan_seconds']['p95'])}")
    print(f"  ready -> started   p50 {_f(d['ready_to_started']['p50'])}  p95 {_f(d['ready_to_started']['p95'])}  "
          f"p99 {_f(d['ready_to_started']['p99'])}")
    for stage in ("ready_to_scheduled", "scheduled_to_queued", "queued_to_launched", "launched_to_started"):
        print(f"    {stage.replace('_', ' '):22s} mean {_f(d[stage]['mean'])}  p95 {_f(d[stage]['p95'])}")
    print(f"  executor slots busy {100 * (s['utilisation']['executor_slots'] or 0):.1f}%   "
          f"states {s['task_instances']['by_state']}")
    failed_runs = s["dag_runs"]["by_state"].get("failed", 0)
    if failed_runs:
        tis = s["task_instances"]["by_state"]
        print(f"  NOTE: {failed_runs} of {s['dag_runs']['count']} DAG runs failed "
              f"({tis.get('failed', 0)} task instances failed, {tis.get('upstream_failed', 0)} upstream_failed)")
    if s["stuck"]["count"]:
        print(f"  WARNING: {s['stuck']['count']} task instances never finished (see summary.json 'stuck')")
    print(f"  results in {out}/")
    return EXIT_OK


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}s"


def cmd_compare(args) -> int:
    from .compare import METRICS, compare  # lazy: keeps sim --help fast
    from .report.html import ci_text  # lazy: keeps sim --help fast
    from .scenario import load_scenario  # lazy: keeps sim --help fast
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    if not executors:
        raise SimError("--executors: name at least one executor (local, celery, kubernetes, celery_kubernetes)")
    if args.seeds < 1:
        raise SimError("--seeds must be at least 1")
    from .limits import FLAG, check_limit_flag, check_work  # lazy: keeps sim --help fast
    check_limit_flag(args.max_task_instances)
    scenario = load_scenario(args.scenario, sets=args.sets)
    out = _out_dir(args, scenario, "compare")
    tries = max(1.0, check_work(scenario, args.max_task_instances)["tries"])   # a run is work even if empty
    if tries * args.seeds * len(executors) > args.max_task_instances:
        raise SimError(f"{args.scenario}: the comparison would simulate about "
                       f"{tries * args.seeds * len(executors):,.0f} task-instance tries ({tries:,.0f} per "
                       f"run x {args.seeds} seeds x {len(executors)} executors), more than the limit of "
                       f"{args.max_task_instances:,}; use fewer seeds or raise the limit with {FLAG} N")
    cmp = compare(args.scenario, executors, args.seeds, args.sets, args.jobs, progress=True, base_seed=args.seed)
    cmp.write(out, charts=not args.no_charts, title=scenario.name)
    t = cmp.table
    print(f"{scenario.name}: {', '.join(executors)} over {args.seeds} seeds (mean ± 95% CI)")
    head = f"  {'':34s}" + "".join(f"{ex:>24s}" for ex in executors)
    print(head)
    for metric, label in METRICS.items():
        cells = []
        for ex in executors:
            r = t[(t["executor"] == ex) & (t["metric"] == metric)].iloc[0]
            cells.append(ci_text(r["mean"], r["ci95"], share="share" in metric or "utilisation" in metric))
        print(f"  {label:34s}" + "".join(f"{c:>24s}" for c in cells))
    print("  deployments:")
    for dep in cmp.runs.drop_duplicates("executor")["deployment"]:
        print(f"    {dep}")
    stuck = int(cmp.runs["stuck"].sum())
    if stuck:
        print(f"  WARNING: {stuck} task instances never finished in some runs (see runs.csv)")
    print(f"  results in {out}/")
    return EXIT_OK


def cmd_sweep(args) -> int:
    from .scenario import load_scenario  # lazy: keeps sim --help fast
    from .sweep import parse_grid, sweep  # lazy: keeps sim --help fast
    grid = parse_grid(args.grid)
    if args.seeds < 1:
        raise SimError("--seeds must be at least 1")
    from .limits import check_limit_flag, check_work  # lazy: keeps sim --help fast
    check_limit_flag(args.max_task_instances)
    scenario = load_scenario(args.scenario, sets=args.sets)
    out = _out_dir(args, scenario, "sweep")
    check_work(scenario, args.max_task_instances)
    sw = sweep(args.scenario, grid, args.seeds, args.sets, args.jobs, args.dask, progress=True,
               dask_timeout=args.dask_timeout, max_task_instances=args.max_task_instances, base_seed=args.seed)
    sw.write(out, charts=not args.no_charts)
    t = sw.table
    failed = t[t["error"] != ""]
    print(f"{scenario.name}: {len(t)} points ({' x '.join(f'{k} {len(v)}' for k, v in grid.items())}"
          f" x {args.seeds} seeds), {len(failed)} failed; table in {out}/sweep.csv")
    ok = t[t["error"] == ""]
    if len(ok):
        shown = [k for k in grid if k != "executor"] + ["executor", "seed"]
        shown += [c for c in ("makespan_mean_s", "makespan_p95_s", "delay_p95_s", "cost_usd")
                  if c in ok.columns]
        print(ok[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for _, r in failed.iterrows():
        print(f"  failed: seed {r['seed']} {r['executor']}: {r['error']}", file=sys.stderr)
    # a failed point is a failed sweep: exit 2 when every failure is the user's to fix, else 1
    if len(failed):
        user = failed["error"].str.match(r"(Scenario|Sim)Error").all()
        return EXIT_BAD_INPUT if user else EXIT_INTERNAL
    return EXIT_OK


def cmd_explain(args) -> int:
    from .explain import explain  # lazy: keeps sim --help fast
    from .simulation import Simulation  # lazy: keeps sim --help fast
    scenario = _load(args)
    result = Simulation(scenario, progress=False).run()
    try:
        print(explain(result, args.dag_run, args.dag, args.task))
    except ValueError as e:
        raise SimError(str(e)) from None
    return EXIT_OK


def cmd_validate(args) -> int:
    from .scenario.loader import celery_queue_warnings  # lazy: keeps sim --help fast
    scenario = _load(args)
    for w in celery_queue_warnings(scenario):
        print(f"{args.scenario}: warning: {w}", file=sys.stderr)
    n_tasks = sum(len(d) for d in scenario.dags)
    print(f"{args.scenario}: OK: scenario {scenario.name!r}, {len(scenario.dags)} DAGs, {n_tasks} tasks, "
          f"executor {scenario.executor.kind}, profile {scenario.profile}, horizon {scenario.horizon:g}s")
    return EXIT_OK


def cmd_bench(args) -> int:
    if args.scaling:
        return _bench_scaling(args)
    if args.reference:
        return _bench_reference(args)
    from .bench import run_bench  # lazy: keeps sim --help fast
    from .limits import FLAG, check_limit_flag  # lazy: keeps sim --help fast
    check_limit_flag(args.max_task_instances)
    if args.task_instances < 1:
        raise SimError(f"--task-instances must be at least 1 (got {args.task_instances})")
    if args.task_instances > args.max_task_instances:
        raise SimError(f"--task-instances {args.task_instances:,} is more than the limit of "
                       f"{args.max_task_instances:,} task instances; raise it with {FLAG} N")
    if args.end_to_end:
        return _bench_end_to_end(args)
    fig = run_bench(args.task_instances, args.profile, args.executor, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(fig))
    else:
        print(f"sim bench ({fig['executor']}, {fig['profile']}): {fig['task_instances']} task instances "
              f"({fig['simulated_hours']} simulated hours) in {fig['wall_seconds']} s = "
              f"{fig['task_instances_per_second']} task instances/s; peak memory {fig['peak_memory_mib']} MiB")
    return EXIT_OK


def _bench_scaling(args) -> int:
    from .bench import run_scaling, scaling_growth  # lazy: keeps sim --help fast
    kinds = ["local", "celery", "kubernetes"] if args.executor == "all" else [args.executor]
    rows = []
    if not args.json:
        print(f"{'executor':<11}{'workload':<9}{'size':>7}{'task inst.':>12}{'wall s':>9}{'TI/s':>9}{'us/TI':>8}")
    for kind in kinds:
        rows += run_scaling(kind, args.profile, progress=None if args.json else lambda r: print(
            f"{r['executor']:<11}{r['workload']:<9}{r['size']:>7}{r['task_instances']:>12}"
            f"{r['wall_seconds']:>9}{r['task_instances_per_second']:>9}"
            f"{r['microseconds_per_task_instance']:>8}", flush=True))
    growth = {kind: scaling_growth([r for r in rows if r["executor"] == kind]) for kind in kinds}
    if args.json:
        print(json.dumps({"cases": rows, "growth": growth}))
    else:
        for kind, g in growth.items():
            print(f"{kind}: cost per task instance, largest case / smallest: "
                  + ", ".join(f"{w} x{v}" for w, v in g.items()) + " (target: at most x1.5)")
    return EXIT_OK


def _bench_end_to_end(args) -> int:
    from .bench import run_end_to_end, run_end_to_end_fresh  # lazy: keeps sim --help fast
    if args.executor == "all":
        rows = []
        for kind in ("local", "celery", "kubernetes"):
            rows.append(run_end_to_end_fresh(args.task_instances, args.profile, kind))
            if not args.json:
                _print_end_to_end(rows[-1], header=len(rows) == 1)
    else:
        rows = [run_end_to_end(args.task_instances, args.profile, args.executor, progress=sys.stderr.isatty())]
        if not args.json:
            _print_end_to_end(rows[0], header=True)
    if args.json:
        print(json.dumps(rows if args.executor == "all" else rows[0]))
    else:
        print("  overhead = results folder (CSVs, summary.json, charts, report.html) / simulation "
              "(target: at most 25 % at 200,000 task instances)")
    return EXIT_OK


def _print_end_to_end(r: dict, header: bool) -> None:
    if header:
        print(f"{'executor':<11}{'task inst.':>11}{'simulation s':>14}{'results s':>11}{'end to end s':>14}"
              f"{'overhead':>10}{'results MiB':>13}{'peak MiB':>10}")
    print(f"{r['executor']:<11}{r['task_instances']:>11}{r['simulation_seconds']:>14}{r['results_seconds']:>11}"
          f"{r['end_to_end_seconds']:>14}{r['overhead_percent']:>9}%{r['results_mib']:>13}"
          f"{r['peak_memory_mib']:>10}", flush=True)


def _bench_reference(args) -> int:
    from .bench import run_reference  # lazy: keeps sim --help fast
    if not args.json:
        print(f"sim bench --reference ({args.executor}, {args.profile}, {args.task_instances} task instances; "
              "fresh processes, alternating)")
    fig = run_reference(args.task_instances, args.pairs, args.profile, args.executor,
                        progress=None if args.json else lambda r: print(
                            f"  pair {r['pair']}: model {r['model_ti_per_s']} TI/s ({r['model_peak_mib']} MiB), "
                            f"reference {r['reference_ti_per_s']} TI/s ({r['reference_peak_mib']} MiB): "
                            f"ratio {r['ratio']}", flush=True))
    if args.json:
        print(json.dumps(fig))
    else:
        print(f"  median ratio {fig['median_ratio']} (targets: 0.6 Local, 0.5 Celery and Kubernetes)")
    return EXIT_OK


def cmd_schema(args) -> int:
    from .scenario import json_schema, write_json_schema  # lazy: keeps sim --help fast
    if args.out == "-":
        print(json.dumps(json_schema(), indent=2, sort_keys=True))
    else:
        write_json_schema(args.out)
        print(f"wrote {args.out}")
    return EXIT_OK


def cmd_profile(args) -> int:
    from importlib import resources  # lazy: keeps sim --help fast
    from .scenario import list_profiles  # lazy: keeps sim --help fast
    if not args.name:
        print("\n".join(list_profiles()))
        return EXIT_OK
    if args.name not in list_profiles():
        raise SimError(f"unknown profile {args.name!r}; built-in profiles: {', '.join(list_profiles())}")
    print(resources.files("sim.profiles").joinpath(f"{args.name}.yaml").read_text(), end="")
    return EXIT_OK


def cmd_calibrate(args) -> int:
    from .calibration.cli import run_calibrate  # lazy: keeps sim --help fast
    return run_calibrate(args)


def cmd_calibrate_all(args) -> int:
    from .calibration.cli import run_calibrate_all  # lazy: keeps sim --help fast
    return run_calibrate_all(args)


COMMANDS = {"calibrate": cmd_calibrate, "calibrate-all": cmd_calibrate_all, "run": cmd_run, "compare": cmd_compare, "sweep": cmd_sweep, "explain": cmd_explain, "validate": cmd_validate, "bench": cmd_bench, "schema": cmd_schema,
            "profile": cmd_profile}


def _show_note(message, category, filename, lineno, file=None, line=None):
    """Notes to the user (sim.scenario.aliases.SimNote) as 'note: ...', other warnings as usual."""
    if issubclass(category, SimNote):
        print(f"note: {message}", file=sys.stderr)
    else:
        _warn_default(message, category, filename, lineno, file, line)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_note
    try:
        return COMMANDS[args.command](args)
    except SimError as e:
        print(f"error: {e}" if "\n" not in str(e) else f"error:\n{e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:                  # `sim schema | head`: the reader left, not an error
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input
        if args.debug:
            raise
        print(f"internal error: {type(e).__name__}: {e}\n(run with --debug for the traceback, and please "
              f"report it with the scenario)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
