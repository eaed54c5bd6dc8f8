"""Step outputs for GitHub Actions: ``name=value`` lines appended to the file named by ``$GITHUB_OUTPUT``.

The workflows read decisions from here (which releases changed, which revert branch to push) instead of
parsing JSON in shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .errors import UserError


def append_github_output(values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
    path = (os.environ if environ is None else environ).get("GITHUB_OUTPUT")
    if not path:
        raise UserError("--github-output needs GITHUB_OUTPUT in the environment (set by GitHub Actions)")
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"step output {name!r} must be a single line")
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(f"{name}={value}\n" for name, value in values.items())
