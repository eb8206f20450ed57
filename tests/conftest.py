"""Fixtures shared by several test modules."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "airflow-runs"


def held_out_session(folder: str):
    """A measuring folder no fit has seen: its configurations (every DAG they recorded) and the
    speed of each of its sessions' machines against the profile's (session af210-wide-1), as
    ``{SPEED + session: speed}``, fitted on its diamonds' lone tasks alone. A folder can hold more
    than one session (process-cpu: local-p8 was measured again in a second harness invocation), and
    each configuration is predicted at its own session's speed."""
    from sim.calibration.joint import SPEED, load_configurations
    from sim.calibration.speed import fit_speeds

    # the speed as `sim calibrate-all FOLDER --speed-only --dag diamond` fits it (the diamonds alone
    # replayed), then every DAG predicted at it
    diamonds = load_configurations([DATA / folder], DATA / "rest", dags=["diamond"])
    speeds = fit_speeds(diamonds, reference="af210-wide-1", seeds=(0, 1))[0].fitted
    new = load_configurations([DATA / folder], DATA / "rest")
    assert set(speeds) == {SPEED + c.session for c in new}
    return new, speeds


@pytest.fixture(scope="session")
def new_session():
    """data/airflow-runs/new-session (a faster machine than the training set's). Fitted once; the
    tests only read it."""
    return held_out_session("new-session")


@pytest.fixture(scope="session")
def held_out_settings_session():
    """data/airflow-runs/held-out (settings and a workload no fit has seen, the harness alone)."""
    return held_out_session("held-out")


@pytest.fixture(scope="session")
def held_out_2_session():
    """data/airflow-runs/held-out-2 (measured after --speed-only fitted lone starts: Local p6, Celery
    p10 c5)."""
    return held_out_session("held-out-2")


@pytest.fixture(scope="session")
def start_load_session():
    """data/airflow-runs/start-load (measured 2026-12-07 after every fit: Local p16 and p32, the
    fan-outs and the diamond)."""
    return held_out_session("start-load")


@pytest.fixture(scope="session")
def held_out_3_session():
    """data/airflow-runs/held-out-3 (measured 2026-12-07 after every fit: Local p24, Celery p16 c12,
    the etl shape and CPU-bound bodies under Celery, none measured before)."""
    return held_out_session("held-out-3")


@pytest.fixture(scope="session")
def features_session():
    """data/airflow-runs/features (measured 2026-12-07 after every fit: a pool, a DAG's
    max_active_tasks, retries and a rescheduling sensor, at settings the fit knows)."""
    return held_out_session("features")


@pytest.fixture(scope="session")
def features_2_session():
    """data/airflow-runs/features-2 (measured 2026-12-07 after every fit: dynamic task mapping and
    trigger rules after a failure, at settings the fit knows)."""
    return held_out_session("features-2")


@pytest.fixture(scope="session")
def examine_cost_session():
    """data/airflow-runs/examine-cost (diamonds measured beside examine_cost.py's runs, for the
    machine's speed)."""
    return held_out_session("examine-cost")


@pytest.fixture(scope="session")
def process_cpu_session():
    """data/airflow-runs/process-cpu (a slower machine, with a CPU sampler beside the runs)."""
    return held_out_session("process-cpu")
