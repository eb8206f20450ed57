"""Scenario files: what to simulate (DAGs, schedules, Airflow settings, executor, profile).

``load_scenario(path)`` reads, validates and builds a :class:`Scenario`; every problem with the
file is a :class:`sim.errors.ScenarioError` naming the file, the field and the problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..airflow.config import AirflowConfig, Overheads
from ..executors.registry import EXECUTORS
from ..model.dag import DAG


@dataclass
class ExecutorSpec:
    kind: str                                       # local | celery | kubernetes | celery_kubernetes
    settings: dict = field(default_factory=dict)    # the executor section's other keys, as given


@dataclass
class Scenario:
    name: str
    description: str
    seed: int
    horizon: float                  # seconds: runs are created while due at or before it
    profile: str                    # as named in the file (built-in name or path)
    airflow: AirflowConfig          # profile, then the scenario's airflow: keys
    overheads: Overheads            # profile, then the scenario's overheads: keys
    executor: ExecutorSpec
    dags: list[DAG]
    source: str | None = None       # the file it came from
    #: The scenario as validated (after --executor/--seed/--profile/--set), e.g. to record a run.
    data: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, dags: list[DAG], *, name: str = "python", description: str = "", seed: int = 0,
              horizon: float = 86400.0, profile: str = "airflow-2.10", airflow: dict | None = None,
              overheads: dict | None = None, executor: "str | list[str]" = "local",
              executor_settings: dict | None = None) -> "Scenario":
        """A scenario from DAGs built in Python: the profile's settings, then ``airflow`` and
        ``overheads`` key by key (Airflow's config names). ``executor`` is a kind, or a list of
        kinds for Airflow 2.10+'s several executors (the first is the default)."""
        prof = load_profile(profile)
        kinds = list(executor) if isinstance(executor, (list, tuple)) else [executor]
        settings = _settings(kinds, prof, executor_settings or {})
        if len(kinds) > 1:
            settings["kinds"] = kinds                # as the scenario loader passes them
        return cls(name=name, description=description, seed=seed, horizon=float(horizon),
                   profile=profile,
                   airflow=AirflowConfig(**{**prof.get("airflow", {}), **(airflow or {})}),
                   overheads=Overheads(**{**prof.get("overheads", {}), **(overheads or {})}),
                   executor=ExecutorSpec("+".join(kinds), settings),
                   dags=list(dags))


def _settings(kinds: list, prof: dict, given: dict) -> dict:
    """An executor's settings: for the executors ``kinds`` that need them, the profile's celery: and
    kubernetes: sections, then the scenario's (or caller's) own keys."""
    out = dict(given)
    for section in dict.fromkeys(s for k in kinds for s in EXECUTORS[k].sections):
        out[section] = {**prof.get(section, {}), **(given.get(section) or {})}
    return out


# Imported last: the loader builds the classes above (a circular import, resolved by order).
from .loader import apply_set, load_scenario, scenario_from_dict  # noqa: E402
from .profiles import list_profiles, load_profile  # noqa: E402
from .schema import json_schema, write_json_schema  # noqa: E402
from ..importers import airflow_export as _airflow_export  # noqa: E402

# A structure given as a scenario file is read by this package's loader (the importers sit below it).
_airflow_export.scenario_dags_reader = lambda path: load_scenario(path).dags

__all__ = ["Scenario", "ExecutorSpec", "load_scenario", "scenario_from_dict", "apply_set",
           "load_profile", "list_profiles", "json_schema", "write_json_schema"]
