"""Real inputs (issue #7): WfCommons WfFormat traces and exports of Airflow's own history become
DAGs; the shipped traces obey the DAG bounds (validation.md, "DAG bounds") on the ``ideal``
profile; bad files are refused with the file, the place in it and the problem."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from sim import Scenario, run
from sim import theory as th
from sim.cli import main
from sim.errors import ScenarioError
from sim.importers import (DagStructure, dag_from_export, load_wfcommons, observed_dag_runs,
                           observed_runs, read_dag_runs, read_rest_tasks, read_task_instances)
from sim.model.durations import Constant, Empirical
from sim.model.schedules import At, Interval
from sim.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
WF = DATA / "wfcommons"
RUNS = DATA / "airflow-runs"
REST = RUNS / "rest"
TRACES = sorted(p for p in WF.rglob("*.json") if not p.name.startswith("wfformat-schema"))
TRACE_IDS = [p.stem for p in TRACES]
EXPORTS = ["local-p8", "celery-p8-c4"]
#: The four DAGs of data/airflow-runs (README): tasks, runs, task instances.
BENCH = {"diamond": (4, 5, 20), "chain": (10, 5, 50), "fanout": (42, 5, 210), "fanout0": (42, 3, 126)}
UNLIMITED = 1_000_000


# -- helpers ------------------------------------------------------------------------------------
def trace(path: Path) -> tuple[dict, dict]:
    """(specification task by id, execution task by id), read straight from the JSON."""
    wf = json.loads(path.read_text())["workflow"]
    return ({t["id"]: t for t in wf["specification"]["tasks"]},
            {t["id"]: t for t in wf["execution"]["tasks"]})


def edges_of(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d.task_id) for t in dag.tasks.values() for d in t.downstream}


def ideal_run(dag, slots: int):
    """The DAG's one run on the ideal profile, LocalExecutor with ``slots`` slots and every other
    limit out of the way (as tests/test_validation.py does); returns (makespan, recorded
    durations by task)."""
    dag.max_active_runs = dag.max_active_tasks = UNLIMITED
    scenario = Scenario.build([dag], profile="ideal", horizon=3600,
                              airflow={"parallelism": slots, "default_pool_task_slot_count": UNLIMITED,
                                       "max_active_tasks_per_dag": UNLIMITED,
                                       "max_active_runs_per_dag": UNLIMITED})
    result = run(scenario)
    assert not result.stuck
    (dr,) = result.dag_runs.itertuples()
    assert dr.state == "success"
    tis = result.task_instances
    assert len(tis) == len(dag) and (tis.try_number == 1).all()
    durations = dict(zip(tis.task_id.astype(str), (tis.ended_at - tis.started_at).astype(float)))
    return float(dr.ended_at - dr.started_at), durations


def success_durations(csv_path: Path, dag_id: str) -> dict[str, list[float]]:
    """Each task's success durations in file order, read with the csv module."""
    out: dict[str, list[float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row["dag_id"] == dag_id and row["state"] == "success":
                out.setdefault(row["task_id"], []).append(float(row["duration"]))
    return out


def rewrite_csv(src: Path, dst: Path, edit) -> Path:
    """A copy of a CSV export with ``edit(rows)`` applied to its list of rows (header first)."""
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with open(dst, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return dst


def expect_error(call, *phrases: str) -> str:
    with pytest.raises(ScenarioError) as info:
        call()
    msg = str(info.value)
    for p in phrases:
        assert p in msg, f"{p!r} not in:\n{msg}"
    assert "Traceback" not in msg
    return msg


# -- WfCommons traces ---------------------------------------------------------------------------
def test_all_17_traces_are_shipped_with_their_license():
    assert len(TRACES) == 17
    for name in ("LICENSE.md", "README.md", "wfformat-schema-1.5.json"):
        assert (WF / name).is_file()
    assert "LESSER GENERAL PUBLIC LICENSE" in (WF / "LICENSE.md").read_text().upper()


@pytest.mark.parametrize("path", TRACES, ids=TRACE_IDS)
def test_every_trace_imports(path):
    spec, execution = trace(path)
    dag = load_wfcommons(path)
    assert dag.dag_id == path.stem and isinstance(dag.schedule, At) and dag.schedule.at == (0.0,)
    assert len(dag) == len(spec) == len(execution) and set(dag.tasks) == set(spec)
    expected = ({(p, tid) for tid, t in spec.items() for p in t["parents"]}
                | {(tid, c) for tid, t in spec.items() for c in t["children"]})
    assert edges_of(dag) == expected
    for tid, task in dag.tasks.items():
        x = execution[tid]
        assert task.duration == Constant(float(x["runtimeInSeconds"]))
        assert task.cpu_bound
        assert task.cpu == (float(x["coreCount"]) if "coreCount" in x else None)
        if x.get("memoryInBytes"):
            assert task.memory == pytest.approx(x["memoryInBytes"] / 2**20)
        else:
            assert task.memory is None


def test_trace_dag_id_and_schedule_can_be_given():
    dag = load_wfcommons(TRACES[0], dag_id="wf", schedule=Interval(600))
    assert dag.dag_id == "wf" and dag.schedule == Interval(600)


@pytest.mark.parametrize("path", TRACES, ids=TRACE_IDS)
def test_trace_makespan_equals_critical_path_with_unlimited_slots(path):
    """validation.md, "DAG bounds": zero overhead and unlimited slots give makespan = CP, the CP
    of the trace's runtimes (1e-6 s), and the recorded durations are the runtimes."""
    dag = load_wfcommons(path)
    makespan, durations = ideal_run(dag, UNLIMITED)
    runtimes = {t: task.duration.mean for t, task in dag.tasks.items()}
    assert durations == pytest.approx(runtimes, abs=1e-9)
    assert makespan == pytest.approx(dag.critical_path(), rel=0, abs=1e-6)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("path", TRACES, ids=TRACE_IDS)
def test_trace_makespan_within_graham_bounds(path, m):
    """validation.md, "DAG bounds": on m slots, max(Wk/m, CP) <= makespan <= Wk/m + (1 - 1/m)·CP."""
    dag = load_wfcommons(path)
    work, cp = dag.total_work(), dag.critical_path()
    makespan, _ = ideal_run(dag, m)
    lo, hi = th.dag_lower_bound(work, cp, m), th.graham_bound(work, cp, m)
    assert lo - 1e-6 <= makespan <= hi + 1e-6, f"m={m}: {makespan} outside [{lo}, {hi}]"


# -- bad WfFormat -------------------------------------------------------------------------------
FORKJOIN = WF / "helloworld" / "helloworld-forkjoin-10-chameleon.json"


def bad_trace(tmp_path, edit, name="bad.json") -> Path:
    data = json.loads(FORKJOIN.read_text())
    edit(data)
    f = tmp_path / name
    f.write_text(json.dumps(data))
    return f


@pytest.mark.parametrize("edit, place, phrase", [
    (lambda d: d["workflow"]["execution"]["tasks"][3].pop("runtimeInSeconds"),
     "workflow.execution.tasks[3].runtimeInSeconds", "missing"),
    (lambda d: d["workflow"]["execution"]["tasks"][3].update(runtimeInSeconds=-1),
     "workflow.execution.tasks[3].runtimeInSeconds", "must be a number of seconds >= 0"),
    (lambda d: d["workflow"]["execution"]["tasks"][3].update(runtimeInSeconds="10"),
     "workflow.execution.tasks[3].runtimeInSeconds", "must be a number"),
    (lambda d: d["workflow"]["specification"]["tasks"][3]["parents"].append("ghost"),
     "workflow.specification.tasks[3].parents[1]", "unknown task id 'ghost'"),
    (lambda d: d["workflow"]["specification"]["tasks"][0]["children"].append("ghost"),
     "workflow.specification.tasks[0].children[8]", "unknown task id 'ghost'"),
    (lambda d: d["workflow"]["specification"]["tasks"][1].pop("parents"),
     "workflow.specification.tasks[1].parents", "missing"),
    (lambda d: d["workflow"]["specification"]["tasks"][1].update(id="cpuhog_forkjoin_00000001"),
     "workflow.specification.tasks[1].id", "duplicate task id"),
    (lambda d: d["workflow"]["execution"]["tasks"].pop(4),
     "workflow.specification.tasks[4]", "has no entry in workflow.execution.tasks"),
    (lambda d: d["workflow"]["execution"]["tasks"][0].update(coreCount=0),
     "workflow.execution.tasks[0].coreCount", "must be a number >= 1"),
    (lambda d: d["workflow"].pop("execution"), "workflow.execution", "missing"),
    (lambda d: d.update(schemaVersion="1.3"), "schemaVersion", "not supported"),
    (lambda d: d.update(schemaVersion="1.4"), "workflow.tasks", "a WfFormat 1.4 trace lists its tasks there"),
    (lambda d: d["workflow"]["specification"]["tasks"][0]["parents"].append("cpuhog_forkjoin_00000010"),
     "workflow.specification.tasks", "cycle"),
])
def test_invalid_wfformat_is_refused(tmp_path, edit, place, phrase):
    f = bad_trace(tmp_path, edit)
    expect_error(lambda: load_wfcommons(f), f"{f}: {place}: ", phrase)


def test_not_json_or_not_a_trace(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"workflow": ')
    expect_error(lambda: load_wfcommons(f), str(f), "not valid JSON", "line 1")
    f.write_text("[1, 2]")
    expect_error(lambda: load_wfcommons(f), str(f), "the top level must be an object")
    expect_error(lambda: load_wfcommons(tmp_path / "missing.json"), "missing.json", "cannot read")


# -- Airflow exports ----------------------------------------------------------------------------
def test_rest_structures():
    shapes = {
        "diamond": {("t1", "t2"), ("t1", "t3"), ("t2", "t4"), ("t3", "t4")},
        "chain": {(f"c{i}", f"c{i + 1}") for i in range(9)},
        "fanout": {("start", f"p{i:02d}") for i in range(40)} | {(f"p{i:02d}", "end") for i in range(40)},
    }
    shapes["fanout0"] = shapes["fanout"]
    for dag_id, edges in shapes.items():
        s = read_rest_tasks(REST / f"{dag_id}.tasks.json")
        assert isinstance(s, DagStructure) and s.dag_id == dag_id
        assert len(s.tasks) == BENCH[dag_id][0] and s.edges == edges
        t = s.tasks[0]
        assert (t.pool, t.pool_slots, t.queue, t.priority_weight, t.weight_rule, t.retries,
                t.trigger_rule, t.operator_name, t.retry_delay) == \
            ("default_pool", 1, "default", 1, "downstream", 0, "all_success", "BashOperator", 300.0)


@pytest.mark.parametrize("export", EXPORTS)
def test_read_task_instances_types(export):
    ti = read_task_instances(RUNS / export / "task_instances.csv")
    assert len(ti) == sum(n for _, _, n in BENCH.values())
    for col in ("queued_dttm", "start_date", "end_date"):
        assert str(ti[col].dt.tz) == "UTC" and ti[col].notna().all()
    assert ti["duration"].dtype == "float64" and ti["try_number"].dtype == "int64"
    assert (ti["map_index"] == -1).all() and set(ti["state"]) == {"success"}
    assert ti.attrs["source"].endswith("task_instances.csv")
    # duration is Airflow's end_date - start_date
    assert ((ti.end_date - ti.start_date).dt.total_seconds() - ti.duration).abs().max() < 1e-3
    dr = read_dag_runs(RUNS / export / "dag_runs.csv")
    assert dr.groupby("dag_id").size().to_dict() == {d: runs for d, (_, runs, _) in BENCH.items()}
    assert str(dr["start_date"].dt.tz) == "UTC"


@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("dag_id", list(BENCH))
def test_export_reproduces_the_dags(export, dag_id):
    ti_path = RUNS / export / "task_instances.csv"
    structure = read_rest_tasks(REST / f"{dag_id}.tasks.json")
    dag = dag_from_export(ti_path, REST / f"{dag_id}.tasks.json")
    tasks, runs, tis = BENCH[dag_id]
    assert dag.dag_id == dag_id and len(dag) == tasks and edges_of(dag) == structure.edges
    assert isinstance(dag.schedule, At) and dag.schedule.at == (0.0,)
    ti = read_task_instances(ti_path)
    mine = ti[ti.dag_id == dag_id]
    assert mine.run_id.nunique() == runs and len(mine) == tis
    expected = success_durations(ti_path, dag_id)
    for tid, task in dag.tasks.items():
        assert isinstance(task.duration, Empirical)
        assert task.duration.samples == tuple(expected[tid])
        assert len(task.duration.samples) == runs
        assert task.pool == "default_pool" and task.queue == "default" and task.expand is None


def test_export_from_a_dataframe_a_dag_or_a_scenario(tmp_path):
    ti = read_task_instances(RUNS / "local-p8" / "task_instances.csv")
    a = dag_from_export(ti, REST / "diamond.tasks.json", schedule=Interval(60))
    assert a.schedule == Interval(60)
    b = dag_from_export(ti, a)                          # a DAG: its structure and attributes
    assert edges_of(b) == edges_of(a) and b["t4"].duration == a["t4"].duration
    f = tmp_path / "structure.yaml"
    f.write_text("name: s\ndags:\n  - dag_id: diamond\n    schedule: {at: [0]}\n"
                 "    tasks: {t1: {duration: 1, pool_slots: 2, queue: q}, t2: {duration: 1},"
                 " t3: {duration: 1}, t4: {duration: 1, trigger_rule: all_done}}\n"
                 "    dependencies: t1 >> [t2, t3] >> t4\n"
                 "airflow: {pools: {}}\n")
    c = dag_from_export(ti, f)
    assert edges_of(c) == edges_of(a) and c["t1"].pool_slots == 2 and c["t1"].queue == "q"
    assert c["t4"].trigger_rule == "all_done" and c["t1"].duration == a["t1"].duration


def test_mapped_tasks_get_their_map_counts(tmp_path):
    """Rows with map_index >= 0 are one mapped task: its duration pools every index, and expand
    resamples how many indices each run had."""
    def edit(rows):
        h = rows[0]
        col = {c: i for i, c in enumerate(h)}
        out = [h]
        for r in rows[1:]:
            if r[col["dag_id"]] != "fanout":
                continue
            if r[col["task_id"]].startswith("p"):
                r[col["map_index"]] = str(int(r[col["task_id"]][1:]))
                r[col["task_id"]] = "mapped"
            out.append(r)
        rows[:] = out
    f = rewrite_csv(RUNS / "local-p8" / "task_instances.csv", tmp_path / "ti.csv", edit)
    s = tmp_path / "mapped.tasks.json"
    s.write_text(json.dumps({"tasks": [
        {"task_id": "start", "downstream_task_ids": ["mapped"]},
        {"task_id": "mapped", "downstream_task_ids": ["end"], "is_mapped": True},
        {"task_id": "end", "downstream_task_ids": []}]}))
    dag = dag_from_export(f, s, dag_id="fanout")
    assert dag["mapped"].expand == Empirical((40.0,) * 5)
    assert len(dag["mapped"].duration.samples) == 200


@pytest.mark.parametrize("export", EXPORTS)
def test_observed_runs(export):
    ti_path, dr_path = RUNS / export / "task_instances.csv", RUNS / export / "dag_runs.csv"
    obs = observed_runs(ti_path, dr_path, REST)
    ti, dr = read_task_instances(ti_path), read_dag_runs(dr_path)
    assert len(obs) == len(ti) and list(obs.task_id) == list(ti.task_id)
    for col in ("ready_at", "queued_at", "started_at", "ended_at", "run_start_at", "run_end_at"):
        assert str(obs[col].dt.tz) == "UTC"
    # makespan per run = the dag_run's end_date - start_date
    runs = observed_dag_runs(ti_path, dr_path)
    assert len(runs) == len(dr) == 18 and (runs.makespan_from == "dag_run").all()
    want = dr.set_index("run_id")
    got = runs.set_index("run_id")
    assert (got.makespan - (want.end_date - want.start_date).dt.total_seconds()).abs().max() < 1e-9
    assert (got.state == "success").all() and got.task_instances.sum() == len(ti)
    # ready = latest upstream end (t4 of the diamond), or the run's start for a root
    t4 = obs[(obs.dag_id == "diamond") & (obs.task_id == "t4")].iloc[0]
    ups = obs[(obs.run_id == t4.run_id) & obs.task_id.isin(["t2", "t3"])]
    assert t4.ready_at == ups.ended_at.max()
    t1 = obs[(obs.run_id == t4.run_id) & (obs.task_id == "t1")].iloc[0]
    assert t1.ready_at == want.loc[t4.run_id, "start_date"]
    assert obs.ready_at.notna().all()
    assert (obs.ready_to_queued >= 0).all() and (obs.queued_to_started > 0).all()
    assert obs.ready_to_started.to_numpy() == pytest.approx(
        (obs.ready_to_queued + obs.queued_to_started).to_numpy(), abs=1e-6)
    # without the dag_run export and the structure: run bounds from the task instances, no ready
    bare = observed_runs(ti)
    assert bare.ready_at.isna().all() and (bare.makespan_from == "task_instances").all()
    first = bare[bare.run_id == t4.run_id]
    assert first.makespan.iloc[0] == pytest.approx(
        (first.ended_at.max() - first.queued_at.min()).total_seconds())


# -- bad exports --------------------------------------------------------------------------------
TI_CSV = RUNS / "local-p8" / "task_instances.csv"


def set_cell(row: int, column: str, value: str):
    """An edit for rewrite_csv: data row ``row`` (1-based), ``column`` := value."""
    def edit(rows):
        rows[row][rows[0].index(column)] = value
    return edit


@pytest.mark.parametrize("edit, where, phrase", [
    (set_cell(3, "start_date", "2026-11-24T25:99"), "line 4 (row 3), column start_date",
     "cannot be read as a timestamp"),
    (set_cell(7, "end_date", "yesterday"), "line 8 (row 7), column end_date", "cannot be read"),
    (set_cell(2, "queued_dttm", "2026-11-24T08:56:52.025511"), "line 3 (row 2), column queued_dttm",
     "has no time zone"),
    (set_cell(5, "duration", "abc"), "line 6 (row 5), column duration", "is not a number"),
    (set_cell(5, "duration", "-1"), "line 6 (row 5), column duration", "is not a number >= 0"),
    (set_cell(9, "try_number", "1.5"), "line 10 (row 9), column try_number", "is not an integer"),
    (set_cell(4, "state", "succes"), "line 5 (row 4), column state", "unknown state 'succes'"),
    (set_cell(6, "task_id", ""), "line 7 (row 6), column task_id", "missing value"),
])
def test_bad_cells_are_refused(tmp_path, edit, where, phrase):
    f = rewrite_csv(TI_CSV, tmp_path / "ti.csv", edit)
    expect_error(lambda: read_task_instances(f), f"{f}: {where}: ", phrase)


def test_missing_columns_are_refused(tmp_path):
    def drop(*names):
        def edit(rows):
            keep = [i for i, c in enumerate(rows[0]) if c not in names]
            rows[:] = [[r[i] for i in keep] for r in rows]
        return edit
    f = rewrite_csv(TI_CSV, tmp_path / "ti.csv", drop("start_date", "duration"))
    msg = expect_error(lambda: read_task_instances(f), f"{f}: line 1 (the header), column start_date: ",
                       "missing column 'start_date'", "column duration")
    assert len(msg.splitlines()) == 2
    g = rewrite_csv(RUNS / "local-p8" / "dag_runs.csv", tmp_path / "dr.csv", drop("end_date"))
    expect_error(lambda: read_dag_runs(g), f"{g}: line 1 (the header), column end_date: ", "missing column")


def test_line_numbers_count_multiline_fields(tmp_path):
    """A quoted field spanning lines moves the following rows' line numbers; the message follows."""
    def edit(rows):
        rows[1][rows[0].index("next_kwargs")] = '{"a":\n1}'
        rows[3][rows[0].index("start_date")] = "bad"
    f = rewrite_csv(TI_CSV, tmp_path / "ti.csv", edit)
    expect_error(lambda: read_task_instances(f), "line 5 (row 3), column start_date")


def test_unknown_task_ids_are_refused(tmp_path):
    f = rewrite_csv(TI_CSV, tmp_path / "ti.csv", set_cell(5, "task_id", "c44"))
    expect_error(lambda: dag_from_export(f, REST / "chain.tasks.json"),
                 f"{f}: line 6 (row 5), column task_id: ", "task 'c44' is not in the structure of DAG 'chain'")


def test_rows_of_a_filtered_frame_keep_their_file_lines():
    ti = read_task_instances(TI_CSV)
    fan = ti[ti.dag_id == "fanout"].copy()
    label = fan.index[7]
    fan.loc[label, "task_id"] = "p99"
    expect_error(lambda: dag_from_export(fan, REST / "fanout.tasks.json"),
                 f"{TI_CSV}: line {label + 2} (row {label + 1}), column task_id: ", "'p99'")


def test_a_task_without_success_is_refused(tmp_path):
    def edit(rows):
        for r in rows[1:]:
            if r[0] == "chain" and r[rows[0].index("task_id")] == "c9":
                r[rows[0].index("state")] = "failed"
    f = rewrite_csv(TI_CSV, tmp_path / "ti.csv", edit)
    expect_error(lambda: dag_from_export(f, REST / "chain.tasks.json"),
                 f"{f}: column state: ", "task 'c9' of DAG 'chain' has no successful try")
    # calibration, whose known bodies replace the durations, takes a constant for it instead
    dag = dag_from_export(f, REST / "chain.tasks.json", unrun=0.0)
    assert dag.tasks["c9"].duration.mean == 0.0 and dag.tasks["c8"].duration.mean > 0.0


def test_wrong_dag_and_bad_structure(tmp_path):
    expect_error(lambda: dag_from_export(TI_CSV, REST / "chain.tasks.json", dag_id="nope"),
                 "column dag_id", "no task instances of DAG 'nope'")
    s = tmp_path / "chain.tasks.json"
    data = json.loads((REST / "chain.tasks.json").read_text())
    data["tasks"][2]["downstream_task_ids"] = ["c3", "ghost"]
    s.write_text(json.dumps(data))
    expect_error(lambda: read_rest_tasks(s), f"{s}: tasks[2].downstream_task_ids[1]: ", "unknown task 'ghost'")
    data["tasks"][2]["downstream_task_ids"] = ["c3"]
    data["tasks"][4]["trigger_rule"] = "all_done_setup_success"
    s.write_text(json.dumps(data))
    expect_error(lambda: read_rest_tasks(s), f"{s}: tasks[4].trigger_rule: ", "not modelled")
    expect_error(lambda: dag_from_export(TI_CSV, REST), "several DAGs", "dag_id")


# -- scenario files -----------------------------------------------------------------------------
def rel(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


def write_scenario(folder: Path, dag_lines: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "s.yaml"
    f.write_text(f"name: s\ndescription: test\nhorizon: 1h\n{extra}dags:\n  - dag_id: d\n"
                 f"    schedule: {{at: [0s]}}\n{dag_lines}")
    return f


def test_scenario_with_wfcommons_loads_and_runs(tmp_path):
    path = WF / "pegasus" / "montage" / "montage-chameleon-2mass-01d-001.json"
    f = write_scenario(tmp_path / "sub", f"    max_active_tasks: 8\n    wfcommons: {rel(path, tmp_path / 'sub')}\n",
                       "profile: ideal\n")
    s = load_scenario(f)
    (dag,) = s.dags
    assert dag.dag_id == "d" and len(dag) == 103 and dag.max_active_tasks == 8
    assert edges_of(dag) == edges_of(load_wfcommons(path))
    r = run(s)
    assert r.summary["dag_runs"]["count"] == 1 and set(r.task_instances.state) == {"success"}


def test_scenario_with_airflow_export_loads_and_runs(tmp_path):
    folder = tmp_path / "sub"
    f = write_scenario(folder, f"    airflow_export:\n      task_instances: {rel(TI_CSV, folder)}\n"
                               f"      structure: {rel(REST / 'diamond.tasks.json', folder)}\n"
                               f"      dag_id: diamond\n")
    s = load_scenario(f)
    (dag,) = s.dags
    assert dag.dag_id == "d" and set(dag.tasks) == {"t1", "t2", "t3", "t4"}
    assert dag["t1"].duration == Empirical(tuple(success_durations(TI_CSV, "diamond")["t1"]))
    r = run(s)
    assert r.summary["dag_runs"]["count"] == 1 and set(r.task_instances.state) == {"success"}


def test_scenario_entry_takes_exactly_one_source(tmp_path):
    trace_path = rel(TRACES[0], tmp_path)
    base = {"name": "s", "dags": [{"dag_id": "d", "schedule": {"at": [0]}}]}
    for extra, phrase in (({}, "give exactly one of tasks, wfcommons, airflow_export"),
                          ({"tasks": {"A": {"duration": 1}}, "wfcommons": trace_path}, "got tasks and wfcommons"),
                          ({"wfcommons": trace_path, "dependencies": "A >> B"}, "dependencies go with tasks")):
        data = {**base, "dags": [{**base["dags"][0], **extra}]}
        expect_error(lambda: scenario_from_dict(data, file="x.yaml", base_dir=tmp_path), "x.yaml: dags[0]: ", phrase)


def test_scenario_reports_errors_inside_the_referenced_file(tmp_path):
    bad = bad_trace(tmp_path, lambda d: d["workflow"]["execution"]["tasks"][3].pop("runtimeInSeconds"))
    f = write_scenario(tmp_path, "    wfcommons: bad.json\n")
    expect_error(lambda: load_scenario(f),
                 f"{f}: dags[0].wfcommons: {bad}: workflow.execution.tasks[3].runtimeInSeconds: missing")
    ti = rewrite_csv(TI_CSV, tmp_path / "ti.csv", set_cell(3, "start_date", "nope"))
    g = write_scenario(tmp_path / "e", f"    airflow_export: {{task_instances: ../ti.csv, structure: "
                                       f"{rel(REST / 'chain.tasks.json', tmp_path / 'e')}, dag_id: chain}}\n")
    expect_error(lambda: load_scenario(g), f"{g}: dags[0].airflow_export.task_instances: {ti}: "
                                           "line 4 (row 3), column start_date: ")
    h = write_scenario(tmp_path / "h", "    wfcommons: nowhere.json\n")
    expect_error(lambda: load_scenario(h), f"{h}: dags[0].wfcommons: ", "nowhere.json", "cannot read")


def test_a_scenario_structure_cannot_name_itself(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(f"name: s\ndags:\n  - dag_id: chain\n    schedule: {{at: [0]}}\n"
                 f"    airflow_export: {{task_instances: {TI_CSV}, structure: s.yaml}}\n")
    expect_error(lambda: load_scenario(f), "refers back to this scenario file")


@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_exits_2_without_traceback_on_bad_files(tmp_path, capsys, command):
    bad_trace(tmp_path, lambda d: d["workflow"]["specification"]["tasks"][3]["parents"].append("ghost"))
    f = write_scenario(tmp_path, "    wfcommons: bad.json\n")
    extra = ["--no-progress", "--out", str(tmp_path / "out")] if command == "run" else []
    assert main([command, str(f), *extra]) == 2
    err = capsys.readouterr().err
    assert "bad.json: workflow.specification.tasks[3].parents[1]: unknown task id 'ghost'" in err
    assert "Traceback" not in err
    rewrite_csv(TI_CSV, tmp_path / "ti.csv", set_cell(5, "task_id", "c44"))
    g = write_scenario(tmp_path / "e", f"    airflow_export: {{task_instances: ../ti.csv, structure: "
                                       f"{rel(REST / 'chain.tasks.json', tmp_path / 'e')}, dag_id: chain}}\n")
    assert main([command, str(g), *extra]) == 2
    err = capsys.readouterr().err
    assert "ti.csv: line 6 (row 5), column task_id: task 'c44'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_shipped_montage_scenario_runs(tmp_path):
    s = load_scenario(ROOT / "scenarios" / "wfcommons-montage.yaml")
    (dag,) = s.dags
    assert len(dag) == 103 and all(t.cpu_bound for t in dag.tasks.values())
    r = run(s)
    assert set(r.task_instances.state) == {"success"}
    makespans = r.dag_runs.ended_at - r.dag_runs.started_at
    assert (makespans >= dag.critical_path() - 1e-9).all()


def test_dag_files_without_airflow_say_which_extra(tmp_path, capsys):
    """Reading Airflow DAG files needs the [airflow] extra (tests/test_airflow_dags.py checks it
    with Airflow installed); without it the message says what to install, exit 2."""
    try:
        import airflow  # noqa: F401
        pytest.skip("apache-airflow is installed")
    except ImportError:
        pass
    from sim.errors import SimError
    from sim.importers import load_airflow_dags
    with pytest.raises(SimError, match=r"needs apache-airflow \(the \[airflow\] extra"):
        load_airflow_dags(RUNS / "bench_dags.py", default_duration=1)
    f = write_scenario(tmp_path, f"    airflow_export: {{task_instances: {TI_CSV}, "
                                 f"structure: {RUNS / 'bench_dags.py'}, dag_id: diamond}}\n")
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert "dags[0].airflow_export: reading Airflow DAG files needs apache-airflow" in err
    assert "Traceback" not in err


# -- WfFormat 1.4 and 1.6 (issue #12: WfCommons' current tools write 1.6) -------------------------
FORKJOIN = WF / "helloworld" / "helloworld-forkjoin-10-chameleon.json"


def test_wfformat_1_6_reads_as_1_5(tmp_path):
    data = json.loads(FORKJOIN.read_text())
    data["schemaVersion"] = "1.6"
    data["workflow"]["execution"]["tasks"][0]["metrics"] = {"cpu": [{"timestamp": 0, "value": 0.5}]}
    f = tmp_path / "t16.json"
    f.write_text(json.dumps(data))
    a, b = load_wfcommons(FORKJOIN), load_wfcommons(f, dag_id=FORKJOIN.stem)
    assert {t: (x.duration.mean, [d.task_id for d in x.downstream]) for t, x in a.tasks.items()} == \
           {t: (x.duration.mean, [d.task_id for d in x.downstream]) for t, x in b.tasks.items()}


def _trace_1_4() -> dict:
    """A hand-written WfFormat 1.4 trace: one list of tasks, dependencies by task name (the names
    differ from the ids), runtimes, cores and memory on each task."""
    task = lambda name, tid, parents, children, rt, cores: {  # noqa: E731
        "name": name, "id": tid, "type": "compute", "parents": parents, "children": children,
        "runtimeInSeconds": rt, "cores": cores, "memoryInBytes": 2 * 1024 * 1024,
        "files": [{"name": f"{name}.out", "link": "output", "sizeInBytes": 10}]}
    return {"name": "fj", "schemaVersion": "1.4", "wms": {"name": "Pegasus", "version": "5"},
            "workflow": {"makespanInSeconds": 30, "executedAt": "20240101T000000+0000", "machines": [],
                         "tasks": [task("split_ID01", "ID01", [], ["work_ID02", "work_ID03"], 5.0, 1),
                                   task("work_ID02", "ID02", ["split_ID01"], ["join_ID04"], 20.0, 2),
                                   task("work_ID03", "ID03", ["ID01"], ["join_ID04"], 12.5, 1),
                                   task("join_ID04", "ID04", ["work_ID02", "work_ID03"], [], 3.0, 1)]}}


def test_wfformat_1_4_reads_with_its_dependencies_by_name(tmp_path):
    f = tmp_path / "t14.json"
    f.write_text(json.dumps(_trace_1_4()))
    dag = load_wfcommons(f)
    assert list(dag.tasks) == ["split_ID01", "work_ID02", "work_ID03", "join_ID04"]
    assert {(u, d.task_id) for u, t in dag.tasks.items() for d in t.downstream} == {
        ("split_ID01", "work_ID02"), ("split_ID01", "work_ID03"), ("work_ID02", "join_ID04"), ("work_ID03", "join_ID04")}
    assert dag.tasks["work_ID02"].duration.mean == 20.0 and dag.tasks["work_ID02"].cpu == 2.0
    assert dag.tasks["join_ID04"].memory == 2.0
    assert dag.critical_path() == 5.0 + 20.0 + 3.0


def test_bad_wfformat_1_4_names_its_own_fields(tmp_path):
    data = _trace_1_4()
    del data["workflow"]["tasks"][2]["runtimeInSeconds"]
    data["workflow"]["tasks"][3]["parents"].append("ghost")
    f = tmp_path / "bad14.json"
    f.write_text(json.dumps(data))
    with pytest.raises(ScenarioError) as e:
        load_wfcommons(f)
    msg = str(e.value)
    assert f"{f}: workflow.tasks[3].parents[2]: unknown task id 'ghost'" in msg
    assert "specification" not in msg
