"""Calibration profiles: the built-in ones (package data ``sim/profiles/<name>.yaml``) or a user's
YAML file with the same sections, ``airflow:`` and ``overheads:``, and optionally
``extends: <profile>`` to start from another profile and change a few keys."""
from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from ..errors import ScenarioError
from .aliases import resolve_airflow_aliases
from ..files import MAX_YAML_BYTES, read_text
from .schema import ProfileFile, read_yaml, validate

_PACKAGE = "sim.profiles"


def list_profiles() -> list[str]:
    """Names of the built-in profiles."""
    return sorted(r.name[:-5] for r in resources.files(_PACKAGE).iterdir() if r.name.endswith(".yaml"))


def _locate(ref: str, base_dir) -> tuple[str, str]:
    """(file name for messages, text) of a profile; ValueError if there is none."""
    if ref in list_profiles():
        res = resources.files(_PACKAGE) / f"{ref}.yaml"
        return str(res), res.read_text(encoding="utf-8")
    candidates = ([Path(base_dir) / ref] if base_dir is not None else []) + [Path(ref)]
    for path in candidates:
        if path.is_file():
            return str(path), read_text(path, MAX_YAML_BYTES, "profile")
    msg = f"unknown profile {ref!r}: not a built-in profile ({', '.join(list_profiles())}) nor a file"
    close = difflib.get_close_matches(ref, list_profiles(), n=1)
    raise ValueError(msg + (f"; did you mean {close[0]!r}?" if close else ""))


def merge_sections(base: dict, over: dict) -> dict:
    """``over``'s airflow/overheads keys on top of ``base``'s (a profile, or a profile it extends)."""
    out = {section: dict(base.get(section, {})) for section in ("airflow", "overheads", "celery", "kubernetes")}
    for section, values in over.items():
        for key, value in values.items():
            if key == "pools" and value is not None:      # pools merge name by name
                value = {**(out[section].get("pools") or {}), **value}
            out[section][key] = value
    return out


def load_profile(name_or_path: str, base_dir=None, *, _chain: tuple[str, ...] = ()) -> dict:
    """``{"airflow": {...}, "overheads": {...}}`` with the keys the profile (and what it extends)
    sets, values validated and durations in seconds. A path is looked up relative to ``base_dir``
    (the scenario's folder), then the current directory.

    Raises ScenarioError; for a profile that does not exist, with ``file=None`` and path
    ``profile`` so the caller can name its own file."""
    try:
        where, text = _locate(name_or_path, base_dir)
    except ValueError as e:
        raise ScenarioError(None, [("profile", str(e))]) from None
    if where in _chain:
        names = " -> ".join(Path(p).name for p in (*_chain, where))
        raise ScenarioError(_chain[-1], [("extends", f"profiles extend each other in a loop: {names}")])
    data = read_yaml(text, where)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(where, "a profile must be a mapping with airflow: and overheads: sections")
    resolve_airflow_aliases(data, where)
    spec = validate(ProfileFile, data, where)
    base: dict = {"airflow": {}, "overheads": {}, "celery": {}, "kubernetes": {}}
    if spec.extends:
        try:
            base = load_profile(spec.extends, Path(where).parent, _chain=(*_chain, where))
        except ScenarioError as e:
            if e.file is None:                # the profile it names does not exist
                raise ScenarioError(where, [("extends", msg) for _, msg in e.problems]) from None
            raise
    return merge_sections(base, spec.sections())
