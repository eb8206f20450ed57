"""Calibration: fit a profile's overheads to real Airflow runs, then predict other runs with it.

- :func:`calibrate`: fit the overhead parameters (scheduler loop, DB, task process start-up, run and
  exit CPU, Celery hops, host cores when unknown) to an export of real runs; returns a
  :class:`Calibration` with ``.profile``, ``.quality``, ``.write(path)`` and ``.predict(...)``;
- :func:`predict`: simulate DAGs with a profile and compare with their recorded runs;
- :func:`read_config`: the known settings of a dump of Airflow's configuration.

``sim calibrate`` is the command line.
"""
from .fit import DEFAULT_FIT, PARAMETERS, Calibration, calibrate, predict
from .inputs import STAGES, parse_bodies, parse_sets, read_config

__all__ = ["calibrate", "predict", "Calibration", "read_config", "parse_sets", "parse_bodies",
           "PARAMETERS", "DEFAULT_FIT", "STAGES"]
