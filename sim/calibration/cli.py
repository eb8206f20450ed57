"""``sim calibrate``: fit, print the fit quality per DAG and stage, predict held-out DAGs, write
the profile."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from ..errors import SimError
from .fit import PARAMETERS, calibrate
from .inputs import HANDOFF, parse_bodies, parse_sets
from .model import complete_sections
from .joint import (BASE_MACHINE, BENCH_BODIES, HELD_OUT_SPEEDS, MACHINE_2CORE, SPEED, SPEED_RANGE, cross_validate,
                    default_fit, error_table, handoff_table, held_out_summary, joint_fit, load_configurations,
                    reference_session, write_joint_profile, write_speed_profile)
from .profile_file import quality_table
from .speed import MEASURES, POINTS, fit_speeds


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


def _structures_dir(args) -> Path:
    if args.structures:
        d = Path(args.structures)
        if not d.is_dir():
            raise SimError(f"--structures {d}: not a folder")
        return d
    start = Path(args.folders[0]).resolve()
    for d in (start, *start.parents):
        if (d / "rest").is_dir():
            return d / "rest"
    raise SimError(f"no 'rest' folder of <dag_id>.tasks.json beside or above {args.folders[0]}; "
                   f"name one with --structures")


def run_calibrate_all(args) -> int:
    if args.seeds < 1:
        raise SimError("--seeds must be at least 1")
    if args.held_out_speed != "lone" and not args.cross_validate:
        raise SimError("--held-out-speed: only --cross-validate predicts configurations left out")
    if args.speed_only and args.evaluations is not None:
        raise SimError(f"--evaluations: --speed-only has no optimiser budget; it simulates a fixed "
                       f"{POINTS} speeds per session")
    args.evaluations = 240 if args.evaluations is None else args.evaluations
    if args.evaluations < 10:
        raise SimError("--evaluations must be at least 10")
    if args.processes < 1:
        raise SimError("--processes must be at least 1")
    if args.rounds < 1:
        raise SimError("--rounds must be at least 1")
    if args.speed_only and args.rounds != 1:
        raise SimError("--rounds: --speed-only has no search to repeat")
    machine = parse_sets(args.sets) if args.sets else dict(MACHINE_2CORE)
    bodies = dict(BENCH_BODIES)
    for key, value in parse_bodies(args.bodies).items():
        if isinstance(value, dict):
            raise SimError(f"--body {key}: give a DAG's body (DAG=SECONDS), not a task's")
        bodies[key] = value
    configs = load_configurations(args.folders, _structures_dir(args), machine=machine, bodies=bodies,
                                  base_profile=args.base, dags=args.dag or None)
    seeds = tuple(range(args.seed, args.seed + args.seeds))
    progress = not args.no_progress and sys.stderr.isatty()
    first = _first(args, configs)
    print(f"calibrate-all: {len(configs)} configurations: "
          + ", ".join(f"{c.name} ({'/'.join(c.dags)})" for c in configs))
    if args.speed_only:
        return _speed_only(args, configs, seeds, progress)
    if first:
        print("  staged: first with " + ", ".join(f"{k}={v}" for k, v in first.items())
              + ", then from there with the settings as they are")
    fit = joint_fit(configs, seeds=seeds, max_evaluations=args.evaluations, progress=progress, rounds=args.rounds,
                    first=first)
    print(f"  fitted on all of them in {fit.wall_seconds:.0f} s ({fit.evaluations} evaluations x "
          f"{len(seeds)} seeds x {len(configs)} configurations), mean squared relative error {fit.objective:.4g}:")
    ref = reference_session(configs)
    for key, value in fit.fitted.items():
        if key.startswith(SPEED):
            print(f"    {key:34s} {value:10.4g}    session {key[len(SPEED):]}'s machine against {ref}'s (cpu_speed 1)")
        else:
            print(f"    {key:34s} {value:10.4g} s  {PARAMETERS[key][3]}")
    print("  fit quality (every configuration fitted on):")
    q = fit.quality()
    print(error_table(q, "    "))
    if (q["stage"] == HANDOFF).any():
        print(handoff_table(q, "    "))
    if args.cross_validate:
        q = cross_validate(configs, seeds=seeds, max_evaluations=args.evaluations, progress=progress,
                           processes=args.processes, speed=args.held_out_speed, rounds=args.rounds,
                           first=first)
        print(f"  cross-validation: each configuration predicted by a fit to the others, at a machine speed "
              f"{HELD_OUT_SPEEDS[args.held_out_speed]}:")
        print(error_table(q, "    "))
        if (q["stage"] == HANDOFF).any():
            print(handoff_table(q, "    "))
        print(f"  {held_out_summary(q)}")
        if args.held_out_speed == "lone":
            print("  the speeds they were predicted at (DAG: speed; '-': none of the other DAGs' tasks ran alone, "
                  "its session's):")
            for name, used in q.attrs["speeds"].items():
                print(f"    {name:24s} " + ", ".join(f"{d} {speed_text(v)}" for d, v in used.items()))
    if args.out:
        path = write_joint_profile(fit, args.out, args.base)
        print(f"  profile written to {path}")
    return 0


def _first(args, configs) -> dict:
    """``--first``'s settings, checked against the settings a configuration is simulated with."""
    if not args.first:
        return {}
    if args.speed_only:
        raise SimError("--first: --speed-only has no search to stage")
    try:
        first = parse_sets(args.first, "--first")
        complete_sections(configs[0].problem.prof, {}, first)
    except SimError as e:
        raise SimError(str(e) if str(e).startswith("--first") else f"--first: {e}") from None
    fitted = set(default_fit(configs))
    for key, value in first.items():
        if key in fitted:
            raise SimError(f"--first {key}: it is fitted; --first sets what the first stage holds fixed")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SimError(f"--first {key}={value!r}: expected a number")
    return first


def speed_text(v: float) -> str:
    """A held-out speed as the cross-validation lists it: '-' for none, '(limit)' after one the
    search range clipped (the model could not match the lone tasks at any speed it may try)."""
    if v != v:
        return "-"
    clipped = v >= SPEED_RANGE * (1 - 1e-9) or v <= (1 + 1e-9) / SPEED_RANGE
    return f"{v:.3f}" + (" (limit)" if clipped else "")


def _speed_only(args, configs, seeds, progress) -> int:
    """Each session's cpu_speed against the base profile's machine, nothing else fitted."""
    if args.cross_validate:
        raise SimError("--speed-only fits no mechanism, so there is nothing to cross-validate")
    sessions = sorted({c.session for c in configs})
    if args.out and len(sessions) > 1:
        raise SimError(f"--out: the folders hold {len(sessions)} sessions ({', '.join(sessions)}), and a "
                       f"profile has one cpu_speed; give one session's folders")
    fit, why = fit_speeds(configs, reference=BASE_MACHINE, seeds=seeds, progress=progress)
    print(f"  {args.base}'s mechanisms as they are; fitted in {fit.wall_seconds:.0f} s ({fit.evaluations} "
          f"speeds simulated x {len(seeds)} seeds) on the tasks that ran alone:")
    for session in sessions:
        speed, w = fit.fitted[SPEED + session], why[session]
        print(f"    session {session}: cpu_speed {speed:.3g} (its cores against {args.base}'s machine)")
        print(f"      a lone task's {MEASURES[w['measure']]}: recorded {w['recorded']:.3f} s; the model's "
              f"{w['latency']:.3f} + {w['cpu']:.3f} / cpu_speed s")
        own = w["configurations"]
        if len(own) > 1:
            spread = max(own.values()) / min(own.values()) - 1.0
            print("      by configuration: " + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(own.items()))
                  + (f" ({spread * 100:.0f} % apart: one speed splits the difference, and the configurations "
                     f"that started slower will come out short; docs/background.md, The machine's speed)"
                     if spread > 0.15 else ""))
    print(f"  mean squared relative error of the stages at that speed: {fit.objective:.4g}")
    print("  fit quality:")
    print(error_table(fit.quality(), "    "))
    if args.out:
        w = why[sessions[0]]
        path = write_speed_profile(fit.fitted[SPEED + sessions[0]], args.out, args.base, sessions[0],
                                   f"The speed at which a lone task's {MEASURES[w['measure']]}, {w['latency']:.3f} + "
                                   f"{w['cpu']:.3f} / cpu_speed s in the model, is the recorded {w['recorded']:.3f} s.")
        print(f"  profile written to {path}")
    return 0
