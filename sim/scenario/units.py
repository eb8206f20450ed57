"""Durations as people write them in scenario files: ``30s``, ``5m``, ``2h``, ``1d``, ``250ms`` or
plain seconds (``90``, ``1.5``)."""
from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(ms|s|m|h|d)?\s*$")
#: The same grammar (non-negative only) for the JSON Schema, so editors flag typos early.
JSON_PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*(ms|s|m|h|d)?\s*$"
FORMS = "a number of seconds (90, 1.5) or a number with a unit: 250ms, 30s, 5m, 2h, 1d"


def parse_duration(value) -> float:
    """Seconds as a float; ValueError (naming the accepted forms) for anything else."""
    # bool is an int subclass: `duration: yes` is a mistake, not 1 second.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        shown = str(value).lower() if isinstance(value, bool) else repr(value)  # YAML's spelling
        raise ValueError(f"expected a duration, {FORMS} (got {shown})")
    if isinstance(value, str):
        m = _PATTERN.match(value)
        if not m:
            raise ValueError(f"not a duration: {value!r}; use {FORMS}")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be finite (got {value!r})")
    if seconds < 0:
        raise ValueError(f"must be >= 0 (got {value})")
    return seconds

