"""The bad-input table (issue #12): every user error exits 2 with a message naming the file (where
there is one) and the field, and no traceback -- never 1 ("internal error"), never a hang.

Scenarios, profiles, Airflow exports, WfCommons traces and command-line flags, run in-process
through ``sim.cli.main`` (one case, /dev/zero as a scenario, also as a subprocess). ``{d}`` in a
case stands for its temporary folder.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "data" / "airflow-runs"

SCENARIO = """\
name: s
horizon: 2h
{top}
dags:
  - dag_id: d
    schedule: {schedule}
    tasks:
      T1: {{duration: 30s{t1}}}
      T2: {{duration: 10s}}
    dependencies: "T1 >> T2"
"""


def scenario(top="", schedule="{every: 10m}", t1="", horizon=None) -> str:
    text = SCENARIO.format(top=top, schedule=schedule, t1=t1)
    return text if horizon is None else text.replace("horizon: 2h", f"horizon: {horizon}")


def bomb(levels=9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghijklmn"[:levels - 1]:
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return text


def nested(levels: int) -> str:
    return "x: " + "[" * levels + "]" * levels + "\n"


# WfFormat 1.5: three tasks a >> [b, c]
def wf(spec=None, execution=None, **top) -> str:
    spec_tasks = [{"id": "a", "name": "a", "parents": [], "children": ["b", "c"]},
                  {"id": "b", "name": "b", "parents": ["a"], "children": []},
                  {"id": "c", "name": "c", "parents": ["a"], "children": []}]
    exec_tasks = [{"id": t, "runtimeInSeconds": 5.0, "coreCount": 1} for t in "abc"]
    if spec is not None:
        spec(spec_tasks)
    if execution is not None:
        execution(exec_tasks)
    data = {"name": "w", "schemaVersion": "1.5",
            "workflow": {"specification": {"tasks": spec_tasks}, "execution": {"tasks": exec_tasks}}}
    data.update(top)
    return json.dumps(data)


def set_(i, key, value):
    def change(tasks):
        tasks[i][key] = value
    return change


WF_SCENARIO = "dags:\n  - dag_id: w\n    schedule: {at: [0]}\n    wfcommons: w.json\n"
AX_SCENARIO = ("dags:\n  - dag_id: diamond\n    schedule: {at: [0]}\n    airflow_export:\n"
               "      task_instances: ti.csv\n      structure: diamond.tasks.json\n")
TI_CSV = (RUNS / "local-p8" / "task_instances.csv").read_text()
REST = json.loads((RUNS / "rest" / "diamond.tasks.json").read_text())


def ti_csv(edit) -> str:
    lines = TI_CSV.splitlines()
    return "\n".join(edit(lines)) + "\n"


def rest(edit) -> str:
    data = json.loads(json.dumps(REST))
    edit(data)
    return json.dumps(data)


def drop_column(name):
    def edit(lines):
        cols = lines[0].split(",")
        i = cols.index(name)
        return [",".join(c for j, c in enumerate(row.split(",")) if j != i) for row in lines]
    return edit


def replace_cell(column, value, row=1):
    def edit(lines):
        i = lines[0].split(",").index(column)
        cells = lines[row].split(",")
        cells[i] = value
        return lines[:row] + [",".join(cells)] + lines[row + 1:]
    return edit


CASES: list = []


def case(category, name, argv, needles, files=None, patch=None):
    CASES.append(pytest.param(argv, needles, files or {}, patch or {}, id=f"{category}-{name}"))


def S(name, text, *needles, cmd="validate", extra=()):
    """A scenario case: the file s.yaml, its name and each needle in the message."""
    case("scenario", name, [cmd, "{d}/s.yaml", *extra], ["{d}/s.yaml", *needles], {"s.yaml": text})


# -- scenarios: hostile files --------------------------------------------------------------------
S("alias-bomb", bomb(), "expands to more than 1,000,000 values")
S("alias-bomb-in-a-task", scenario().replace("name: s", "name: s\nx-anchors: null") + "\n" + bomb(),
  "expands to more than")
S("nested-65-levels", nested(70), "nested more than 64 levels deep")
S("nested-5000-levels", nested(5000), "nested too deeply")
S("nested-block-mappings", "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(80)),
  "nested more than 64 levels deep")
S("not-utf8", b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at line 1)")
S("utf16", "name: s\n".encode("utf-16"), "not UTF-8 text")
S("latin1-in-a-later-line", scenario().encode() + b"# \xff\n", "not UTF-8 text (byte 0xff at line 11)")
S("too-large", "# " + "x" * (10 * 1024 * 1024) + "\n" + scenario(), "too large", "at most 10 MB")
S("nul-byte", "name: s\x00\n", "YAML syntax error")
S("unhashable-key", "? [a, b]\n: 1\n", "YAML syntax error")
S("tab-indentation", scenario().replace("      T2:", "\tT2:"), "YAML syntax error")
case("scenario", "folder", ["validate", "{d}"], ["{d}", "it is a folder"])
case("scenario", "missing-file", ["run", "{d}/nope.yaml"], ["{d}/nope.yaml", "cannot read the file"])
case("scenario", "dev-zero", ["validate", "/dev/zero"], ["/dev/zero", "not a regular file"])
case("scenario", "symlink-to-dev-zero", ["validate", "{d}/z.yaml"], ["{d}/z.yaml", "not a regular file"],
     {"z.yaml": ("symlink", "/dev/zero")})
case("scenario", "fifo", ["validate", "{d}/f.yaml"], ["{d}/f.yaml", "not a regular file"], {"f.yaml": ("fifo",)})
# -- scenarios: schedules that never fire or never end ------------------------------------------
S("cron-30-february", scenario(schedule="{cron: '0 0 30 2 *'}"), "dags[0].schedule.cron", "never fires")
S("cron-31-april", scenario(schedule="{cron: '0 0 31 4 *'}"), "dags[0].schedule.cron", "never fires")
S("cron-31-november", scenario(schedule="{cron: '0 0 31 11 *'}"), "dags[0].schedule.cron", "never fires")
S("burst-10-million", scenario(schedule="{burst: {runs: 10000000}}"), "10,000,000 DAG runs", "--max-task-instances")
S("burst-10-million-run", scenario(schedule="{burst: {runs: 10000000}}"), "--max-task-instances", cmd="run")
S("horizon-100-years", scenario(horizon="36500d"), "task-instance tries", "limit of 5,000,000")
S("horizon-100-years-daily", scenario(horizon="36500d", schedule="{every: 1d}"), "periodic processes",
  "--max-task-instances")
S("every-millisecond", scenario(schedule="{every: 1ms}"), "task-instance tries", "--max-task-instances")
S("poisson-billion-per-hour", scenario(schedule="{poisson_per_hour: 1000000000}"), "task-instance tries")
S("cron-every-minute-100-years", scenario(schedule="{cron: '* * * * *'}", horizon="36500d"), "DAG runs")
S("at-beyond-limit", scenario(schedule="{at: [0]}", t1=", retries: 1000000000, failure_probability: 1"),
  "1,000,000,002 task-instance tries")
S("retries-always-failing", scenario(t1=", retries: 1000000, failure_probability: 1.0"), "task-instance tries")
S("expand-100-million", scenario(top="airflow: {max_map_length: 1000000000}", schedule="{at: [0]}",
                                 t1=", expand: {count: 100000000}"), "task-instance tries")
S("reschedule-sensor-millisecond-pokes",
  scenario(schedule="{at: [0]}", t1=", sensor: {wait: 3650d, mode: reschedule, poke_interval: 1ms, timeout: 3650d}"),
  "task-instance tries")
S("queued-check-every-nanosecond",
  scenario(top="airflow: {task_queued_timeout_check_interval: 0.000000001}"), "periodic processes")
S("zombie-check-every-microsecond",
  scenario(top="airflow: {task_instance_heartbeat_timeout_detection_interval: 0.000001}"), "periodic processes")
S("parse-every-microsecond", scenario(top="airflow: {min_file_process_interval: 0.000001}"), "periodic processes")
S("pool-metrics-every-microsecond", scenario(top="airflow: {pool_metrics_interval: 0.000001}"), "periodic processes")
S("heartbeat-every-microsecond",
  scenario(top="airflow: {execution_api: true, min_heartbeat_interval: 0.000001}"), "periodic processes")
S("keda-polling-every-microsecond",
  scenario(top="executor: {kind: celery, worker_pools: [{name: w, autoscaling: {polling_interval: 0.000001}}]}"),
  "periodic processes")
S("horizon-inf", scenario(horizon=".inf"), "horizon", "finite")
S("horizon-nan", scenario(horizon=".nan"), "horizon", "finite")
S("horizon-1e400", scenario(horizon="1e400"), "horizon", "finite")
S("duration-nan", scenario(t1="").replace("T2: {duration: 10s}", "T2: {duration: .nan}"),
  "dags[0].tasks.T2.duration", "finite")
# -- scenarios: settings that size memory or loops ----------------------------------------------
for name, top, field, bound in [
    ("parallelism-2e9", "airflow: {parallelism: 2000000000}", "airflow.parallelism", "1000000000"),
    ("schedulers-17", "airflow: {schedulers: 17}", "airflow.schedulers", "16"),
    ("schedulers-1e6", "airflow: {schedulers: 1000000}", "airflow.schedulers", "16"),
    ("triggerers-1e9", "airflow: {triggerers: 1000000000}", "airflow.triggerers", "10000"),
    ("parsing-processes-1e9", "airflow: {parsing_processes: 1000000000}", "airflow.parsing_processes", "100000"),
    ("db-connections-1e9", "overheads: {db_connections: 1000000000}", "overheads.db_connections", "100000"),
    ("api-server-workers-1e9", "overheads: {api_server_workers: 1000000000}", "overheads.api_server_workers",
     "100000"),
    ("extra-dag-files-1e9", "overheads: {extra_dag_files: 1000000000}", "overheads.extra_dag_files", "1000000"),
    ("worker-concurrency-1e9", "executor: {kind: celery, celery: {worker_concurrency: 1000000000}}",
     "executor.celery.worker_concurrency", "10000"),
    ("sync-parallelism-1e9", "executor: {kind: celery, celery: {sync_parallelism: 1000000000}}",
     "executor.celery.sync_parallelism", "100000"),
    ("pool-replicas-1e9", "executor: {kind: celery, worker_pools: [{name: w, replicas: 1000000000}]}",
     "executor.worker_pools[0].replicas", "10000"),
    ("pool-concurrency-1e9", "executor: {kind: celery, worker_pools: [{name: w, concurrency: 1000000000}]}",
     "executor.worker_pools[0].concurrency", "10000"),
    ("keda-max-replicas-1e9",
     "executor: {kind: celery, worker_pools: [{name: w, autoscaling: {max_replicas: 1000000000}}]}",
     "executor.worker_pools[0].autoscaling.max_replicas", "10000"),
    ("keda-min-replicas-1e9",
     "executor: {kind: celery, worker_pools: [{name: w, autoscaling: {min_replicas: 1000000000}}]}",
     "executor.worker_pools[0].autoscaling.min_replicas", "10000"),
    ("node-pool-max-nodes-1e9", "executor: {kind: kubernetes, cluster: {node_pools: [{name: n, max_nodes: 1000000000}]}}",
     "executor.cluster.node_pools[0].max_nodes", "5000"),
    ("node-pool-initial-nodes-1e9",
     "executor: {kind: kubernetes, cluster: {node_pools: [{name: n, initial_nodes: 1000000000}]}}",
     "executor.cluster.node_pools[0].initial_nodes", "5000"),
    ("node-pool-min-nodes-1e9", "executor: {kind: kubernetes, cluster: {node_pools: [{name: n, min_nodes: 1000000000}]}}",
     "executor.cluster.node_pools[0].min_nodes", "5000"),
    ("pod-batch-2e9", "executor: {kind: kubernetes, kubernetes: {worker_pods_creation_batch_size: 2000000000}}",
     "executor.kubernetes.worker_pods_creation_batch_size", "1000000000"),
    ("pod-creation-concurrency-2e9",
     "executor: {kind: kubernetes, kubernetes: {pod_creation_max_concurrency: 2000000000}}",
     "executor.kubernetes.pod_creation_max_concurrency", "1000000000"),
]:
    S(name, scenario(top=top), field, f"must be <= {bound}")
S("schedulers-0", scenario(top="airflow: {schedulers: 0}"), "airflow.schedulers", "must be >= 1")
S("parallelism-as-string", scenario(top="airflow: {parallelism: '10**9'}"), "airflow.parallelism",
  "expected an integer")

# -- profiles ------------------------------------------------------------------------------------
PROFILE_OK = "airflow: {parallelism: 8}\n"


def P(name, text, *needles, cmd="validate", scenario_text=None, files=None):
    f = {"s.yaml": scenario_text or scenario(), "p.yaml": text, **(files or {})}
    case("profile", name, [cmd, "{d}/s.yaml", "--profile", "{d}/p.yaml"], list(needles), f)


P("alias-bomb", bomb(), "{d}/p.yaml", "expands to more than")
P("nested-too-deep", nested(100), "{d}/p.yaml", "nested more than 64 levels")
P("not-utf8", b"airflow: {parallelism: 8}\n# \xe9t\xe9\n", "{d}/p.yaml", "not UTF-8 text (byte 0xe9 at line 2)")
P("too-large", "# " + "x" * (10 * 1024 * 1024) + "\n" + PROFILE_OK, "{d}/p.yaml", "too large")
P("yaml-syntax", "airflow: {parallelism: 8\n", "{d}/p.yaml", "YAML syntax error")
P("duplicate-key", "airflow: {parallelism: 8}\nairflow: {parallelism: 4}\n", "{d}/p.yaml", "duplicate key 'airflow'")
P("top-level-list", "- airflow\n", "{d}/p.yaml", "must be a mapping")
P("unknown-section", "airflw: {parallelism: 8}\n", "{d}/p.yaml", "unknown key 'airflw'")
P("parallelism-2e9", "airflow: {parallelism: 2000000000}\n", "{d}/p.yaml", "airflow.parallelism", "must be <= 1000000000")
P("schedulers-100", "airflow: {schedulers: 100}\n", "{d}/p.yaml", "airflow.schedulers", "must be <= 16")
P("worker-concurrency-1e6", "celery: {worker_concurrency: 1000000}\n", "{d}/p.yaml", "celery.worker_concurrency",
  "must be <= 10000")
P("pod-batch-0", "kubernetes: {worker_pods_creation_batch_size: 0}\n", "{d}/p.yaml",
  "kubernetes.worker_pods_creation_batch_size", "must be >= 1")
P("db-connections-1e9", "overheads: {db_connections: 1000000000}\n", "{d}/p.yaml", "overheads.db_connections",
  "must be <= 100000")
P("queued-check-0", "airflow: {task_queued_timeout_check_interval: 0}\n", "{d}/p.yaml",
  "airflow.task_queued_timeout_check_interval", "must be > 0")
P("extends-itself", "extends: p.yaml\n", "{d}/p.yaml", "extends", "loop")
P("extends-missing", "extends: nope.yaml\n", "{d}/p.yaml", "extends", "unknown profile 'nope.yaml'")
P("extends-not-utf8", "extends: q.yaml\n", "{d}/q.yaml", "not UTF-8", files={"q.yaml": b"airflow: {}\n#\xff\n"})
P("extends-bomb", "extends: q.yaml\n", "{d}/q.yaml", "expands to more than", files={"q.yaml": bomb()})
P("parse-every-microsecond", "airflow: {min_file_process_interval: 0.000001}\n", "{d}/s.yaml",
  "periodic processes", cmd="run")
case("profile", "dev-zero", ["validate", "{d}/s.yaml", "--profile", "/dev/zero"],
     ["{d}/s.yaml", "profile", "unknown profile '/dev/zero'"], {"s.yaml": scenario()})
case("profile", "folder", ["validate", "{d}/s.yaml", "--profile", "{d}"],
     ["{d}/s.yaml", "profile", "unknown profile"], {"s.yaml": scenario()})
case("profile", "in-file-bad-profile", ["validate", "{d}/s.yaml"], ["{d}/p.yaml", "airflow.parallelism"],
     {"s.yaml": scenario().replace("name: s", "name: s\nprofile: p.yaml"), "p.yaml": "airflow: {parallelism: -1}\n"})


# -- Airflow exports -----------------------------------------------------------------------------
def A(name, *needles, ti=None, structure=None, scenario_text=AX_SCENARIO, patch=None):
    files = {"s.yaml": scenario_text,
             "ti.csv": TI_CSV if ti is None else ti,
             "diamond.tasks.json": json.dumps(REST) if structure is None else structure}
    case("airflow-export", name, ["validate", "{d}/s.yaml"], list(needles), files, patch)


A("ti-not-utf8", "{d}/ti.csv", "task_instance export", ti=TI_CSV.encode() + b"chain,\xff\xfe\n")
A("ti-empty", "{d}/ti.csv", "is empty", ti="")
A("ti-folder", "{d}/ti.csv", "dags[0].airflow_export.task_instances", "not a file", ti=("folder",))
A("ti-dev-zero", "{d}/ti.csv", "dags[0].airflow_export.task_instances", "not a file", ti=("symlink", "/dev/zero"))
A("ti-fifo", "{d}/ti.csv", "dags[0].airflow_export.task_instances", "not a file", ti=("fifo",))
A("ti-too-large", "{d}/ti.csv", "too large", patch={"sim.importers.airflow_export.MAX_DATA_BYTES": 1000})
A("ti-missing", "{d}/missing.csv", "dags[0].airflow_export.task_instances", "no such file",
  scenario_text=AX_SCENARIO.replace("ti.csv", "missing.csv"))
A("ti-no-start-date", "{d}/ti.csv", "start_date", ti=ti_csv(drop_column("start_date")))
A("ti-no-dag-id", "{d}/ti.csv", "dag_id", ti=ti_csv(drop_column("dag_id")))
A("ti-bad-timestamp", "{d}/ti.csv", "column start_date", "yesterday",
  ti=ti_csv(replace_cell("start_date", "yesterday")))
A("ti-bad-state", "{d}/ti.csv", "column state", "exploded", ti=ti_csv(replace_cell("state", "exploded")))
A("ti-bad-try-number", "{d}/ti.csv", "column try_number", ti=ti_csv(replace_cell("try_number", "first")))
A("ti-binary", "{d}/ti.csv", ti=b"\x00\x01\x02\x03" * 100)
A("structure-not-utf8", "{d}/diamond.tasks.json", "not UTF-8", structure=b'{"tasks": [\xff]}')
A("structure-json-syntax", "{d}/diamond.tasks.json", "not valid JSON", "line 1", structure='{"tasks": [}')
A("structure-nested-too-deep", "{d}/diamond.tasks.json", "nested too deeply", structure="[" * 100000 + "]" * 100000)
A("structure-dev-zero", "{d}/diamond.tasks.json", "dags[0].airflow_export.structure", "not a file", structure=("symlink", "/dev/zero"))
A("structure-too-large", "{d}/diamond.tasks.json", "too large",
  patch={"sim.importers.wfcommons.MAX_DATA_BYTES": 100})
A("structure-no-tasks", "{d}/diamond.tasks.json", "tasks", "missing", structure='{"dags": []}')
A("structure-tasks-empty", "{d}/diamond.tasks.json", "tasks", "must not be empty", structure='{"tasks": []}')
A("structure-task-not-object", "{d}/diamond.tasks.json", "tasks[0]", "must be an object",
  structure='{"tasks": [3]}')
A("structure-downstream-not-list", "{d}/diamond.tasks.json", "downstream_task_ids", "must be a list",
  structure=rest(lambda d: d["tasks"][0].update(downstream_task_ids="t2")))
A("structure-retries-string", "{d}/diamond.tasks.json", "retries",
  structure=rest(lambda d: d["tasks"][0].update(retries="many")))
A("structure-trigger-rule", "{d}/diamond.tasks.json", "trigger_rule", "not modelled",
  structure=rest(lambda d: d["tasks"][0].update(trigger_rule="sometimes")))
A("structure-cycle", "{d}/diamond.tasks.json", "tasks", "cycle",
  structure=rest(lambda d: d["tasks"][-1].update(downstream_task_ids=[d["tasks"][0]["task_id"]])))

# -- WfCommons traces ----------------------------------------------------------------------------


def W(name, text, *needles, patch=None):
    case("wfcommons", name, ["validate", "{d}/s.yaml"], ["{d}/w.json", *needles],
         {"s.yaml": WF_SCENARIO, "w.json": text}, patch)


W("not-utf8", b'{"name": "\xe9"}', "not UTF-8")
W("json-syntax", '{"name": "w",}', "not valid JSON")
W("nested-too-deep", "[" * 100000 + "]" * 100000, "nested too deeply")
W("dev-zero", ("symlink", "/dev/zero"), "not a regular file")
W("fifo", ("fifo",), "not a regular file")
W("folder", ("folder",), "it is a folder")
W("too-large", wf(), "too large", patch={"sim.importers.wfcommons.MAX_DATA_BYTES": 100})
W("top-level-list", "[]", "the top level must be an object")
W("no-schema-version", wf(schemaVersion=None).replace('"schemaVersion": null, ', ""), "schemaVersion")
W("schema-version-0.1", wf(schemaVersion="0.1"), "schemaVersion", "not supported")
W("no-workflow", json.dumps({"name": "w", "schemaVersion": "1.5"}), "workflow", "missing")
W("no-specification", json.dumps({"schemaVersion": "1.5", "workflow": {"execution": {"tasks": []}}}),
  "workflow.specification")
W("tasks-not-a-list", json.dumps({"schemaVersion": "1.5", "workflow": {"specification": {"tasks": {}},
                                                                        "execution": {"tasks": []}}}),
  "workflow.specification.tasks", "must be a list")
W("tasks-empty", json.dumps({"schemaVersion": "1.5", "workflow": {"specification": {"tasks": []},
                                                                   "execution": {"tasks": []}}}),
  "workflow.specification.tasks", "must not be empty")
W("task-without-id", wf(spec=lambda t: t[0].pop("id")), "workflow.specification.tasks[0]")
W("task-without-name", wf(spec=lambda t: t[1].pop("name")), "workflow.specification.tasks[1].name")
W("parents-not-a-list", wf(spec=set_(1, "parents", "a")), "workflow.specification.tasks[1].parents")
W("unknown-parent", wf(spec=set_(1, "parents", ["zz"])), "workflow.specification.tasks[1].parents[0]",
  "unknown task id 'zz'")
W("depends-on-itself", wf(spec=set_(2, "children", ["c"])), "workflow.specification.tasks[2].children[0]",
  "depends on itself")
W("cycle", wf(spec=lambda t: (t[1].update(children=["a"]), t[0].update(parents=["b"]))), "cycle")
W("runtime-missing", wf(execution=lambda x: x[0].pop("runtimeInSeconds")),
  "workflow.execution.tasks[0].runtimeInSeconds", "missing")
W("runtime-negative", wf(execution=set_(1, "runtimeInSeconds", -1)),
  "workflow.execution.tasks[1].runtimeInSeconds", ">= 0")
W("runtime-string", wf(execution=set_(1, "runtimeInSeconds", "5s")),
  "workflow.execution.tasks[1].runtimeInSeconds")
W("runtime-infinite", wf(execution=set_(2, "runtimeInSeconds", 1e400)),
  "workflow.execution.tasks[2].runtimeInSeconds")
W("core-count-0", wf(execution=set_(0, "coreCount", 0)), "workflow.execution.tasks[0].coreCount", ">= 1")
W("memory-negative", wf(execution=set_(0, "memoryInBytes", -5)), "workflow.execution.tasks[0].memoryInBytes")
W("duplicate-execution", wf(execution=lambda x: x.append(dict(x[0]))), "duplicate task id 'a'")
W("execution-unknown-task", wf(execution=lambda x: x.append({"id": "zz", "runtimeInSeconds": 1})),
  "'zz' is not in workflow.specification.tasks")
W("no-execution-entry", wf(execution=lambda x: x.pop()), "workflow.specification.tasks[2]", "no entry")

# -- command-line flags --------------------------------------------------------------------------
OK = {"s.yaml": scenario()}


def C(name, argv, *needles, files=None):
    case("cli", name, argv, list(needles), OK if files is None else files)


C("set-superscript-index", ["validate", "{d}/s.yaml", "--set", "dags.².max_active_runs=3"],
  "{d}/s.yaml", "--set dags.².max_active_runs")
C("set-arabic-digit-value", ["validate", "{d}/s.yaml", "--set", "airflow.parallelism=٣"],
  "{d}/s.yaml", "airflow.parallelism", "expected an integer")
C("set-alias-bomb-value", ["validate", "{d}/s.yaml", "--set", "airflow.parallelism={" + bomb().replace("\n", ", ") + "}"],
  "{d}/s.yaml", "airflow.parallelism", "expected an integer")
C("set-horizon-100-years", ["run", "{d}/s.yaml", "--set", "horizon=36500d"], "{d}/s.yaml", "--max-task-instances")
C("set-parallelism-2e9", ["validate", "{d}/s.yaml", "--set", "airflow.parallelism=2000000000"],
  "{d}/s.yaml", "airflow.parallelism", "must be <= 1000000000")
C("max-task-instances-0", ["run", "{d}/s.yaml", "--max-task-instances", "0"], "--max-task-instances", "at least 1")
C("max-task-instances-negative", ["validate", "{d}/s.yaml", "--max-task-instances", "-5"], "--max-task-instances",
  "at least 1 (got -5)")
C("max-task-instances-too-low", ["validate", "{d}/s.yaml", "--max-task-instances", "10"],
  "{d}/s.yaml", "limit of 10", "--max-task-instances")
C("explain-limit", ["explain", "{d}/s.yaml", "--max-task-instances", "5"], "{d}/s.yaml", "limit of 5")
C("bench-zero", ["bench", "--task-instances", "0"], "--task-instances", "at least 1")
C("bench-negative", ["bench", "--task-instances", "-10"], "--task-instances", "at least 1 (got -10)")
C("bench-10-billion", ["bench", "--task-instances", "10000000000"], "--task-instances", "--max-task-instances")
C("bench-limit-0", ["bench", "--max-task-instances", "0"], "--max-task-instances", "at least 1 (got 0)")
C("compare-billion-seeds", ["compare", "{d}/s.yaml", "--seeds", "1000000000"], "{d}/s.yaml", "seeds",
  "--max-task-instances")
C("compare-seeds-0", ["compare", "{d}/s.yaml", "--seeds", "0"], "--seeds")
C("compare-no-executors", ["compare", "{d}/s.yaml", "--executors", ","], "--executors")
C("compare-limit", ["compare", "{d}/s.yaml", "--max-task-instances", "200"], "{d}/s.yaml",
  "24 per run x 5 seeds x 3 executors", "limit of 200")
C("sweep-billion-seeds", ["sweep", "{d}/s.yaml", "--grid", "airflow.parallelism=1,2", "--seeds", "1000000000"],
  "seeds", "--max-task-instances")
C("sweep-grid-horizon", ["sweep", "{d}/s.yaml", "--grid", "horizon=2h,36500d", "--seeds", "1"],
  "{d}/s.yaml", "horizon=36500d", "--max-task-instances")
C("sweep-grid-no-values", ["sweep", "{d}/s.yaml", "--grid", "airflow.parallelism="], "--grid")
C("sweep-grid-bad-value", ["sweep", "{d}/s.yaml", "--grid", "airflow.parallelism=٣"], "{d}/s.yaml",
  "--grid airflow.parallelism=٣")
C("dask-unreachable", ["sweep", "{d}/s.yaml", "--grid", "airflow.parallelism=1,2", "--seeds", "1",
                       "--dask", "tcp://127.0.0.1:1", "--dask-timeout", "0.5"], "--dask tcp://127.0.0.1:1",
  "--dask-timeout")
C("dask-bad-scheme", ["sweep", "{d}/s.yaml", "--grid", "airflow.parallelism=1,2", "--seeds", "1",
                      "--dask", "nonsense://x"], "--dask nonsense://x")
C("dask-timeout-0", ["sweep", "{d}/s.yaml", "--grid", "airflow.parallelism=1,2", "--seeds", "1",
                     "--dask", "tcp://127.0.0.1:1", "--dask-timeout", "0"], "--dask-timeout", "> 0")

CALIBRATE = ["calibrate", "--runs", str(RUNS / "local-p8" / "task_instances.csv"),
             "--dag", str(RUNS / "rest" / "diamond.tasks.json"), "--executor", "local",
             "--evaluations", "10", "--seeds", "1", "--no-progress"]
CONFIG = (RUNS / "local-p8" / "config.txt").read_text()


def K(name, config, *needles, extra=()):
    files = {"config.txt": config} if config is not None else {}
    argv = CALIBRATE + (["--config", "{d}/config.txt"] if config is not None else []) + list(extra)
    case("cli", f"calibrate-{name}", argv, list(needles), files)


K("config-parallelism-word", CONFIG.replace("core.parallelism = 8", "core.parallelism = eight"),
  "{d}/config.txt", "core.parallelism (airflow.parallelism)", "expected an integer")
K("config-parallelism-negative", CONFIG.replace("core.parallelism = 8", "core.parallelism = -3"),
  "{d}/config.txt", "core.parallelism", "must be >= 1")
K("config-pool-size-word", CONFIG.replace("sql_alchemy_pool_size = 5", "sql_alchemy_pool_size = many"),
  "{d}/config.txt", "database.sql_alchemy_pool_size")
K("config-idle-sleep-infinite", CONFIG.replace("scheduler_idle_sleep_time = 1", "scheduler_idle_sleep_time = 1e400"),
  "{d}/config.txt", "scheduler.scheduler_idle_sleep_time", "finite")
K("config-flag-word", CONFIG.replace("schedule_after_task_execution = True", "schedule_after_task_execution = maybe"),
  "{d}/config.txt", "scheduler.schedule_after_task_execution", "true or false")
K("config-no-equals", CONFIG + "core.parallelism 8\n", "{d}/config.txt", "expected 'section.key = value'")
K("config-not-utf8", CONFIG.encode() + b"# \xff\n", "{d}/config.txt", "not UTF-8")
K("config-folder", ("folder",), "{d}/config.txt", "it is a folder")
K("config-dev-zero", ("symlink", "/dev/zero"), "{d}/config.txt", "not a regular file")
K("set-negative-cores", None, "--set", "overheads.scheduler_host_cores", "must be > 0",
  extra=["--set", "overheads.scheduler_host_cores=-2"])
K("set-arabic-digit", None, "--set", "airflow.parallelism", "expected an integer",
  extra=["--set", "airflow.parallelism=٣"])
K("runs-dev-zero", None, "/dev/zero", "not a regular file", extra=["--runs", "/dev/zero"])


@pytest.mark.parametrize("argv, needles, files, patch", CASES)
def test_bad_input_exits_2_naming_file_and_field(argv, needles, files, patch, tmp_path, capsys, monkeypatch):
    d = str(tmp_path)
    for name, content in files.items():
        path = tmp_path / name
        if isinstance(content, tuple):
            if content[0] == "symlink":
                path.symlink_to(content[1])
            elif content[0] == "fifo":
                os.mkfifo(path)
            else:
                path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for target, value in patch.items():
        monkeypatch.setattr(target, value)
    monkeypatch.chdir(tmp_path)
    try:
        code = main([a.replace("{d}", d) for a in argv])
    except SystemExit as e:                       # argparse's own refusals
        code = e.code
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 2, text
    assert "Traceback" not in text and "internal error" not in text, text
    for needle in needles:
        assert needle.replace("{d}", d) in text, f"{needle!r} not in:\n{text}"


def test_table_size():
    by = {}
    for c in CASES:
        by[c.id.split("-")[0]] = by.get(c.id.split("-")[0], 0) + 1
    assert len(CASES) >= 120 and len({c.id for c in CASES}) == len(CASES), by
    assert set(by) == {"scenario", "profile", "airflow", "wfcommons", "cli"}


def test_dev_zero_as_a_scenario_in_a_subprocess(tmp_path):
    """The real thing: a process reading /dev/zero would never end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (["validate", "/dev/zero"], ["run", "/dev/zero", "--out", str(tmp_path / "o")]):
        p = subprocess.run([sys.executable, "-m", "sim", *argv], capture_output=True, text=True, timeout=60,
                           env=env, cwd=tmp_path)
        assert p.returncode == 2, p.stderr
        assert "/dev/zero" in p.stderr and "not a regular file" in p.stderr and "Traceback" not in p.stderr
