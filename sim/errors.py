"""Errors the simulator reports to a user, as opposed to bugs (which keep their traceback)."""
from __future__ import annotations


class SimError(Exception):
    """Something the user can fix: the CLI prints ``str(error)`` and exits non-zero, no traceback."""


class ScenarioError(SimError):
    """A scenario (or profile) file that cannot be used.

    ``problems`` is a list of ``(field path, problem)`` pairs, e.g.
    ``("dags[0].tasks.T2.duration", "must be >= 0 (got -5)")``; the path is ``""`` for the file as
    a whole. ``str()`` gives one line per problem, each starting with the file name.
    """

    def __init__(self, file: str | None, problems: list[tuple[str, str]] | str):
        if isinstance(problems, str):
            problems = [("", problems)]
        self.file = None if file is None else str(file)
        self.problems: list[tuple[str, str]] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = []
        for path, problem in self.problems:
            parts = [p for p in (self.file, path) if p]
            lines.append(": ".join(parts + [problem]))
        return "\n".join(lines)


class SimNote(UserWarning):
    """Something the user should know that is not an error (the CLI shows it as 'note: ...')."""
