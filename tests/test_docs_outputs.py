"""The tutorial's and the README's console outputs are what the current model prints: every
command of docs/tutorial.md and README.md, and every script whose output follows it in a text
block, runs in a scratch copy of the repository and its output must match the recorded one byte
for byte (a regression test of the docs: after an intended change
of results, rewrite them with `python docs/console_outputs.py docs/tutorial.md README.md` and read
the prose around them)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("console_outputs", ROOT / "docs" / "console_outputs.py")
console_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(console_outputs)


def test_block_parser_splits_commands_continuations_and_outputs():
    text = "x\n```console\n$ sim a \\\n    --b\nout 1\nout 2\n$ ls\nf\n```\n"
    (start, end, steps), = console_outputs.blocks(text)
    assert steps == [("$ sim a \\\n    --b\n", "out 1\nout 2\n"), ("$ ls\n", "f\n")]
    assert text[start:end] == "$ sim a \\\n    --b\nout 1\nout 2\n$ ls\nf\n"


def test_a_script_and_the_text_block_right_after_it_are_a_command_and_its_output(tmp_path):
    text = ("```python\nimport os  # no output shown\n```\n\n```console\n$ ls\n```\n"
            "x\n```python\nprint(6 * 7)\n```\n\n```text\n41\n```\n"
            "```python\nprint(1)\n```\nprose between: not its output\n```text\nz\n```\n")
    (start, end, steps), = console_outputs.scripts(text)
    assert steps == [("print(6 * 7)\n", "41\n")] and text[start:end] == "41\n"
    code, out = console_outputs.run_script(steps[0][0], tmp_path, dict(os.environ), 60)
    assert (code, out) == (0, "42\n")


def test_a_marked_code_block_is_a_file_the_commands_can_read(tmp_path):
    """A file the reader saves (``<!-- file: NAME -->`` before its block) is written before any
    command runs, even one earlier in the document; an unmarked block is not."""
    text = ("```console\n$ python b.py\nold\n```\n<!-- file: a.yaml -->\n```yaml\nk: 1\n```\n"
            "```yaml\nunmarked: 2\n```\n<!-- file: b.py -->\n```python\nprint(open('a.yaml').read(), end='')\n```\n")
    assert console_outputs.files(text) == {"a.yaml": "k: 1\n", "b.py": "print(open('a.yaml').read(), end='')\n"}
    doc = tmp_path / "doc.md"
    doc.write_text(text)
    new, notes, changed = console_outputs.regenerate(doc, [], 60)
    assert changed == 1 and new.startswith("```console\n$ python b.py\nk: 1\n```") and not notes


def test_wall_clock_figures_keep_their_recorded_text():
    old = "fitted in 42.7 s (300 evaluations)\n"
    assert console_outputs.keep_wall_times("fitted in 51.0 s (300 evaluations)\n", old) == old


def test_the_tutorials_outputs_are_what_the_model_prints():
    doc = ROOT / "docs" / "tutorial.md"
    new, notes, changed = console_outputs.regenerate(doc, skip=[], timeout=300)
    assert not notes, notes
    assert changed == 0, "docs/tutorial.md shows outputs the model no longer prints: " \
                         "python docs/console_outputs.py docs/tutorial.md"


def test_the_readmes_outputs_are_what_the_model_prints():
    """The README's worked example (the comparison, one run, its first rows, the Celery
    walk-through): its numbers had drifted from the model while they were plain text blocks."""
    doc = ROOT / "README.md"
    new, notes, changed = console_outputs.regenerate(doc, skip=[], timeout=300)
    assert not notes, notes
    assert changed == 0, "README.md shows outputs the model no longer prints: python docs/console_outputs.py README.md"
