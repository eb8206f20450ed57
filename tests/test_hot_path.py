"""The hot path's conventions that keep it fast (docs/conventions.md), checked on the source.

On Python 3.11 ``TaskInstanceState.QUEUED`` goes through ``EnumType.__getattr__``'s hook on every
access (0.2 us, about 30 times a task instance on the bench's path): the modules every task
instance passes through read enum members as module constants instead (issue #13). Nothing here
times anything; it keeps a refactor from bringing the slow reads back unnoticed.
"""
import ast
from pathlib import Path

import pytest

from sim.model import states, stimuli

PKG = Path(__file__).resolve().parents[1] / "sim"
ENUMS = {"TaskInstanceState", "DagRunState", "Stimulus", "EventKind"}
#: the modules a task instance passes through on its way from created to finished
HOT = ["airflow/scheduler.py", "airflow/task_runner.py", "airflow/critical_section.py", "airflow/lost_tasks.py",
       "model/state_core.py", "model/runtime.py", "model/trigger_rules.py", "executors/base.py",
       "executors/local.py", "executors/celery.py", "executors/kubernetes.py", "infra/broker.py",
       "infra/celery_worker.py", "infra/host.py", "records.py", "engine.py"]


def enum_member_reads(source: str) -> list[str]:
    """``Name.MEMBER`` reads where ``Name`` is one of the enum classes (or an alias it was
    imported under) and ``MEMBER`` is upper case."""
    tree = ast.parse(source)
    names = set(ENUMS)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname for a in node.names if a.name in ENUMS and a.asname}
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in ENUMS:
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return [f"{n.value.id}.{n.attr} (line {n.lineno})" for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in names
            and n.attr.isupper()]


@pytest.mark.parametrize("module", HOT)
def test_the_hot_path_reads_enum_members_as_module_constants(module):
    assert enum_member_reads((PKG / module).read_text()) == []


def test_the_check_finds_a_member_read_through_an_alias():
    src = "from ..model.states import TaskInstanceState as S\nx = S.QUEUED\ny = S(value)\n"
    assert enum_member_reads(src) == ["S.QUEUED (line 2)"]


def test_the_constants_are_the_members_themselves():
    for cls, module, prefix in ((states.TaskInstanceState, states, ""), (states.DagRunState, states, "DR_"),
                                (stimuli.Stimulus, stimuli, ""), (stimuli.EventKind, stimuli, "")):
        for member in cls:
            assert getattr(module, prefix + member.name) is member


@pytest.mark.parametrize("executor", ["local", "celery", "kubernetes"])
def test_an_ended_run_is_freed_by_reference_counting(executor):
    """An ended run and its task instances (and a pod and its task process) refer to each other;
    the run drops those references when it ends (DagRun.release), so nothing of the bench's
    workload is left for the cyclic collector. Before, every run became cyclic garbage: 2 % of a
    1 M task-instance run's time went to the collector, whose full passes walk the whole heap."""
    import gc

    from sim.bench import bench_scenario
    from sim.simulation import Simulation
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        sim = Simulation(bench_scenario(2_000, executor=executor), progress=False)
        result = sim.run()
        gc.collect()                      # (the simulation is still held: only true garbage)
        kinds = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert len(result.task_instances) > 1_500 and sim.env.now > 0
    assert not kinds & {"TaskInstance", "DagRun", "Pod", "Process"}, sorted(kinds)
