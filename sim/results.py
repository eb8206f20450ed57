"""Writing a run's results: CSV files and ``summary.json``, atomically, and never over a user's files.

Everything is written into a fresh temporary folder beside the target, which then takes the
target's place in one step: a reader sees the previous results or the new ones, never a
half-written folder and never no folder, and a crash leaves the previous results intact.

The target must be absent, an empty folder, or a folder this tool wrote before (it holds the
marker file ``.sim-result``); anything else (a file, a device, a link, a folder of the user's own
files) is refused with a :class:`~sim.errors.SimError` naming the path, before any work is done.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .csvout import write_csv
from .errors import SimError
from .report.charts import write_charts
from .report.html import write_report

#: The marker of a results folder this tool wrote; only such a folder may be replaced.
MARKER = ".sim-result"
_MARKER_TEXT = '{"written_by": "sim", "format": 1}\n'
_TMP = ".sim-tmp-"                 # temporary folders: .<name>.sim-tmp-<pid>-<random>


def safe_name(name: str) -> str:
    """A scenario name as one safe folder name: letters, digits, ``.``, ``_`` and ``-`` only
    (anything else becomes ``_``), no leading dot, at most 100 characters; never ``..``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).lstrip(".")[:100]
    return cleaned if cleaned.strip("._-") else "scenario"


def check_out_dir(out_dir) -> Path:
    """Refuse (SimError, exit 2) a results folder this tool must not write: see the module's note."""
    out = Path(out_dir)
    if out.is_symlink():
        raise SimError(f"--out {str(out)!r} is a symbolic link; name a folder (sim replaces the folder "
                       "it writes, and will not follow or replace a link)")
    if out.exists():
        if not out.is_dir():
            raise SimError(f"--out {str(out)!r} exists and is not a folder; name a new or empty folder")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise SimError(f"--out {str(out)!r} holds files that sim did not write (no {MARKER} marker); "
                           "it is never emptied or replaced: name a new or empty folder")
    parent = out.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise SimError(f"--out {str(out)!r}: {str(p)!r} is not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise SimError(f"--out {str(out)!r}: the folder {str(p)!r} is not writable")
            break
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(out: Path) -> None:
    """Remove temporary folders that killed runs left beside ``out`` (their process is gone)."""
    prefix = f".{out.name}{_TMP}"
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return
    for p in siblings:
        if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink():
            pid = p.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
        return False                       # the file system or kernel cannot exchange
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def _folder_beside(out_dir, tag: str, what: str) -> tuple[Path, Path]:
    """(the checked ``out_dir``, a new temporary folder beside it named for it and this process),
    after removing what killed runs left there."""
    out = check_out_dir(out_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(out)
        return out, Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP}{os.getpid()}-{tag}", dir=out.parent))
    except OSError as e:
        raise SimError(f"--out {str(out)!r}: cannot create {what}: {e.strerror}") from None


@contextmanager
def atomic_folder(out_dir):
    """Yield a fresh temporary folder beside ``out_dir``; on success it takes ``out_dir``'s place in
    one step (an exchange, where the system has one), on failure it is removed and ``out_dir`` is
    left as it was."""
    out, tmp = _folder_beside(out_dir, "", "the results folder")
    try:
        yield tmp
        (tmp / MARKER).write_text(_MARKER_TEXT)
        os.chmod(tmp, 0o755)
        check_out_dir(out)                 # still ours to replace after the run
        if out.exists():
            if _exchange(tmp, out):
                shutil.rmtree(tmp, ignore_errors=True)   # tmp now holds the previous results
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP}{os.getpid()}-old-", dir=out.parent))
                os.rmdir(old)
                os.rename(out, old)
                os.rename(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def stream_folder(out_dir):
    """A temporary folder beside ``out_dir`` for the tables a run writes while it goes
    (``sim run --stream``), removed on leaving; the results folder gets their files when it is
    written. A killed run's folder is removed by the next run, like the results' own."""
    _, folder = _folder_beside(out_dir, "stream-", "a folder beside it")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _place(src: Path, dst: Path) -> None:
    """``src``'s file at ``dst`` too: a second name for it where the file system allows (no copy)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_results(result, out_dir, charts: bool = True) -> Path:
    """Write CSVs, summary.json and (unless ``charts=False``) PNG charts and report.html."""
    with atomic_folder(out_dir) as tmp:
        write_csv(result.task_instances, tmp / "task_instances.csv")
        write_csv(result.dag_runs, tmp / "dag_runs.csv")
        for name, frame in (("transitions", result.transitions), ("events", result.events),
                            ("workers", result.workers), ("pods", result.pods), ("nodes", result.nodes)):
            if len(frame):
                write_csv(frame, tmp / f"{name}.csv")
        for name, path in getattr(result, "streamed", {}).items():    # written while the run went
            _place(Path(path), tmp / f"{name}.csv")
        with open(tmp / "summary.json", "w") as f:
            json.dump(result.summary, f, indent=2, sort_keys=False)
            f.write("\n")
        if charts:
            write_charts(result, tmp / "charts")
            write_report(result, tmp)
    return Path(out_dir)
