"""``sim explain`` reads the kinds of stimuli and events, never the wording of their messages."""
from pathlib import Path

import pytest

from sim.explain import RunStory, explain
from sim.scenario import load_scenario
from sim.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]


def _stories(result) -> str:
    out = []
    for i in range(min(2, len(result.dag_runs))):
        out.append(explain(result, i))
        for task in sorted(set(RunStory(result, i).name.values())):
            out.append(explain(result, i, task_id=task))
    return "\n".join(out)


@pytest.mark.parametrize("name", ["seed-diamond", "seed-diamond-celery", "deferrable-triggerer",
                                  "k8s-short-tasks", "sensors-poke-vs-reschedule"])
def test_rewording_every_message_changes_no_explanation(name):
    result = Simulation(load_scenario(ROOT / "scenarios" / f"{name}.yaml")).run()
    before = _stories(result)
    # every cause and event message reworded (reversed), as a later edit of the code might
    result.transitions["cause"] = result.transitions["cause"].astype(str).map(lambda m: m[::-1])
    if len(result.events):
        result.events["what"] = result.events["what"].astype(str).map(lambda m: "reworded: " + m[::-1])
    assert _stories(result) == before
    assert "mini-scheduler" in before or "broker" in before or "trigger" in before or "pod" in before


def test_a_run_where_no_task_started_is_explained_not_an_error():
    from sim import scenario_from_dict
    data = {"name": "none-start", "seed": 1, "horizon": "10m", "executor": {"kind": "local"},
            "dags": [{"dag_id": "d", "schedule": {"at": [0]},
                      "tasks": {"m": {"duration": 1, "expand": {"count": 0}},
                                "after": {"duration": 1}},
                      "dependencies": ["m >> after"]}]}
    result = Simulation(scenario_from_dict(data)).run()
    text = explain(result, 0)
    assert "No task of this run started" in text and "skipped" in text


def test_a_catch_up_run_created_late_is_explained_and_an_on_time_one_is_not():
    """sim explain says why a scheduled run was created long after it was due (catch-up:
    earlier intervals first, max_active_runs, the next_dagrun pointer), from the runs' times."""
    from sim import run, scenario_from_dict
    doc = {"name": "t", "horizon": "30m", "seed": 1,
           "dags": [{"dag_id": "d", "schedule": {"every": "10m"}, "catchup_runs": 5, "max_active_runs": 2,
                     "tasks": {"a": {"duration": "30s"}}}]}
    result = run(scenario_from_dict(doc))
    late = RunStory(result, 4).story()           # the fifth interval: made in the third wave of two
    assert "It was created" in late and "its 4 earlier intervals due by then were made first" in late
    assert "up to 2 runs of d were queued or running and 4 of them ended" in late, late
    assert "It was created" not in RunStory(result, 0).story()      # made by the first loop
