"""Adding an executor touches its own module and one registration (docs/conventions.md's worked
example, applied to a copy of the package and run end to end from a scenario file)."""
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from sim.executors.registry import CLASS_TO_KIND, EXECUTORS, kind_of, names

ROOT = Path(__file__).resolve().parents[1]

MODULE = '''
from .local import LocalExecutor


class SequentialExecutor(LocalExecutor):
    """Airflow 2's SequentialExecutor: one task at a time on the scheduler's host."""
    name = "SequentialExecutor"


def build_sequential(sim, settings: dict) -> SequentialExecutor:
    return SequentialExecutor(sim, 1, sim.scheduler_host)
'''
REGISTRATION = '''
from .sequential import build_sequential
register(ExecutorKind("sequential", "SequentialExecutor", build_sequential, ("host_cores",),
                      runs_on=("local",), removed_in=3))
'''
SCENARIO = '''
name: seq
seed: 3
horizon: 30m
executor: {kind: sequential}
dags:
  - dag_id: d
    schedule: {at: [0]}
    tasks: {a: {duration: 60}, b: {duration: 60}, c: {duration: 60, executor: SequentialExecutor}}
'''
RUN = '''
import json, sys
from sim.scenario import load_scenario
from sim.simulation import Simulation
r = Simulation(load_scenario(sys.argv[1])).run()
t = r.task_instances
print(json.dumps({"executors": sorted(set(t["executor"].astype(str))), "states": sorted(set(t["state"].astype(str))),
                  "max_running": int(max(((t["started_at"] <= s) & (t["ended_at"] > s)).sum() for s in t["started_at"])),
                  "deployment": r.summary.get("deployment")}))
'''


def test_the_registry_is_the_one_table():
    assert list(EXECUTORS) == ["local", "celery", "kubernetes", "celery_kubernetes"]
    assert kind_of("CeleryExecutor") == "celery" and kind_of("local") == "local"
    assert set(names()) == set(EXECUTORS) | set(CLASS_TO_KIND)


def test_a_new_executor_is_its_module_and_one_registration(tmp_path):
    pkg = tmp_path / "sim"
    shutil.copytree(ROOT / "sim", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "executors" / "sequential.py").write_text(textwrap.dedent(MODULE))
    with (pkg / "executors" / "registry.py").open("a") as f:
        f.write(REGISTRATION)
    (tmp_path / "seq.yaml").write_text(SCENARIO)
    (tmp_path / "run.py").write_text(RUN)
    out = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "seq.yaml")], cwd=tmp_path,
                         capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["executors"] == ["SequentialExecutor"] and got["states"] == ["success"]
    assert got["max_running"] == 1                     # one task at a time
