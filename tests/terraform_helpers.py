"""Helpers for the tests that run the repository's Terraform roots (bootstrap/, terraform/) with real Terraform.

Terraform always runs in a temporary copy of a root (never in the checkout), with the set-up's CLI config, so the
provider comes from the verified local mirror. Local mode is reproduced the way the pipeline does it: a generated
``local_override.tf`` with the provider's emulator switches, and a backend override where a test needs one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM_RC = ROOT / ".cache" / "terraform" / "terraformrc"

# Provider 3.39 `endpoints {}` keys of every service the two roots use (data sources included).
PROVIDER_ENDPOINT_SERVICES = ("cloudwatch", "dynamodb", "iam", "kms", "s3", "sagemaker", "sts")
BACKEND_ENDPOINT_SERVICES = ("dynamodb", "iam", "s3", "sts")


def tf_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TF_CLI_CONFIG_FILE"] = str(TERRAFORM_RC)  # the machine's default points at a missing file
    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    env["CHECKPOINT_DISABLE"] = "1"
    env.pop("TF_WORKSPACE", None)
    if extra:
        env.update(extra)
    return env


def copy_root(name: str, dest: Path) -> Path:
    """Copy the committed files of ``<repo>/<name>`` (``*.tf`` and the lock file) into ``dest``."""
    src = ROOT / name
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.tf")):
        if not path.name.endswith("_override.tf"):
            shutil.copy2(path, dest / path.name)
    shutil.copy2(src / ".terraform.lock.hcl", dest / ".terraform.lock.hcl")
    return dest


def provider_override(endpoint_url: str | None) -> str:
    """The local-mode provider override: the switches provider 3.39 needs, and the emulator's endpoints."""
    lines = [
        'provider "aws" {',
        "  skip_credentials_validation = true",
        "  skip_get_ec2_platforms      = true",
        "  skip_metadata_api_check     = true",
        "  skip_region_validation      = true",
        "  skip_requesting_account_id  = true",
        "  s3_force_path_style         = true",
    ]
    if endpoint_url:
        lines.append("  endpoints {")
        lines += [f"    {svc} = {json.dumps(endpoint_url)}" for svc in PROVIDER_ENDPOINT_SERVICES]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_local_override(workdir: Path, endpoint_url: str | None) -> None:
    (workdir / "local_override.tf").write_text(provider_override(endpoint_url), encoding="utf-8")


def write_local_backend_override(workdir: Path) -> None:
    """Replace the root's backend with local state in the working copy (for console and offline plans)."""
    (workdir / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n', encoding="utf-8")


def s3_backend_config(*, bucket: str, key: str, region: str, lock_table: str, kms_key_arn: str) -> list[str]:
    """The production -backend-config settings of terraform/ (DESIGN: one state key per environment)."""
    return [
        f"bucket={bucket}",
        f"key={key}",
        f"region={region}",
        f"dynamodb_table={lock_table}",
        "use_lockfile=true",
        "encrypt=true",
        f"kms_key_id={kms_key_arn}",
    ]


def emulator_backend_file(path: Path, endpoint_url: str) -> Path:
    """The S3 backend's local-mode settings (a .tfbackend file passed with -backend-config=<file>)."""
    endpoints = ", ".join(f"{svc} = {json.dumps(endpoint_url)}" for svc in BACKEND_ENDPOINT_SERVICES)
    path.write_text(
        f"endpoints = {{ {endpoints} }}\n"
        "use_path_style              = true\n"
        "skip_credentials_validation = true\n"
        "skip_requesting_account_id  = true\n"
        "skip_metadata_api_check     = true\n"
        "skip_region_validation      = true\n",
        encoding="utf-8",
    )
    return path


def terraform(
    workdir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    ok: Sequence[int] = (0,),
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``terraform <args>`` in ``workdir``; fail with Terraform's own output on an unexpected exit code.

    A command that needs the AWS provider attaches to this process's shared one (smgitops.tfprovider, as local
    mode's commands do), so the suite does not start a provider per Terraform process; ``SMGITOPS_SHARED_PROVIDER=0``
    in ``env`` lets Terraform start its own."""
    from smgitops import tfprovider

    run_env = dict(env) if env is not None else tf_env()
    if args and run_env.get(tfprovider.SHARED_PROVIDER_VAR, "1") == "1":
        attached = tfprovider.command_env(args[0], workdir, {**run_env, tfprovider.SHARED_PROVIDER_VAR: "1"})
        run_env = attached if attached is not None else run_env
    proc = subprocess.run(
        ["terraform", *args],
        cwd=workdir,
        env=run_env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in ok:
        raise AssertionError(
            f"terraform {' '.join(args)} exited {proc.returncode} (expected {list(ok)}) in {workdir}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def init(workdir: Path, *extra: str, env: Mapping[str, str] | None = None) -> None:
    terraform(workdir, "init", "-no-color", "-input=false", *extra, env=env)


def var_args(variables: Mapping[str, Any]) -> list[str]:
    """``-var`` arguments; non-strings are passed as HCL/JSON literals."""
    out = []
    for key, value in variables.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out.append(f"-var={key}={text}")
    return out


def console_json(workdir: Path, expression: str, variables: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """Evaluate an expression with ``terraform console`` and return it as JSON data.

    The value goes through ``base64encode(jsonencode(...))`` so the console's own string quoting cannot alter it.
    """
    import base64

    proc = terraform(
        workdir, "console", *var_args(variables), env=env, stdin=f"base64encode(jsonencode({expression}))\n"
    )
    printed = proc.stdout.strip().splitlines()[-1].strip().strip('"')
    return json.loads(base64.b64decode(printed).decode("utf-8"))
