"""Where the pipeline's AWS names come from.

The pipeline needs five names that ``bootstrap/`` creates once per AWS account. In GitHub Actions they are
repository variables (Settings → Secrets and variables → Actions → Variables), exported to every job as
environment variables of the same name:

=============================  ==============================================================
``SMGITOPS_STATE_BUCKET``      S3 bucket of the Terraform state (bootstrap output ``state_bucket``)
``SMGITOPS_LOCK_TABLE``        DynamoDB table of the state lock (``lock_table``)
``SMGITOPS_ARTIFACT_BUCKET``   content-addressed model artifact store (``artifact_bucket``)
``SMGITOPS_EXECUTION_ROLE_ARN`` role SageMaker assumes to read artifacts (``execution_role_arn``)
``SMGITOPS_KMS_KEY_ARN``       KMS key of endpoint storage and data capture (``kms_key_arn``)
=============================  ==============================================================

None of them is a secret. In local mode (``AWS_ENDPOINT_URL`` set) they come from the outputs of
``bootstrap/`` applied to the emulator instead (see :mod:`smgitops.localmode`), unless all of them are set
explicitly (explicit settings always win).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import UserError

ENV_VARS: dict[str, str] = {
    "state_bucket": "SMGITOPS_STATE_BUCKET",
    "lock_table": "SMGITOPS_LOCK_TABLE",
    "artifact_bucket": "SMGITOPS_ARTIFACT_BUCKET",
    "execution_role_arn": "SMGITOPS_EXECUTION_ROLE_ARN",
    "kms_key_arn": "SMGITOPS_KMS_KEY_ARN",
}


@dataclass(frozen=True)
class Settings:
    """The account-level names every stage after ``train`` needs."""

    state_bucket: str
    lock_table: str
    artifact_bucket: str
    execution_role_arn: str
    kms_key_arn: str
    region: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def state_key(self, environment: str) -> str:
        """One Terraform state object per environment."""
        return f"smgitops/{environment}.tfstate"


def settings_from_env(region: str, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``SMGITOPS_*`` environment variables; every missing one is named in one error."""
    environ = os.environ if env is None else env
    values: dict[str, str] = {}
    missing: list[str] = []
    for field, var in ENV_VARS.items():
        value = environ.get(var, "").strip()
        if value:
            values[field] = value
        else:
            missing.append(var)
    if missing:
        raise UserError(
            f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            "(set from the bootstrap/ outputs, as GitHub repository variables in CI; "
            "or set AWS_ENDPOINT_URL to use the local emulator)"
        )
    return Settings(region=region, **values)


def settings_from_outputs(outputs: Mapping[str, Any], region: str) -> Settings:
    """Settings from ``terraform output -json`` of ``bootstrap/`` (values already unwrapped or not)."""

    def value(name: str) -> str:
        raw = outputs.get(name)
        if isinstance(raw, dict) and "value" in raw:
            raw = raw["value"]
        if not isinstance(raw, str) or not raw:
            raise UserError(f"bootstrap/ output {name!r} is missing or not a string")
        return raw

    return Settings(region=region, **{field: value(field) for field in ENV_VARS})


def is_local_mode(env: Mapping[str, str] | None = None) -> bool:
    """Local mode: every AWS call goes to the emulator named by ``AWS_ENDPOINT_URL``."""
    environ = os.environ if env is None else env
    return bool(environ.get("AWS_ENDPOINT_URL", "").strip())


def resolve_settings(region: str, repo_root: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings for a run: the ``SMGITOPS_*`` variables; in local mode, when they are not all set, the outputs of
    ``bootstrap/`` applied to the emulator (bootstrapping it on first use)."""
    environ = os.environ if env is None else env
    explicit = all(environ.get(var, "").strip() for var in ENV_VARS.values())
    if is_local_mode(env) and not explicit:
        from .localmode import ensure_bootstrap

        return ensure_bootstrap(region=region, repo_root=repo_root, env=env)
    return settings_from_env(region, env)


def artifact_bucket(region: str, repo_root: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Only the artifact bucket (``publish`` needs nothing else): ``SMGITOPS_ARTIFACT_BUCKET``, or in local mode
    the bootstrap output when that variable is not set."""
    environ = os.environ if env is None else env
    value = environ.get(ENV_VARS["artifact_bucket"], "").strip()
    if not value and is_local_mode(env):
        return resolve_settings(region, repo_root, env).artifact_bucket
    if not value:
        raise UserError(
            f"missing setting: {ENV_VARS['artifact_bucket']} (the bootstrap/ output artifact_bucket; "
            "a GitHub repository variable in CI; or set AWS_ENDPOINT_URL to use the local emulator)"
        )
    return value
