"""Errors a user can cause or act on, and how the CLI reports them.

Exit codes (the CLI contract): 0 ok, 1 a check failed (canary breach, policy finding, drift), 2 bad input or usage.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in an input file: rendered as ``file:line:col: field.path: reason``."""

    file: str
    line: int
    col: int
    field: str
    reason: str

    def __str__(self) -> str:
        field = self.field or "(document)"
        if self.line <= 0:  # about the file as a whole (missing, a directory): no position to give
            return f"{self.file}: {field}: {self.reason}"
        return f"{self.file}:{self.line}:{self.col}: {field}: {self.reason}"


class SmgitopsError(Exception):
    """Base class of every error the CLI turns into a message instead of a traceback."""

    exit_code = 1


class UserError(SmgitopsError):
    """Bad input or usage: exit code 2. The message says what to change."""

    exit_code = 2


class InvalidRelease(UserError):
    """A release file (or another input file) has one or more located problems."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CheckFailed(SmgitopsError):
    """A check ran and did not hold (canary breach, policy finding, drift): exit code 1."""

    exit_code = 1


class ExternalError(SmgitopsError):
    """A tool or service the pipeline drives failed (terraform, AWS): exit code 1, with its message."""

    exit_code = 1
