"""Where things live.

Two roots matter:

* the *tool home*: the smgitops checkout that holds the set-up products (``.venv-tools``, the Terraform provider
  mirror and CLI config, the emulator certificate under ``.cache``). ``SMGITOPS_HOME`` overrides it.
* the *repository root* of a release: the directory holding ``releases/<env>.yaml``, ``terraform/``, ``data/``.
  It is normally the same checkout, but the demo and the tests run in scratch git repositories of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def tool_home() -> Path:
    """The checkout whose ``.cache`` holds the set-up products."""
    env = os.environ.get("SMGITOPS_HOME")
    if env:
        return Path(env).resolve()
    return PACKAGE_DIR.parents[1]


def cache_dir() -> Path:
    return tool_home() / ".cache"


def terraform_cli_config() -> Path:
    """CLI config written by set-up: hashicorp/aws comes from the verified filesystem mirror only."""
    return cache_dir() / "terraform" / "terraformrc"


def emulator_tls_dir() -> Path:
    return cache_dir() / "emulator" / "tls"


def verdict_dir() -> Path:
    """Where passing validation verdicts are kept: the user's cache directory (``$XDG_CACHE_HOME`` or
    ``~/.cache``), never inside a checkout, whose content a commit under review controls."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smgitops" / "validated"


def tools_bin(name: str) -> Path:
    """An executable of the separate tools environment (checkov, zizmor)."""
    return tool_home() / ".venv-tools" / "bin" / name


def repo_root_for(release_path: Path) -> Path:
    """The repository root of a release file: the parent of its ``releases/`` directory.

    Falls back to the nearest ancestor holding ``.git``, then to the file's directory.
    """
    path = release_path.resolve()
    if path.parent.name == "releases":
        return path.parent.parent
    for parent in path.parents:
        if (parent / ".git").exists():
            return parent
    return path.parent
