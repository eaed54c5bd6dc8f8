"""Where the pipeline's AWS names come from.

The pipeline needs five names that ``bootstrap/`` creates once per AWS account. In GitHub Actions they are
repository variables (Settings → Secrets and variables → Actions → Variables), exported to every job as
environment variables of the same name:

=============================  ==============================================================
``SMGITOPS_STATE_BUCKET``      S3 bucket of the Terraform state (bootstrap output ``state_bucket``)
``SMGITOPS_LOCK_TABLE``        DynamoDB table of the state lock (``lock_table``)
``SMGITOPS_ARTIFACT_BUCKET``   content-addressed model artifact store (``artifact_bucket``)
``SMGITOPS_EXECUTION_ROLE_ARN`` role SageMaker assumes to serve the release's environment (``execution_role_arns``)
``SMGITOPS_KMS_KEY_ARN``       KMS key of endpoint storage and data capture (``kms_key_arn``)
=============================  ==============================================================

bootstrap/ creates one SageMaker execution role per environment. In GitHub they are one repository variable,
``SMGITOPS_EXECUTION_ROLE_ARNS``, the JSON object of bootstrap's ``execution_role_arns`` output (environment => ARN),
because a pull request's plan job runs in no GitHub environment yet plans every environment the change concerns;
each release takes its own environment's role from it. ``SMGITOPS_EXECUTION_ROLE_ARN`` (one ARN) is accepted instead
for a job that only ever touches one environment. None of them is a secret. In local mode (``AWS_ENDPOINT_URL`` set)
they come from the outputs of ``bootstrap/`` applied to the emulator instead, unless all of them are set explicitly
(explicit settings always win): :func:`smgitops.localmode.resolve_settings` decides, above this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
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
    # Every environment's execution role (environment => ARN) when the settings come from bootstrap/'s outputs
    # (local mode); empty when they come from the environment, where execution_role_arn is the job's environment's.
    execution_role_arns: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def execution_role_for(self, environment: str) -> str:
        """The execution role of ``environment``: SageMaker serves each environment with a role of its own."""
        if self.execution_role_arns:
            role = self.execution_role_arns.get(environment)
            if role is None:
                known = ", ".join(sorted(self.execution_role_arns))
                raise UserError(
                    f"bootstrap/ has no SageMaker execution role for environment {environment!r} (it has: {known}); "
                    "add the environment to bootstrap's `environments` and apply it"
                )
            return role
        return self.execution_role_arn

    def state_key(self, environment: str) -> str:
        """One Terraform state object per environment."""
        return f"smgitops/{environment}.tfstate"


EXECUTION_ROLE_MAP_VAR = "SMGITOPS_EXECUTION_ROLE_ARNS"


def _execution_role_map(environ: Mapping[str, str]) -> dict[str, str]:
    """``SMGITOPS_EXECUTION_ROLE_ARNS`` as a map (empty when unset); anything but a JSON object of ARNs is an error."""
    text = environ.get(EXECUTION_ROLE_MAP_VAR, "").strip()
    if not text:
        return {}
    try:
        roles = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{EXECUTION_ROLE_MAP_VAR} is not JSON ({exc.msg}): set it to bootstrap's execution_role_arns, "
            'e.g. {"dev": "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution-dev"}'
        ) from None
    if (
        not isinstance(roles, dict)
        or not roles
        or not all(isinstance(k, str) and isinstance(v, str) and v.startswith("arn:") for k, v in roles.items())
    ):
        raise UserError(
            f"{EXECUTION_ROLE_MAP_VAR} must be a JSON object of environment to role ARN (bootstrap's "
            "execution_role_arns output)"
        )
    return roles


def settings_from_env(region: str, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``SMGITOPS_*`` environment variables; every missing one is named in one error."""
    environ = os.environ if env is None else env
    roles = _execution_role_map(environ)
    values: dict[str, str] = {}
    missing: list[str] = []
    for field, var in ENV_VARS.items():
        value = environ.get(var, "").strip()
        if value:
            values[field] = value
        elif field == "execution_role_arn" and roles:
            continue
        else:
            missing.append(var if field != "execution_role_arn" else f"{EXECUTION_ROLE_MAP_VAR} (or {var})")
    if missing:
        raise UserError(
            f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            "(set from the bootstrap/ outputs, as GitHub repository variables in CI; "
            "or set AWS_ENDPOINT_URL to use the local emulator)"
        )
    # One explicit ARN is the job's own choice and wins over the map.
    return _settings(values, region, None if values.get("execution_role_arn") else roles)


def has_explicit_settings(environ: Mapping[str, str]) -> bool:
    return all(
        environ.get(var, "").strip()
        or (field == "execution_role_arn" and environ.get(EXECUTION_ROLE_MAP_VAR, "").strip())
        for field, var in ENV_VARS.items()
    )


def _settings(values: Mapping[str, str], region: str, execution_role_arns: Mapping[str, str] | None = None) -> Settings:
    return Settings(
        state_bucket=values["state_bucket"],
        lock_table=values["lock_table"],
        artifact_bucket=values["artifact_bucket"],
        execution_role_arn=values.get("execution_role_arn", ""),
        kms_key_arn=values["kms_key_arn"],
        region=region,
        execution_role_arns=dict(execution_role_arns or {}),
    )


def settings_from_outputs(outputs: Mapping[str, Any], region: str) -> Settings:
    """Settings from ``terraform output -json`` of ``bootstrap/`` (values already unwrapped or not). The execution
    role is per environment (output ``execution_role_arns``): :meth:`Settings.execution_role_for` picks a release's."""

    def unwrap(name: str) -> Any:
        raw = outputs.get(name)
        if isinstance(raw, dict) and "value" in raw:
            raw = raw["value"]
        return raw

    def value(name: str) -> str:
        raw = unwrap(name)
        if not isinstance(raw, str) or not raw:
            raise UserError(f"bootstrap/ output {name!r} is missing or not a string")
        return raw

    roles = unwrap("execution_role_arns")
    if not isinstance(roles, dict) or not roles or not all(isinstance(v, str) and v for v in roles.values()):
        raise UserError("bootstrap/ output 'execution_role_arns' is missing or not a map of environment to role ARN")
    names = {name: value(name) for name in ENV_VARS if name != "execution_role_arn"}
    return _settings(names, region, roles)


def is_local_mode(env: Mapping[str, str] | None = None) -> bool:
    """Local mode: every AWS call goes to the emulator named by ``AWS_ENDPOINT_URL``."""
    environ = os.environ if env is None else env
    return bool(environ.get("AWS_ENDPOINT_URL", "").strip())
