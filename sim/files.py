"""Reading the user's files safely: only regular files, with a size bound, as UTF-8.

A scenario that names ``/dev/zero`` or a FIFO must not hang the simulator, and a 2 GB file must
not exhaust its memory: each is refused with a :class:`ScenarioError` naming the file. The bounds:

- ``MAX_YAML_BYTES`` (10 MB) for scenario and profile files and ``--config`` dumps. The largest
  shipped scenario is a few kB; 10 MB of YAML is already hundreds of thousands of tasks.
- ``MAX_DATA_BYTES`` (1 GB) for CSV exports of Airflow's tables and WfCommons traces, which
  are machine-written and grow with the recorded history (a year of task instances of a busy
  deployment is a few hundred MB); above that, export a shorter period.
"""
from __future__ import annotations

import os
import stat

from .errors import ScenarioError

MAX_YAML_BYTES = 10 * 1024 * 1024
MAX_DATA_BYTES = 1024 * 1024 * 1024


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def check_regular(path, limit: int, what: str = "file") -> None:
    """Refuse anything but a regular file of at most ``limit`` bytes (ScenarioError)."""
    file = str(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise ScenarioError(file, f"cannot read the {what}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ScenarioError(file, f"cannot read the {what}: it is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ScenarioError(file, f"cannot read the {what}: not a regular file (a device, pipe or "
                                  "socket); give a file")
    if st.st_size > limit:
        raise ScenarioError(file, f"the {what} is too large ({_size(st.st_size)}; at most "
                                  f"{_size(limit)})")


def read_bytes(path, limit: int, what: str = "file") -> bytes:
    """The file's bytes, after :func:`check_regular`; reads at most ``limit + 1`` bytes, so a
    file that grows meanwhile is still refused."""
    check_regular(path, limit, what)
    file = str(path)
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open() must not block
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ScenarioError(file, f"cannot read the {what}: not a regular file")
            data = f.read(limit + 1)
    except OSError as e:
        raise ScenarioError(file, f"cannot read the {what}: {e.strerror or e}") from None
    if len(data) > limit:
        raise ScenarioError(file, f"the {what} is too large (more than {_size(limit)})")
    return data


def read_text(path, limit: int = MAX_YAML_BYTES, what: str = "file") -> str:
    """The file as UTF-8 text; bytes that are not UTF-8 are a ScenarioError naming the line."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ScenarioError(str(path), f"the {what} is not UTF-8 text (byte {data[e.start]:#04x} at "
                                       f"line {line}); save it as UTF-8") from None
