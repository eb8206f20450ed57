"""Run the commands of a document's ```console blocks and put what they print in place of the
recorded outputs, so the docs show what the current model prints (tutorial, how-to, README).

    python docs/console_outputs.py docs/tutorial.md            # rewrite the outputs in place
    python docs/console_outputs.py docs/tutorial.md --check    # exit 1 if any output differs

A block is a sequence of ``$ command`` lines (a trailing backslash continues one) each followed by
its output. A ```python block followed at once by a ```text block is a script and what it prints:
it runs too, and its output replaces the text block's. The commands of one document run in order,
in one scratch copy of the repository's scenarios, data and notebooks (later commands read what
earlier ones wrote; nothing is written into the repository), with the ``sim`` of the Python running
this script first on the PATH. A code block right after an HTML comment ``<!-- file: NAME -->``
is a file the reader saves: it is written as NAME into the scratch copy before any command runs.
Blocks that start background processes (``&``), need files the document writes by hand without
such a comment, or whose command is in --skip are left as they are and listed; so is a
command that fails where its recorded output shows no error, and a script that fails. Durations
that vary from run to run ("in 42.7 s") keep their recorded text.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```console\n(.*?)^```\n", re.S | re.M)
#: A script and its output: a python block, a blank line at most, a text block.
SCRIPT = re.compile(r"^```python\n((?:(?!```).*\n)*)```\n\n?```text\n((?:(?!```).*\n)*)```\n", re.M)
#: A file the reader is told to save: the comment, then a code block of any language.
FILE = re.compile(r"^<!-- file: ([\w.\-]+) -->\n```\w*\n((?:(?!```).*\n)*)```\n", re.M)
#: Text of a recorded output that is a wall-clock measurement, not a model result.
WALL = re.compile(r"\b(in|took) \d+(\.\d+)? ?(s|min|minutes|seconds)\b")
COPIED = ("scenarios", "data", "notebooks")      # not sim/: the PYTHONPATH points at the checkout


def blocks(text: str):
    """(start, end, [(command, recorded output)]) for each console block."""
    for m in FENCE.finditer(text):
        steps, cmd, out = [], None, []
        lines = m.group(1).splitlines(keepends=True)
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                if cmd is not None:
                    steps.append((cmd, "".join(out)))
                cmd, out = line, []
                while cmd.rstrip("\n").endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd += lines[i]
            elif cmd is not None:
                out.append(line)
            i += 1
        if cmd is not None:
            steps.append((cmd, "".join(out)))
        yield m.start(1), m.end(1), steps


def scripts(text: str):
    """(start, end, [(the script's code, recorded output)]) for each python block whose output
    follows it in a text block; start and end delimit the text block's body."""
    for m in SCRIPT.finditer(text):
        yield m.start(2), m.end(2), [(m.group(1), m.group(2))]


def files(text: str) -> dict:
    """{name: content} of the code blocks marked ``<!-- file: NAME -->``."""
    return {m.group(1): m.group(2) for m in FILE.finditer(text)}


def run_script(code: str, cwd: Path, env: dict, timeout: float) -> tuple[int, str]:
    path = cwd / "_doc_script.py"
    path.write_text(code)
    p = subprocess.run([sys.executable, path.name], cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return p.returncode, p.stdout


def run(cmd: str, cwd: Path, env: dict, timeout: float) -> tuple[int, str]:
    shell = cmd[2:].replace("\\\n", " ")
    if shell.startswith("ls "):
        shell = "ls -C " + shell[3:]             # columns, as at a terminal
    p = subprocess.run(["bash", "-o", "pipefail", "-c", shell], cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return p.returncode, p.stdout


def keep_wall_times(new: str, old: str) -> str:
    """Put the recorded wall-clock figures back where the new output has them at the same place."""
    it = iter(m.group(0) for m in WALL.finditer(old))
    return WALL.sub(lambda m: next(it, m.group(0)), new)


def workspace() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="console-outputs-"))
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
    (tmp / "results").mkdir()
    return tmp


def regenerate(doc: Path, skip: list[str], timeout: float) -> tuple[str, list[str], int]:
    text = doc.read_text()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["COLUMNS"] = "90"
    tmp = workspace()
    notes, changed, pieces, pos = [], 0, [], 0
    try:
        for name, content in files(text).items():
            (tmp / name).write_text(content)
        found = [(start, end, steps, False) for start, end, steps in blocks(text)]
        found += [(start, end, steps, True) for start, end, steps in scripts(text)]
        for start, end, steps, script in sorted(found, key=lambda b: b[0]):
            body = text[start:end]
            first = steps[0][0].splitlines()[0] if steps else ""
            if script:
                first = f"the script starting {first.strip()!r}"
            if not steps or any("&\n" in c or c.rstrip().endswith("&") for c, _ in steps) \
                    or any(s in c for c, _ in steps for s in skip):
                notes.append(f"left as is: {first.strip()}")
                continue
            new_body, ok = [], True
            for cmd, old in steps:
                try:
                    code, out = (run_script if script else run)(cmd, tmp, env, timeout)
                except subprocess.TimeoutExpired:
                    ok = False
                    notes.append(f"timed out, left as is: {first.strip()}")
                    break
                if code != 0 and (script or ("rror" not in old and "exit" not in old)):
                    ok = False
                    last = out.strip().splitlines()[-1] if out.strip() else ""
                    what = first if script else cmd.splitlines()[0].strip()
                    notes.append(f"failed ({code}), left as is: {what}\n    {last}")
                    break
                new_body.append(("" if script else cmd) + keep_wall_times(out, old))
            if ok:
                new = "".join(new_body)
                if new != body:
                    changed += 1
                    pieces += [text[pos:start], new]
                    pos = end
        pieces.append(text[pos:])
        return "".join(pieces), notes, changed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("docs", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if an output differs")
    ap.add_argument("--skip", action="append", default=[], metavar="TEXT",
                    help="leave blocks whose commands contain TEXT as they are (repeatable)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per command (default 900)")
    args = ap.parse_args(argv)
    differ = 0
    for doc in args.docs:
        new, notes, changed = regenerate(doc, args.skip, args.timeout)
        for n in notes:
            print(f"{doc}: {n}")
        print(f"{doc}: {changed} block(s) {'differ' if args.check else 'rewritten'}")
        if changed and not args.check:
            tmp = doc.with_name(doc.name + ".tmp")
            tmp.write_text(new)
            tmp.replace(doc)
        differ += changed
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
