"""Import a WfCommons WfFormat trace (JSON, schema 1.4 to 1.6) as a DAG.

A WfFormat file records one execution of a scientific workflow (Pegasus, Makeflow, Nextflow, ...):
``workflow.specification.tasks[]`` gives each task's ``id``, ``name``, ``parents`` and ``children``;
``workflow.execution.tasks[]`` gives, by the same ``id``, the ``runtimeInSeconds`` it really took
and, when recorded, its ``coreCount`` and ``memoryInBytes``. The schema is shipped beside the
traces (``data/wfcommons/wfformat-schema-1.5.json``).

Each WfFormat task becomes a :class:`~sim.model.dag.Task` named by its ``id`` (names need not be
unique: Nextflow's are not), with ``Constant(runtimeInSeconds)`` as its duration, ``cpu`` =
``coreCount``, ``memory`` = ``memoryInBytes`` in MiB, and ``cpu_bound=True`` (a workflow task is
computation, not a wait on another system). Edges are the union of the ``parents`` and
``children`` lists. Everything else in the file (files, machines, the real makespan) is ignored.

The checks are written by hand rather than with ``jsonschema`` (not a dependency of the project):
the fields the import uses are checked with the schema's rules, and every problem names the file
and the JSON path, such as ``workflow.execution.tasks[3].runtimeInSeconds``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import ScenarioError
from ..files import MAX_DATA_BYTES, read_text
from ..model.dag import DAG, Task
from ..model.durations import Constant
from ..model.schedules import At

#: The WfFormat versions this importer reads. 1.5 split a workflow into its specification (tasks,
#: dependencies by task id) and its execution (runtimes, cores, memory); 1.6 only added optional
#: items (WfFormat's tools/wfcommons-migrate-instance.py: "all new additions are optional"); a 1.4
#: trace keeps one list of tasks, dependencies by task name, and is read through :func:`_from_1_4`.
SCHEMA_VERSIONS = ("1.4", "1.5", "1.6")
MIB = 1024.0 * 1024.0
#: Stop listing problems after this many: one mistake repeated over a thousand tasks says enough.
MAX_PROBLEMS = 20


class _Problems(list):
    """(where, what is wrong) pairs, at most MAX_PROBLEMS of them (shared by the importers)."""

    def add(self, path: str, msg: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append((path, msg))

    def new_id(self, item: dict, key: str, where: str, seen: dict, index: int, label: str) -> str | None:
        """``item[key]`` if it is a non-empty string not in ``seen`` (then recorded there with
        ``index``); else a problem at ``where.key`` and None."""
        tid = item.get(key)
        if not isinstance(tid, str) or not tid:
            self.add(f"{where}.{key}", "missing" if tid is None else f"must be a non-empty string (got {tid!r})")
            return None
        if tid in seen:
            self.add(f"{where}.{key}", f"duplicate {label} {tid!r} (also tasks[{seen[tid]}])")
            return None
        seen[tid] = index
        return tid


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_json(path, what: str):
    """Parse a JSON file; an unreadable file or a syntax error is a ScenarioError naming it."""
    file = str(path)
    text = read_text(path, MAX_DATA_BYTES, what)
    try:
        return json.loads(text)
    except RecursionError:
        raise ScenarioError(file, f"not a usable {what}: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ScenarioError(file, f"not valid JSON (a {what}): {e.msg} at line {e.lineno}, "
                                  f"column {e.colno}") from None


def load_wfcommons(path, *, dag_id: str | None = None, schedule=None) -> DAG:
    """The workflow of a WfFormat 1.4, 1.5 or 1.6 file as a DAG.

    ``dag_id`` defaults to the file name without ``.json``; ``schedule`` to one run at time 0
    (``At((0.0,))``). A file that is not valid WfFormat raises :class:`ScenarioError` naming the
    file and the JSON path of each problem.
    """
    file = str(path)
    data = read_json(path, "WfFormat trace")
    spec_tasks, exec_tasks = _check(data, file)
    tasks = [Task(t["id"], duration=Constant(float(x["runtimeInSeconds"])), cpu_bound=True,
                  cpu=float(x["coreCount"]) if x.get("coreCount") is not None else None,
                  memory=(x["memoryInBytes"] / MIB) if x.get("memoryInBytes") else None)
             for t, x in ((t, exec_tasks[t["id"]]) for t in spec_tasks)]
    dag = DAG(dag_id or Path(file).stem, schedule if schedule is not None else At((0.0,)), tasks=tasks)
    for t in spec_tasks:
        task = dag.tasks[t["id"]]
        for p in t["parents"]:
            dag.tasks[p].set_downstream(task)
        for c in t["children"]:
            task.set_downstream(dag.tasks[c])
    try:
        dag.topological_order()
    except ValueError as e:        # DagError: a cycle
        raise ScenarioError(file, [("workflow.specification.tasks", str(e))]) from None
    return dag


def wfcommons_edges(path) -> set[tuple[str, str]]:
    """The trace's dependencies as ``(parent id, child id)`` pairs, read straight from the file
    (the union of its ``parents`` and ``children`` lists); for checking an import."""
    data = read_json(path, "WfFormat trace")
    spec_tasks, _ = _check(data, str(path))
    return ({(p, t["id"]) for t in spec_tasks for p in t["parents"]}
            | {(t["id"], c) for t in spec_tasks for c in t["children"]})


def _from_1_4(data: dict) -> dict:
    """A WfFormat 1.4 trace in 1.5's shape: ``workflow.tasks`` (each with ``name``, ``parents`` and
    ``children`` by name or id, ``runtimeInSeconds``, ``cores``, ``memoryInBytes``) becomes the
    specification and execution lists, in the same order, each task keyed by its name."""
    tasks = data["workflow"]["tasks"]
    key = {}
    for t in tasks:
        if isinstance(t, dict):
            tid = t.get("name") if isinstance(t.get("name"), str) and t.get("name") else t.get("id")
            for ref in (t.get("name"), t.get("id")):
                if isinstance(ref, str) and ref not in key:
                    key[ref] = tid
    spec, execution = [], []
    for t in tasks:
        if not isinstance(t, dict):
            spec.append(t)
            execution.append(t)
            continue
        tid = key.get(t.get("name")) or t.get("id")
        deps = {k: [key.get(r, r) if isinstance(r, str) else r for r in t[k]] if isinstance(t.get(k), list)
                else t.get(k, []) for k in ("parents", "children")}
        spec.append({"id": tid, "name": t.get("name"), **deps})
        execution.append({"id": tid, "runtimeInSeconds": t.get("runtimeInSeconds"), "coreCount": t.get("cores"),
                          "memoryInBytes": t.get("memoryInBytes")})
    return {**data, "workflow": {"specification": {"tasks": spec}, "execution": {"tasks": execution}}}


def _check(data, file: str) -> tuple[list[dict], dict[str, dict]]:
    """The specification tasks (in file order) and the execution tasks by id, or a
    ScenarioError listing what is wrong (for a 1.4 trace, with its own paths)."""
    if isinstance(data, dict) and data.get("schemaVersion") == "1.4" and isinstance(data.get("workflow"), dict) \
            and isinstance(data["workflow"].get("tasks"), list):
        try:
            return _check_1_5(_from_1_4(data), file)
        except ScenarioError as e:
            e.problems = [(p.replace("workflow.specification.tasks", "workflow.tasks")
                           .replace("workflow.execution.tasks", "workflow.tasks")
                           .replace(".coreCount", ".cores"), m.replace("workflow.specification.tasks", "workflow.tasks"))
                          for p, m in e.problems]
            raise ScenarioError(e.file, e.problems) from None
    if isinstance(data, dict) and data.get("schemaVersion") == "1.4":
        raise ScenarioError(file, [("workflow.tasks", "missing: a WfFormat 1.4 trace lists its tasks there "
                                                      "(specification and execution came with 1.5)")])
    return _check_1_5(data, file)


def _check_1_5(data, file: str) -> tuple[list[dict], dict[str, dict]]:
    problems = _Problems()

    def fail():
        raise ScenarioError(file, list(problems))

    if not isinstance(data, dict):
        problems.add("", f"not a WfFormat trace: the top level must be an object, not {_kind(data)}")
        fail()
    version = data.get("schemaVersion")
    if version is None:
        problems.add("schemaVersion", "missing (a WfFormat file names its schema version, e.g. \"1.5\")")
    elif version not in SCHEMA_VERSIONS:
        problems.add("schemaVersion", f"version {version!r} is not supported (supported: "
                                      f"{', '.join(SCHEMA_VERSIONS)}; convert older traces with "
                                      "WfCommons' tools)")
    wf = data.get("workflow")
    if not isinstance(wf, dict):
        problems.add("workflow", "missing" if wf is None else f"must be an object, not {_kind(wf)}")
        fail()
    spec, execution = wf.get("specification"), wf.get("execution")
    for key, v in (("specification", spec), ("execution", execution)):
        if not isinstance(v, dict):
            problems.add(f"workflow.{key}", "missing (it holds the tasks"
                         + (" and their dependencies)" if key == "specification" else "' runtimes)")
                         if v is None else f"must be an object, not {_kind(v)}")
    if problems:
        fail()
    spec_tasks = _task_list(spec, "workflow.specification.tasks", problems)
    exec_list = _task_list(execution, "workflow.execution.tasks", problems)
    if problems:
        fail()

    ids: dict[str, int] = {}
    for i, t in enumerate(spec_tasks):
        where = f"workflow.specification.tasks[{i}]"
        if problems.new_id(t, "id", where, ids, i, "task id") is None:
            continue
        for key in ("name",):
            if not isinstance(t.get(key), str) or not t.get(key):
                problems.add(f"{where}.{key}", "missing" if key not in t else "must be a non-empty string")
        for key in ("parents", "children"):
            v = t.get(key)
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                problems.add(f"{where}.{key}", "missing (a list of task ids, [] for none)" if v is None
                             else f"must be a list of task ids (strings), not {_kind(v)}")
    if problems:
        fail()
    for i, t in enumerate(spec_tasks):
        for key in ("parents", "children"):
            for j, other in enumerate(t[key]):
                if other not in ids:
                    problems.add(f"workflow.specification.tasks[{i}].{key}[{j}]",
                                 f"unknown task id {other!r} (not the id of any task in "
                                 "workflow.specification.tasks)")
                elif other == t["id"]:
                    problems.add(f"workflow.specification.tasks[{i}].{key}[{j}]",
                                 f"task {other!r} depends on itself")

    exec_tasks: dict[str, dict] = {}
    for i, x in enumerate(exec_list):
        where = f"workflow.execution.tasks[{i}]"
        tid = x.get("id")
        if not isinstance(tid, str) or not tid:
            problems.add(f"{where}.id", "missing" if tid is None else f"must be a non-empty string (got {tid!r})")
            continue
        if tid not in ids:
            problems.add(f"{where}.id", f"task {tid!r} is not in workflow.specification.tasks")
            continue
        if tid in exec_tasks:
            problems.add(f"{where}.id", f"duplicate task id {tid!r}")
            continue
        exec_tasks[tid] = x
        rt = x.get("runtimeInSeconds")
        if rt is None:
            problems.add(f"{where}.runtimeInSeconds", f"missing (task {tid!r} has no recorded runtime)")
        elif not _is_number(rt) or rt < 0:
            problems.add(f"{where}.runtimeInSeconds", f"must be a number of seconds >= 0 (got {rt!r})")
        cores = x.get("coreCount")
        if cores is not None and (not _is_number(cores) or cores < 1):
            problems.add(f"{where}.coreCount", f"must be a number >= 1 (got {cores!r})")
        mem = x.get("memoryInBytes")
        if mem is not None and (not _is_number(mem) or mem < 0):
            problems.add(f"{where}.memoryInBytes", f"must be a number >= 0 (got {mem!r})")
    for tid, i in ids.items():
        if tid not in exec_tasks:
            problems.add(f"workflow.specification.tasks[{i}]",
                         f"task {tid!r} has no entry in workflow.execution.tasks (so no runtime)")
    if problems:
        fail()
    return spec_tasks, exec_tasks


def _task_list(section: dict, where: str, problems: _Problems) -> list[dict]:
    tasks = section.get("tasks")
    if tasks is None:
        problems.add(where, "missing")
        return []
    if not isinstance(tasks, list):
        problems.add(where, f"must be a list, not {_kind(tasks)}")
        return []
    if not tasks:
        problems.add(where, "must not be empty")
    for i, t in enumerate(tasks):
        if not isinstance(t, dict):
            problems.add(f"{where}[{i}]", f"must be an object, not {_kind(t)}")
    return tasks


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false",
            type(None): "null"}.get(type(v), "a number")
