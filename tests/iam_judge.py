"""IAM judgements for the tests: bootstrap's policies read back from the emulator, judged by a maintained simulator.

* ``require_simulator()``: node (20 or newer) and the npm package ``@cloud-copilot/iam-simulate`` that ``make setup``
  installs in ``tests/iam`` (exact version and integrity hashes from its ``package-lock.json``). Missing: the test
  FAILS with what to do, it never skips.
* ``AccountPolicies.read(session, outputs)``: every role bootstrap made (inline and attached policies, trust policy),
  the state and artifact bucket policies and the key policy, read from the emulator's IAM, S3 and KMS, the way
  bootstrap applied them; ``outputs`` are bootstrap's Terraform outputs (``outputs.json`` of the local stack).
* ``Case`` / ``simulate(cases)``: one node process judges a batch of requests (``tests/iam/simulate.mjs``):
  ``Allowed``, ``ImplicitlyDenied`` or ``ExplicitlyDenied`` (``Error`` for a request the simulator refuses).
* ``role_access_key(role_arn)``: the dummy access key the workflow runner gives a role, so the emulator's request
  log tells which role made each call; ``HARNESS_KEY`` is the key of the tests' own set-up calls.
* ``trust_allows(trust_policy, provider_arn, claims)``: the OIDC trust conditions, judged by a small explicit check
  (the simulator drops OIDC-provider condition keys from trust evaluations).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smgitops.emulator.server import DUMMY_CREDENTIAL

ROOT = Path(__file__).resolve().parents[1]
SIMULATOR_DIR = ROOT / "tests" / "iam"
SIMULATOR_PACKAGE = "@cloud-copilot/iam-simulate"
HARNESS_KEY = DUMMY_CREDENTIAL
DENIED = frozenset({"ImplicitlyDenied", "ExplicitlyDenied"})
OIDC_HOST = "token.actions.githubusercontent.com"


def role_access_key(role_arn: str) -> str:
    """A distinct, stable dummy access key id per role (AWS's shape: 20 upper-case characters)."""
    return "ASIA" + hashlib.sha256(role_arn.encode()).hexdigest()[:16].upper()


def require_simulator() -> str:
    """The node executable, after checking the simulator is installed; fails the test (never skips) if not."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH: the IAM policy tests run the npm package @cloud-copilot/iam-simulate with "
            "Node.js 20 or newer. Install Node.js and npm, then run `make setup`.",
            pytrace=False,
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"node {version} is on PATH; the IAM policy simulator needs Node.js 20 or newer", pytrace=False)
    wanted = json.loads((SIMULATOR_DIR / "package.json").read_text())["dependencies"][SIMULATOR_PACKAGE]
    installed = SIMULATOR_DIR / "node_modules" / SIMULATOR_PACKAGE / "package.json"
    if not installed.exists():
        pytest.fail(f"{SIMULATOR_PACKAGE} is not installed in {SIMULATOR_DIR}: run `make setup`", pytrace=False)
    have = json.loads(installed.read_text())["version"]
    if have != wanted:
        pytest.fail(f"{SIMULATOR_PACKAGE} {have} is installed, the lock file pins {wanted}: run `make setup`")
    return node


@dataclass(frozen=True)
class Case:
    """One request to judge: ``role`` asks for ``action`` on ``resource`` with these condition keys."""

    id: str
    role: str
    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps([self.role, self.action, self.resource, dict(sorted(self.context.items()))])


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import urllib.parse

        text = value if value.lstrip().startswith("{") else urllib.parse.unquote(value)
        parsed: dict[str, Any] = json.loads(text)
        return parsed
    return dict(value)


@dataclass
class RolePolicies:
    arn: str
    name: str
    identity: list[dict[str, Any]]  # [{"name": ..., "policy": {...}}]
    trust: dict[str, Any]


@dataclass
class AccountPolicies:
    account: str
    outputs: dict[str, Any]
    roles: dict[str, RolePolicies]  # role ARN -> policies
    bucket_policies: dict[str, dict[str, Any]]  # bucket name -> policy
    key_policies: dict[str, dict[str, Any]]  # key ARN -> key policy

    @staticmethod
    def role_arns(outputs: Mapping[str, Any]) -> dict[str, str]:
        """Role label (plan, teardown, drift, apply-<env>, execution-<env>) -> ARN, from bootstrap's outputs."""
        roles = {
            "plan": str(outputs["plan_role_arn"]),
            "teardown": str(outputs["teardown_role_arn"]),
            "drift": str(outputs["drift_role_arn"]),
        }
        roles.update({f"apply-{env}": str(arn) for env, arn in dict(outputs["apply_role_arns"]).items()})
        if "execution_role_arns" in outputs:
            roles.update({f"execution-{env}": str(arn) for env, arn in dict(outputs["execution_role_arns"]).items()})
        else:
            roles["execution"] = str(outputs["execution_role_arn"])
        return roles

    @classmethod
    def read(cls, session: Any, outputs: Mapping[str, Any]) -> AccountPolicies:
        iam, s3, kms = session.client("iam"), session.client("s3"), session.client("kms")
        roles: dict[str, RolePolicies] = {}
        for arn in cls.role_arns(outputs).values():
            name = arn.rsplit("/", 1)[-1]
            role = iam.get_role(RoleName=name)["Role"]
            identity = [
                {
                    "name": f"{name}/{policy}",
                    "policy": _document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]),
                }
                for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
            ]
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                meta = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
                version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=meta["DefaultVersionId"])
                identity.append(
                    {"name": attached["PolicyArn"], "policy": _document(version["PolicyVersion"]["Document"])}
                )
            roles[arn] = RolePolicies(arn, name, identity, _document(role["AssumeRolePolicyDocument"]))
        buckets = {
            str(outputs[k]): json.loads(s3.get_bucket_policy(Bucket=str(outputs[k]))["Policy"])
            for k in ("state_bucket", "artifact_bucket")
        }
        key_arn = str(outputs["kms_key_arn"])
        keys = {key_arn: json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])}
        account = key_arn.split(":")[4]
        return cls(account, dict(outputs), roles, buckets, keys)

    def resource_policy(self, action: str, resource: str) -> dict[str, Any] | None:
        if resource.startswith("arn:aws:s3:::"):
            return self.bucket_policies.get(resource[len("arn:aws:s3:::") :].split("/", 1)[0])
        if action.startswith("kms:"):
            return self.key_policies.get(resource)
        return None

    def simulation_input(self, case: Case) -> dict[str, Any]:
        role = self.roles.get(case.role)
        if role is None:
            raise AssertionError(f"{case.id}: {case.role} is not a role bootstrap made ({sorted(self.roles)})")
        return {
            "id": case.id,
            "principal": case.role,
            "action": case.action,
            "resource": case.resource,
            "accountId": self.account,
            "context": {"aws:SecureTransport": "true", **case.context},
            "identityPolicies": role.identity,
            "resourcePolicy": self.resource_policy(case.action, case.resource),
        }


def simulate(policies: AccountPolicies, cases: Iterable[Case]) -> dict[str, dict[str, Any]]:
    """Judge every case in one node process; case id -> result (``result``, ``decisive``, ``ignoredContextKeys``)."""
    node = require_simulator()
    batch = [policies.simulation_input(c) for c in cases]
    proc = subprocess.run(
        [node, str(SIMULATOR_DIR / "simulate.mjs")],
        input=json.dumps({"cases": batch}),
        capture_output=True,
        text=True,
        cwd=SIMULATOR_DIR,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, f"the IAM policy simulator failed: {proc.stderr[-3000:]}"
    out = json.loads(proc.stdout)
    results = {r["id"]: r for r in out["results"]}
    assert len(results) == len(batch), "the simulator answered a different number of cases"
    for r in results.values():
        r["simulator"] = out["simulator"]
    return results


# ---------------------------------------------------------------------------------------------------------------
# Trust policies: GitHub's OIDC claims, judged explicitly
# ---------------------------------------------------------------------------------------------------------------


def _like(pattern: str, value: str) -> bool:
    """IAM's StringLike: ``*`` any run of characters, ``?`` one character, everything else literal."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.S) is not None


_OPERATORS = {
    "StringEquals": lambda want, have: have in want,
    "StringLike": lambda want, have: any(_like(w, have) for w in want),
}


def trust_allows(trust: Mapping[str, Any], provider_arn: str, claims: Mapping[str, str]) -> bool:
    """Whether a GitHub OIDC token with these claims (``aud``, ``sub``) may assume the role.

    A statement allows when it is an Allow of ``sts:AssumeRoleWithWebIdentity`` for the provider and every condition
    holds. An operator or key this check does not know fails the test: it never guesses.
    """
    statements = trust["Statement"]
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        federated = (st.get("Principal") or {}).get("Federated", [])
        federated = [federated] if isinstance(federated, str) else federated
        if st.get("Effect") == "Deny":
            raise AssertionError(f"trust policy has a Deny statement this check does not model: {st}")
        if "sts:AssumeRoleWithWebIdentity" not in actions or provider_arn not in federated:
            continue
        holds = True
        for operator, conditions in (st.get("Condition") or {}).items():
            if operator not in _OPERATORS:
                raise AssertionError(f"trust condition operator {operator} is not modelled by this check")
            for key, want in conditions.items():
                host, _, claim = key.partition(":")
                if host != OIDC_HOST or claim not in ("aud", "sub"):
                    raise AssertionError(f"trust condition key {key} is not modelled by this check")
                values = [want] if isinstance(want, str) else list(want)
                if not _OPERATORS[operator](values, claims[claim]):
                    holds = False
        if holds:
            return True
    return False


# ---------------------------------------------------------------------------------------------------------------
# The requests the workflows made, as the emulator recorded them
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """Every recorded call judged: per role, requests and IAM calls; problems (unmapped, unknown key, not allowed)."""

    requests: dict[str, int] = field(default_factory=dict)  # role label -> requests
    calls: dict[str, int] = field(default_factory=dict)  # role label -> IAM calls judged (derived ones included)
    allowed: dict[str, int] = field(default_factory=dict)
    no_permission_needed: dict[str, int] = field(default_factory=dict)  # sts:GetCallerIdentity
    harness_requests: int = 0
    problems: list[str] = field(default_factory=list)
    simulator: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "simulator": self.simulator,
            "recorded_calls": sum(self.calls.values()),
            "allowed": sum(self.allowed.values()),
            "per_role": {
                role: {
                    "requests": self.requests[role],
                    "calls": self.calls.get(role, 0),
                    "allowed": self.allowed.get(role, 0),
                    "no_permission_needed": self.no_permission_needed.get(role, 0),
                }
                for role in sorted(self.requests)
            },
            "harness_requests_excluded": self.harness_requests,
            "problems": len(self.problems),
        }


def judge_recorded(
    policies: AccountPolicies, records: Iterable[Mapping[str, Any]], role_by_key: Mapping[str, str]
) -> Verdict:
    """``records``: one per workflow step (``where``: workflow/job/step, ``entries``: the emulator's log entries)."""
    labels = {arn: label for label, arn in AccountPolicies.role_arns(policies.outputs).items()}
    verdict = Verdict()
    cases: dict[str, Case] = {}
    where_by_case: dict[str, list[str]] = {}
    for record in records:
        where = str(record["where"])
        for entry in record["entries"]:
            key = entry.get("access_key", "")
            if key == HARNESS_KEY:
                verdict.harness_requests += 1
                continue
            role = role_by_key.get(key)
            if role is None:
                verdict.problems.append(f"{where}: {entry['method']} {entry['path']} signed by unknown key {key!r}")
                continue
            label = labels.get(role, role)
            verdict.requests[label] = verdict.requests.get(label, 0) + 1
            if entry.get("error"):
                verdict.problems.append(
                    f"{where}: {entry['method']} {entry['path']} {entry.get('target', '')} "
                    f"{entry.get('query', '')}: not mapped to IAM: {entry['error']}"
                )
                continue
            for call in entry["calls"]:
                verdict.calls[label] = verdict.calls.get(label, 0) + 1
                if not call["needs_permission"]:
                    verdict.no_permission_needed[label] = verdict.no_permission_needed.get(label, 0) + 1
                    verdict.allowed[label] = verdict.allowed.get(label, 0) + 1
                    continue
                case = Case("", role, call["action"], call["resource"], call["context"])
                cid = hashlib.sha256(case.key().encode()).hexdigest()[:16]
                cases.setdefault(cid, Case(cid, role, call["action"], call["resource"], call["context"]))
                via = f" (for {call['via']})" if call["via"] else ""
                where_by_case.setdefault(cid, []).append(f"{where}: {call['operation']}{via}")
    results = simulate(policies, cases.values()) if cases else {}
    for cid, case in cases.items():
        result = results[cid]
        verdict.simulator = result["simulator"]
        label = labels.get(case.role, case.role)
        n = len(where_by_case[cid])
        if result["result"] == "Allowed":
            verdict.allowed[label] = verdict.allowed.get(label, 0) + n
        else:
            verdict.problems.append(
                f"{result['result']}: {label} {case.action} on {case.resource} context={dict(case.context)} "
                f"error={result['error']} ignored={result['ignoredContextKeys']}, made by {where_by_case[cid][:3]}"
            )
    return verdict
