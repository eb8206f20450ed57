"""Writing a fitted profile: a YAML profile file like the built-in ones, every number with a comment
saying whether it was fitted, given as a known setting, or inherited (with the base profile's own
source comment), and a header saying what it was fitted on, when, and how well."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd

from ..airflow.config import CeleryConfig, Overheads
from ..errors import SimError
from ..scenario.profiles import _locate
from .inputs import STAGES
from .parameters import PARAMETERS

_LINE = re.compile(r"^  (?P<key>[a-z_]+):[^#]*(?:#\s*(?P<comment>.*))?$")


def base_comments(base: str) -> dict:
    """``{(section, key): comment}`` from the base profile file's own comments."""
    try:
        _, text = _locate(base, None)
    except ValueError:
        return {}
    out, section = {}, None
    for line in text.splitlines():
        if re.match(r"^[a-z_]+:\s*(#.*)?$", line):
            section = line.split(":")[0]
            continue
        m = _LINE.match(line)
        if m and section:
            out[(section, m["key"])] = (m["comment"] or "").strip()
    return out


def _num(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3g}"
    return str(v)


def quality_table(q: pd.DataFrame, prefix: str = "") -> str:
    """One line per DAG and stage: observed -> simulated mean, error; makespans with their spread."""
    lines = [f"{prefix}{'dag':10s} {'role':9s} {'stage':18s} {'observed':>9s} {'simulated':>9s} {'error':>8s}"
             f"   makespan spread (min-max)"]
    for _, r in q.iterrows():
        err = f"{100 * r['error']:+7.1f}%" if math.isfinite(r["error"]) else "    n/a"
        extra = ""
        if r["stage"] == "makespan":
            inside = "inside" if r["within_spread"] else "OUTSIDE"
            extra = f"   {r['observed_min']:.2f}-{r['observed_max']:.2f} s ({int(r['n'])} runs): {inside}"
        lines.append(f"{prefix}{str(r['dag_id'])[:10]:10s} {r['role']:9s} {STAGES[r['stage']]:18s} "
                     f"{r['observed_mean']:8.3f}s {r['simulated_mean']:8.3f}s {err}{extra}")
    return "\n".join(lines)


def write_profile(cal, path) -> Path:
    """Write ``cal`` (a :class:`~sim.calibration.Calibration`) as a profile file; returns its path."""
    path = Path(path)
    base = cal.problem.base_profile
    extends = base
    if Path(base).is_file():                  # a file: name it so that it is found from `path`
        extends = str(Path(base).resolve())
    comments = base_comments(base)
    src = cal.problem.sources
    names = {"overheads": [f for f in Overheads.__dataclass_fields__],
             "celery": [f for f in CeleryConfig.__dataclass_fields__]}
    sections = cal.sections()
    out = [f"{MARKER}` on {cal.fitted_at}, executor {cal.executor}.",
           f"# Runs: {src['runs']}" + (f"; DAG runs: {src['dag_runs']}" if src.get("dag_runs") else ""),
           f"# Fitted on DAGs: {', '.join(f'{d} ({cal.problem.runs[d]} runs)' for d in cal.dags)}; "
           f"seeds {', '.join(map(str, cal.seeds))}; {cal.evaluations} evaluations in {cal.wall_seconds:.0f} s.",
           "# Task bodies (the tasks' own work): "
           + ("; ".join(f"{d}: {v}" for d, v in cal.problem.known_bodies.items()) + " (given); others "
              if cal.problem.known_bodies else "")
           + "estimated from the recorded durations.",
           f"# Objective (mean squared relative error of stage means and makespans): {cal.objective:.4g}",
           "# Fit quality:"]
    out += quality_table(cal.quality, "#   ").splitlines()
    out += ["# Numbers: 'fitted' = calibrated here; 'known' = a setting of the deployment (config or",
            "# --set); others are inherited from the base profile, with its source.",
            f"description: \"Fitted to {', '.join(cal.dags)} on the {cal.executor} executor ({cal.fitted_at})\"",
            f"extends: {extends}"]
    for section in ("airflow", "overheads", "celery"):
        if section == "celery" and cal.executor != "celery":
            continue
        keys = [k for k in (names.get(section) or []) if k in sections[section]] if section != "airflow" \
            else [k.split(".", 1)[1] for k in cal.known if k.startswith("airflow.")]
        if not keys:
            continue
        out.append(f"{section}:")
        for k in keys:
            dotted = f"{section}.{k}"
            v = sections[section][k]
            if dotted in cal.fitted:
                note = f"fitted ({_range(dotted)})"
            elif dotted in cal.known:
                note = "known: a setting of the deployment"
            else:
                c = comments.get((section, k), "")
                note = f"inherited from {Path(base).name}" + (f": {c}" if c else "")
            if isinstance(v, dict) or isinstance(v, list):
                continue
            out.append(f"  {k}: {_num(v)}".ljust(38) + f" # {note}")
    return write_safely(path, "\n".join(out) + "\n")


#: The first line of every profile file sim writes: a file starting otherwise is the user's.
MARKER = "# Profile fitted by `sim calibrate"


def write_safely(path, text: str) -> Path:
    """Write a fitted profile in one step (a temporary file renamed over the target), never over
    a file sim did not write: an existing ``path`` must start with :data:`MARKER`."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise SimError(f"--out {path}: exists and is not a regular file; name a new file")
    if path.exists():
        try:
            head = path.open("rb").read(len(MARKER)).decode("utf-8", "replace")
        except OSError as e:
            raise SimError(f"--out {path}: cannot read it ({e.strerror}); name a new file") from None
        if head != MARKER:
            raise SimError(f"--out {path}: exists and was not written by sim calibrate; "
                           f"name a new file (sim never overwrites your files)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise SimError(f"--out {path}: cannot write it ({e.strerror})") from None
    return path


def _range(key: str) -> str:
    lo, hi = PARAMETERS[key][:2]
    return f"searched {lo:g}-{hi:g}"
