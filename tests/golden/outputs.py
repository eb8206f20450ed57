"""Fingerprints of every results file, for the byte-identical regression test (issue #14).

A refactoring must not change any result: ``tests/test_regression_outputs.py`` runs the cases
below and compares the SHA-256 of every file of each results folder with ``outputs.json``. This is
a regression test (it compares with what the code produced when the file was written, not with
theory or real data). After a change that is *meant* to alter results, regenerate the file and
say why in the commit:

    python tests/golden/outputs.py --update
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = HERE / "outputs.json"
#: Seeds of the determinism test's scenario generator: every executor form and feature.
GENERATED = range(40)


def cases() -> list[tuple[str, object]]:
    """(name, scenario) for every shipped YAML scenario at its own seed and the next one, and for
    the generated scenarios."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_determinism import generate

    from sim import scenario_from_dict
    from sim.scenario import load_scenario
    out = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        scenario = load_scenario(path)
        for seed in (scenario.seed, scenario.seed + 1):
            out.append((f"{path.stem}@{seed}", dataclasses.replace(scenario, seed=seed)))
    for seed in GENERATED:
        out.append((f"generated-{seed}", scenario_from_dict(generate(seed))))
    return out


def fingerprint(scenario) -> dict:
    from sim.simulation import Simulation
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r"
        Simulation(scenario).run().write(out, charts=False)
        return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}


def main() -> None:
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    result = {name: fingerprint(s) for name, s in cases()}
    GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(result)} cases to {GOLDEN}")


if __name__ == "__main__":
    main()
