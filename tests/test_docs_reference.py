"""docs/reference.md's tables of settings show each shipped profile's value: they must be the
profile's own numbers (the profiles are refitted as measurements grow; the reference must not
keep the old ones)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.scenario import load_profile

ROOT = Path(__file__).resolve().parents[1]
TABLES = {"### `airflow`": "airflow", "### `overheads`": "overheads", "#### `executor.celery`": "celery",
          "#### `executor.kubernetes`": "kubernetes"}
NUMBER = re.compile(r"^-?\d+(\.\d+)?")


def _rows():
    text = (ROOT / "docs" / "reference.md").read_text()
    for heading, section in TABLES.items():
        body = text[text.index(heading):]
        body = body[:body.index("\n#", 1)]
        lines = [line for line in body.splitlines() if line.startswith("| `")]
        for line in lines:
            cells = [c.strip() for c in line.strip("|").split("|")]
            yield section, cells[0].strip("`"), cells[2], cells[3]


def _matches(shown: str, value) -> bool:
    if isinstance(value, str):                     # a version or a name, quoted or not
        return shown.replace("`", "").replace('"', "").split()[0] == value
    m = NUMBER.match(shown.replace("`", ""))
    if m is None:                                  # true / false / null: as written
        word = shown.replace("`", "").split()[0].lower()
        return {"true": True, "false": False, "null": None}.get(word, word) == value
    if isinstance(value, bool) or value is None:
        return False
    decimals = len(m.group(1)) - 1 if m.group(1) else 0
    return round(float(value), decimals) == float(m.group(0))


@pytest.mark.parametrize("profile,column", [("airflow-2.10", 2), ("ideal", 3)])
def test_reference_tables_show_the_shipped_profiles_values(profile, column):
    prof = load_profile(profile)
    wrong = []
    for section, key, p210, ideal in _rows():
        shown = p210 if column == 2 else ideal
        if key in prof.get(section, {}) and not _matches(shown, prof[section][key]):
            wrong.append(f"{section}.{key}: reference says {shown!r}, {profile} has {prof[section][key]!r}")
    assert not wrong, "\n".join(wrong)
