"""Regression: every result file byte-identical to the fingerprints in tests/golden/outputs.json.

Not a validation (it compares with what the code produced when the fingerprints were written);
it guards refactorings that must not change a single result (issue #14). Regenerate with
``python tests/golden/outputs.py --update`` only after a change meant to alter results.
"""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from outputs import GOLDEN, cases, fingerprint  # noqa: E402

EXPECTED = json.loads(GOLDEN.read_text())
CASES = dict(cases())


def test_every_case_has_a_fingerprint():
    assert sorted(CASES) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_results_byte_identical(name):
    got = fingerprint(CASES[name])
    want = EXPECTED[name]
    assert got.keys() == want.keys(), f"{name}: files {sorted(got.keys() ^ want.keys())} added or gone"
    changed = [f for f in want if got[f] != want[f]]
    assert not changed, f"{name}: {changed} differ from the fingerprints"
