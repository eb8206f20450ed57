"""The layering, as imports: what a module may import is visible and checked (issue #14).

    model  <-  airflow / infra / executors  <-  simulation  <-  analysis  <-  report  <-  commands, CLI

A module imports only from its own layer or lower ones; infra never imports the executors or the
scheduler; nothing imports the CLI. Imports inside functions are allowed only where marked
``# lazy:`` with the reason (keeping ``sim --help`` and ``import sim`` fast, or an optional
dependency), and they too must respect the layers unless listed in UPWARD.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "sim"

#: module-name prefix -> layer (the longest matching prefix wins)
LAYERS = {
    "sim.errors": 0, "sim.files": 0, "sim.csvout": 0, "sim.theory": 0, "sim.engine": 0, "sim.model": 0,
    "sim.scenario.units": 0, "sim.scenario.aliases": 0,
    "sim.airflow.config": 1, "sim.records": 1,
    "sim.airflow": 2, "sim.infra": 2, "sim.executors": 2, "sim.cost": 2,
    "sim.simulation": 3, "sim.metrics": 3, "sim.deployment": 3, "sim.scenario": 3, "sim.importers": 3,
    "sim.analysis": 4, "sim.limits": 4,
    "sim.report": 5,
    "sim.compare": 6, "sim.sweep": 6, "sim.bench": 6, "sim.bench_reference": 6, "sim.explain": 6,
    "sim.calibration": 6, "sim.results": 6,
    "sim.cli": 7, "sim.__main__": 7, "sim": 7,
}
#: (importer, imported) lazy imports that go up a layer on purpose, with the reason.
UPWARD = {
    ("sim.simulation", "sim.results"): "RunResult.write: the results writer (and matplotlib) load "
                                       "only when a result is written",
}


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def modules():
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports(name: str, path: Path):
    """(imported module, line, inside a function, the line's text) of every sim import."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    inside.add(id(sub))
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from . import x` / `from .pkg import mod`: the names may be modules
            targets = [f"{mod}.{a.name}" if _is_module(f"{mod}.{a.name}") else mod for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for t in targets:
            yield t, node.lineno, id(node) in inside, lines[node.lineno - 1]


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:]) if dotted.startswith("sim.") else None
    return rel is not None and ((PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file())


ALL = list(modules())


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_imports_follow_the_layers(name, path):
    bad = []
    for target, line, lazy, _ in imports(name, path):
        if not (target == "sim" or target.startswith("sim.")):
            continue
        if target == "sim" and layer(name) < LAYERS["sim"]:
            bad.append(f"line {line}: imports the package facade `sim`")
            continue
        if layer(target) > layer(name) and (name, _module_of(target)) not in UPWARD:
            bad.append(f"line {line}: {target} (layer {layer(target)}) from layer {layer(name)}")
    assert not bad, f"{name}: " + "; ".join(bad)


def _module_of(target: str) -> str:
    while target and not _is_module(target) and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


@pytest.mark.parametrize("name,path", [(n, p) for n, p in ALL if n.startswith("sim.infra")],
                         ids=[n for n, _ in ALL if n.startswith("sim.infra")])
def test_infrastructure_never_imports_executors_or_the_scheduler(name, path):
    for target, line, _, _ in imports(name, path):
        assert not target.startswith(("sim.executors", "sim.airflow.scheduler")), f"{name} line {line}: {target}"


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_imports_inside_functions_say_why(name, path):
    # every import inside a function, of the project's modules and of third-party ones alike
    unexplained = []
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)) and "# lazy:" not in lines[sub.lineno - 1]:
                    unexplained.append(f"line {sub.lineno}: {lines[sub.lineno - 1].strip()}")
    assert not unexplained, f"{name}: imports inside functions without a `# lazy:` reason: " + \
        "; ".join(sorted(set(unexplained)))


def test_reports_never_import_commands():
    for name, path in ALL:
        if name.startswith("sim.report"):
            for target, line, _, _ in imports(name, path):
                if target.startswith("sim."):
                    assert layer(target) <= 5, f"{name} line {line}: {target}"


@pytest.mark.parametrize("name,path", [(n, p) for n, p in ALL if n.startswith("sim.infra")],
                         ids=[n for n, _ in ALL if n.startswith("sim.infra")])
def test_infrastructure_is_given_its_collaborators(name, path):
    """Broker, result backend, workers, autoscaler, cluster and hosts get what they work with
    (env, state core, broker, backend, ...), never the whole simulation object."""
    tree = ast.parse(path.read_text())
    uses = sorted({n.lineno for n in ast.walk(tree)
                   if (isinstance(n, ast.Name) and n.id == "sim") or (isinstance(n, ast.arg) and n.arg == "sim")
                   or (isinstance(n, ast.Attribute) and n.attr == "sim")})
    assert not uses, f"{name} reaches for the simulation object at lines {uses}"
