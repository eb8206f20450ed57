"""Fixtures shared by several test modules."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "airflow-runs"


@pytest.fixture(scope="session")
def new_session():
    """data/airflow-runs/new-session, the session no fit has seen: its configurations (every DAG
    they recorded) and its machine's speed against the profile's (session af210-wide-1), fitted on
    its diamonds' lone tasks alone. Fitted once; the tests only read both."""
    from sim.calibration.joint import SPEED, joint_fit, load_configurations

    new = load_configurations([DATA / "new-session"], DATA / "rest")
    dags = {c.name: list(c.dags) for c in new}
    for c in new:
        c.dags = ["diamond"]
    speed = joint_fit(new, fit=(), reference="af210-wide-1", seeds=(0,), max_evaluations=12).fitted[
        SPEED + new[0].session]
    for c in new:
        c.dags = dags[c.name]
    return new, speed
