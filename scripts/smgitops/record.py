"""``smgitops record DIR``: tell Git what a deploy did, from a job that holds no AWS credentials.

The deploy job assumes an AWS role and has no token that can write to the repository; the job that pushes has
such a token and no AWS credentials. ``smgitops deploy --record DIR`` writes what Git must learn into
``DIR/<environment>.json``::

    {"environment", "release", "revision", "ok", "good_tag", "rollback_branch", "rollback_commit",
     "rolled_back_to", "reason"}

and, when it wrote a revert branch, ``DIR/<environment>.bundle``: a git bundle holding only the revert commit (its
prerequisite is the deployed revision, which every checkout of the push has). The workflow carries ``DIR`` from one
job to the other as an artifact.

``record DIR`` checks every record against the repository before it pushes anything:

* the record's revision is the commit checked out (the push the workflow runs for);
* a good tag is exactly ``smgitops/good/<environment>/<revision>``;
* a revert branch is named ``smgitops/rollback-<environment>-…``, its commit is the bundle's, its only parent is the
  revision, and it changes nothing but the record's release file;

then pushes the tags and branches (the token, ``GH_TOKEN`` or ``GITHUB_TOKEN``, reaches git as an
``http.extraheader`` through its environment, never on a command line) and opens one pull request per revert branch
through the GitHub REST API (``GITHUB_API_URL``, ``GITHUB_REPOSITORY``).

The canary evidence of a good deploy travels with its good tag: ``canary`` in the record (what
:func:`canary_evidence` makes of the canary report: per variant the model, its artifact digest, weight, invocations,
errors, p99 latency and verdict, with the thresholds and the window) is written as a git blob and tagged
``smgitops/canary/<environment>/<revision>`` (a lightweight tag pointing at the blob: no git identity needed, no
shared ref two environments could race on), pushed with the good tag. ``deploy`` writes the same tag in its own
clone (beside the good tag). :func:`read_evidence` reads them back: the release policy's promotion by digest
(RP005: prod gives traffic only to digests that passed a canary in dev) and the pull-request comment's evidence.
A canary tag counts only while the good tag of the same revision exists.

Exit codes: 0 everything pushed (or nothing to record); 2 a record that does not hold (nothing pushed); 1 git or
GitHub failed.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExternalError, UserError
from .git import Git
from .rollout import GOOD_TAG_PREFIX, ROLLBACK_BRANCH_PREFIX, good_tag

if TYPE_CHECKING:
    from .comment import Opener
    from .release import Release
    from .rollout import DeployResult

_ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")

CANARY_TAG_PREFIX = "smgitops/canary"
EVIDENCE_FORMAT = "smgitops-canary-evidence/1"


# -- canary evidence -----------------------------------------------------------------------------------------------


def canary_tag(environment: str, sha: str) -> str:
    return f"{CANARY_TAG_PREFIX}/{environment}/{sha}"


def canary_evidence(release: Release, revision: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence kept with a good tag: the canary report (``CanaryReport.to_dict``) of ``release`` at
    ``revision``, each variant with the artifact digest it served."""
    window = report.get("window") or {}
    variants = []
    for v in report.get("variants") or []:
        model = release.models.get(str(v.get("model")))
        variants.append(
            {
                "name": v.get("name"),
                "model": v.get("model"),
                "digest": model.artifact_sha256 if model is not None else "",
                "weight": v.get("weight"),
                "invocations": v.get("invocations"),
                "errors": v.get("errors"),
                "error_rate": v.get("error_rate"),
                "p99_latency_ms": v.get("p99_latency_ms"),
                "verdict": v.get("verdict"),
            }
        )
    return {
        "format": EVIDENCE_FORMAT,
        "environment": release.environment,
        "revision": revision,
        "endpoint": report.get("endpoint"),
        "verdict": report.get("verdict"),
        "window": {k: window.get(k) for k in ("start", "end", "bake_minutes", "observed_seconds")},
        "thresholds": dict(report.get("thresholds") or {}),
        "variants": variants,
    }


def evidence_problem(doc: Any, environment: str, revision: str) -> str | None:
    """Why ``doc`` is not the canary evidence of ``environment`` at ``revision`` (None: it is)."""
    if not isinstance(doc, dict) or doc.get("format") != EVIDENCE_FORMAT:
        return f"not canary evidence (format {EVIDENCE_FORMAT} expected)"
    if doc.get("environment") != environment or doc.get("revision") != revision:
        return f"evidence of {doc.get('environment')}@{doc.get('revision')}, expected {environment}@{revision}"
    variants = doc.get("variants")
    if not isinstance(variants, list) or not variants:
        return "no variants"
    for v in variants:
        if not isinstance(v, dict) or not _DIGEST.match(str(v.get("digest", ""))):
            return "a variant without a 64-hex artifact digest"
    return None


def store_evidence(git: Git, evidence: Mapping[str, Any]) -> str:
    """Write ``evidence`` as a blob and tag it ``smgitops/canary/<environment>/<revision>``; returns the tag."""
    text = json.dumps(evidence, indent=2, sort_keys=True) + "\n"
    blob = git.run("hash-object", "-w", "--stdin", input_text=text).strip()
    tag = canary_tag(str(evidence["environment"]), str(evidence["revision"]))
    git.create_tag(tag, blob)
    return tag


def read_evidence(git: Git, environment: str) -> list[dict[str, Any]]:
    """Every canary evidence of ``environment`` whose good tag exists, newest canary window first."""
    good = set(git.tags(f"{GOOD_TAG_PREFIX}/{environment}/").values())
    prefix = f"{CANARY_TAG_PREFIX}/{environment}/"
    wanted: list[tuple[str, str]] = []  # (revision, blob)
    for tag, oid in git.tags(prefix).items():
        revision = tag[len(prefix) :]
        if revision in good:
            wanted.append((revision, oid))
    found: list[dict[str, Any]] = []
    for revision, oid in wanted:
        try:
            doc = json.loads(git.run("cat-file", "blob", oid))
        except (ExternalError, json.JSONDecodeError):  # not a blob, or not JSON: not evidence
            continue
        if evidence_problem(doc, environment, revision) is None:
            found.append(doc)
    found.sort(key=lambda d: str((d.get("window") or {}).get("end") or ""), reverse=True)
    return found


def last_canary(evidence: Sequence[Mapping[str, Any]], digest: str) -> dict[str, Any] | None:
    """The newest canary in ``evidence`` (newest first) in which a variant served ``digest`` with traffic:
    the evidence with that variant under ``variant``."""
    for doc in evidence:
        for v in doc.get("variants") or []:
            if v.get("digest") == digest and v.get("verdict") == "pass":
                return {**doc, "variant": v}
    return None


@dataclass(frozen=True)
class Record:
    environment: str
    release: str
    revision: str
    ok: bool
    good_tag: str
    rollback_branch: str
    rollback_commit: str
    rolled_back_to: str
    reason: str
    canary: dict[str, Any] | None = None  # the canary evidence (canary_evidence) of a good deploy


def write_record(git: Git, result: DeployResult, directory: Path) -> Path:
    """``DIR/<environment>.json`` (and ``.bundle`` for a revert branch) of a finished deploy."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    rb = result.rollback or {}
    branch = str(rb.get("branch") or "") if rb.get("ok") else ""
    record = Record(
        environment=result.environment,
        release=result.release,
        revision=str(result.revision or ""),
        ok=result.ok,
        good_tag=result.recorded_good or "",
        rollback_branch=branch,
        rollback_commit=str(rb.get("commit") or "") if branch else "",
        rolled_back_to=str(rb.get("to") or "") if branch else "",
        reason=result.reason,
        canary=result.evidence if result.recorded_good else None,
    )
    if branch:
        bundle = directory / f"{result.environment}.bundle"
        git.run("bundle", "create", str(bundle), f"refs/heads/{branch}", f"^{record.revision}")
    path = directory / f"{result.environment}.json"
    path.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    return path


def _load(path: Path) -> Record:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a deploy record ({exc})") from exc
    if not isinstance(doc, dict):
        raise UserError(f"{path}: not a deploy record (not a JSON object)")
    fields: dict[str, Any] = {}
    for name, kind in Record.__annotations__.items():
        value = doc.get(name)
        if name == "canary":
            if value is not None and not isinstance(value, dict):
                raise UserError(f"{path}: canary: not a JSON object")
            fields[name] = value
            continue
        want = bool if kind == "bool" else str
        if not isinstance(value, want):
            raise UserError(f"{path}: {name}: missing or not a {want.__name__}")
        fields[name] = value
    return Record(**fields)


def check_record(git: Git, path: Path, head: str) -> Record:
    """The record of ``path``, after every check (UserError, exit 2, on the first that fails)."""
    rec = _load(path)
    where = f"{path}"
    if not _ENVIRONMENT.match(rec.environment) or path.stem != rec.environment:
        raise UserError(f"{where}: environment: {rec.environment!r} is not this file's environment name")
    if not _SHA.match(rec.revision) or rec.revision != head:
        raise UserError(f"{where}: revision: {rec.revision!r} is not the commit checked out ({head})")
    if rec.good_tag and rec.good_tag != good_tag(rec.environment, rec.revision):
        raise UserError(f"{where}: good_tag: {rec.good_tag!r}, expected {good_tag(rec.environment, rec.revision)!r}")
    if rec.good_tag and not rec.ok:
        raise UserError(f"{where}: good_tag: a failed deploy records no good revision")
    if rec.canary is not None:
        if not rec.good_tag:
            raise UserError(f"{where}: canary: evidence is kept only with a good tag")
        problem = evidence_problem(rec.canary, rec.environment, rec.revision)
        if problem:
            raise UserError(f"{where}: canary: {problem}")
    if rec.rollback_branch:
        _check_revert(git, path, rec)
    return rec


def _check_revert(git: Git, path: Path, rec: Record) -> None:
    branch = rec.rollback_branch
    prefix = f"{ROLLBACK_BRANCH_PREFIX}-{rec.environment}-"
    if not branch.startswith(prefix) or not git.ok("check-ref-format", f"refs/heads/{branch}"):
        raise UserError(f"{path}: rollback_branch: {branch!r} is not a revert branch of {rec.environment}")
    bundle = path.with_suffix(".bundle")
    if not bundle.is_file():
        raise UserError(f"{path}: rollback_branch: {bundle.name} (the revert commit) is missing")
    if not git.ok("bundle", "verify", "-q", str(bundle)):
        raise UserError(f"{bundle}: not a git bundle whose prerequisites this repository has")
    git.run("fetch", "-q", str(bundle), f"+refs/heads/{branch}:refs/heads/{branch}")
    commit = git.run("rev-parse", f"refs/heads/{branch}").strip()
    if commit != rec.rollback_commit:
        raise UserError(f"{bundle}: {branch} is {commit}, the record says {rec.rollback_commit}")
    parents = git.run("rev-list", "--parents", "-n", "1", commit).split()[1:]
    if parents != [rec.revision]:
        raise UserError(f"{bundle}: the revert commit's parents are {parents}, expected only {rec.revision}")
    changed = git.run("diff", "--name-only", rec.revision, commit).split()
    if changed != [rec.release]:
        raise UserError(f"{bundle}: the revert commit changes {changed}, expected only {rec.release}")


def _push_env(env: Mapping[str, str]) -> dict[str, str]:
    token = env.get("GH_TOKEN") or env.get("GITHUB_TOKEN") or ""
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def checks_note(branch: str, app: str) -> str:
    """What the revert pull request says about its checks. GitHub starts no workflow for a pull request opened
    with a workflow's ``GITHUB_TOKEN``; one opened with a GitHub App's installation token runs them as any other."""
    if app:
        return f"Opened by the GitHub App `{app}`: the plan comment and the checks run on this pull request."
    return (
        "**The checks have not run.** This pull request was opened with the workflow's GITHUB_TOKEN, and GitHub "
        "starts no workflow for it (no plan comment, no CI; where checks are required it cannot merge). Start them "
        "by closing and reopening this pull request, or by pushing an empty commit to its branch:\n\n"
        f"    git fetch origin {branch} && git switch {branch}\n"
        f'    git commit --allow-empty -m "Run the checks" && git push origin {branch}\n\n'
        "To have them start on their own, configure a GitHub App (variable SMGITOPS_APP_CLIENT_ID, secret "
        "SMGITOPS_APP_PRIVATE_KEY of the environment record; see the README): the deploy workflow then opens this "
        "pull request with the App's token."
    )


def _open_pull(rec: Record, base: str, env: Mapping[str, str], opener: Opener | None, app: str = "") -> str:
    from .comment import GitHub

    token = env.get("GH_TOKEN") or env.get("GITHUB_TOKEN") or ""
    repository = env.get("GITHUB_REPOSITORY", "")
    if not token or not repository:
        raise UserError("opening the revert pull request needs GH_TOKEN (or GITHUB_TOKEN) and GITHUB_REPOSITORY")
    run_url = "{}/{}/actions/runs/{}".format(
        env.get("GITHUB_SERVER_URL", "https://github.com"), repository, env.get("GITHUB_RUN_ID", "")
    )
    gh = GitHub(env.get("GITHUB_API_URL") or "https://api.github.com", repository, token, opener)
    pull = gh.create_pull(
        base=base,
        head=rec.rollback_branch,
        title=f"Roll back {rec.release}: the deploy failed and was rolled back",
        body=(
            f"smgitops deploy of {rec.revision[:8]} failed: {rec.reason}\n\n"
            f"The endpoint was rolled back to the release file of {rec.rolled_back_to[:8]}. Merging this makes "
            f"{rec.release} match what is live. Details: {run_url}\n\n{checks_note(rec.rollback_branch, app)}"
        ),
    )
    return str(pull.get("html_url") or pull.get("number"))


def record(
    directory: Path,
    git: Git,
    *,
    remote: str = "origin",
    base: str = "main",
    env: Mapping[str, str] | None = None,
    opener: Opener | None = None,
    app: str = "",
) -> list[str]:
    """Check every record in ``directory``, then push and open pull requests; returns what was done. ``app``: the
    slug of the GitHub App whose installation token the environment's token is ('' for GITHUB_TOKEN)."""
    environ = dict(os.environ if env is None else env)
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    head = git.head()
    records = [check_record(git, path, head) for path in paths]  # all checked before anything is pushed
    done: list[str] = []
    for rec in records:
        refs: list[str] = []
        if rec.good_tag:
            git.create_tag(rec.good_tag, rec.revision)
            refs.append(f"refs/tags/{rec.good_tag}")
        if rec.canary is not None:
            refs.append(f"refs/tags/{store_evidence(git, rec.canary)}")
        if rec.rollback_branch:
            refs.append(f"refs/heads/{rec.rollback_branch}")
        if refs:
            git.run("push", "-q", remote, *(f"{ref}:{ref}" for ref in refs), extra_env=_push_env(environ))
            done += [f"{rec.environment}: pushed {ref}" for ref in refs]
        if rec.rollback_branch:
            url = _open_pull(rec, base, environ, opener, app)
            done.append(f"{rec.environment}: opened the revert pull request {url}")
        if not refs:
            done.append(f"{rec.environment}: nothing to record (deploy {'ok' if rec.ok else 'failed'})")
    return done
