"""``smgitops policy``: the policy gate of a pull request.

Two layers, one verdict:

* **checkov** (from the separate tools environment, always ``--skip-download``) over the Terraform roots
  ``terraform/`` and ``bootstrap/`` and, when given, over the plan JSON (``terraform show -json``), with the
  built-in checks plus the custom ones in ``policies/`` (``CKV_SMG_*`` Python checks, ``CKV2_SMG_*`` YAML graph
  checks). Values that come from the release file (instance type, data capture) are only known to the plan, so
  the plan scan is where those checks decide.
* the **release policy** (Python, below): rules about the *change* a release makes relative to its base (the
  release as it is on the target branch), which no Terraform scanner can see.

The gate fails closed: a failed check, a skip without a reason, a skipped ``CKV_SMG`` check, a file checkov could
not parse, a custom check that did not load, or (with a plan) a custom check that evaluated nothing is a finding.

Release policy rules (each finding names the rule):

``RP001 new-model-weight``
    Models never served before (their artifact digest is in no variant of the base release) together get at most
    ``canary.max_initial_weight`` percent. A new model starts as a canary, and two new models at 10 % each are
    20 % of traffic on unproven code. Identity is the digest, not the id: retraining a model under the same id is
    a new model. A release file that has no base (the first release of an environment) is exempt: there is no
    proven model to keep the rest of the traffic.
``RP002 canary-alone``
    While a PR introduces a new model, no model of the base release may *gain* weight: the known models only
    make room for the canary. A PR that adds a canary and promotes another model at once confounds the canary
    analysis, and the automatic rollback would undo both. Beyond that there is deliberately no cap on how far
    the weights of known models may move in one PR: such a shift is either the promotion of a canary the deploy
    workflow has already analysed or a rollback/revert, and a cap would block exactly the revert the rollback
    journey depends on (RP001 and the weights summing to 100 already bound what one PR can hand to unproven
    models).
``RP003 teardown-late``
    ``teardown.at`` is not later than 23:00 local time: the endpoint must be gone before the night.
``RP004 no-variants``
    A release never removes all variants, and at least one variant has weight > 0.
``RP005 promotion-by-digest``
    A release promoted from another environment (``prod``, from ``dev``: :data:`PROMOTED_FROM`) gives traffic only
    to artifact digests that passed a canary there: the canary evidence kept with a good tag of that environment
    (``smgitops/canary/dev/<sha>`` beside ``smgitops/good/dev/<sha>``, :mod:`smgitops.record`), read from the
    release's git repository. Digests the base release already served with traffic stay (they passed this
    environment's own canary). ``models.<id>.promotion_override.reason`` lets a digest through without evidence;
    the override and its reason are in the report and the pull-request comment. The finding names the digest.

Exit codes: 0 clean, 1 findings (listed as a table, and in ``--json``), 2 bad input.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import paths
from .errors import ExternalError, InvalidRelease, UserError
from .git import Git

if TYPE_CHECKING:
    from .context import Context

CUSTOM_PREFIXES = ("CKV_SMG_", "CKV2_SMG_")
PROMOTED_FROM = {"prod": "dev"}  # environment -> the environment whose canary its digests must have passed
RELEASE_RULES = ["RP001", "RP002", "RP003", "RP004", "RP005"]
ROOTS = ("terraform", "bootstrap")
LATEST_TEARDOWN = "23:00"
_ID_IN_SOURCE = re.compile(r"""\bid\s*[=:]\s*["'](CKV2?_SMG_\d+)["']""")
_LOAD_FAILURE = re.compile(r"Cannot load external check '([^']+)'")
_NO_REASON = {"", "no comment provided"}
PLAN_IN_SCAN = "plan/tfplan.json"

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Finding:
    source: str  # "checkov" | "release"
    check_id: str
    title: str
    resource: str = ""
    file: str = ""
    line: int = 0
    detail: str = ""

    @property
    def where(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class CheckovResult:
    findings: list[Finding] = field(default_factory=list)
    passed: int = 0
    failed: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    evaluated: dict[str, int] = field(default_factory=dict)  # custom check id -> resources evaluated
    results: list[dict[str, Any]] = field(default_factory=list)  # every PASSED/FAILED (id, resource, file)
    targets: list[str] = field(default_factory=list)
    seconds: float = 0.0
    version: str = ""


# ---------------------------------------------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------------------------------------------


def custom_check_ids(policies_dir: Path) -> list[str]:
    """The ids the custom checks in ``policies_dir`` declare (Python ``id="..."``, YAML ``id: "..."``)."""
    ids: set[str] = set()
    for path in sorted(policies_dir.glob("*")):
        if path.suffix in (".py", ".yaml", ".yml") and path.is_file():
            ids.update(_ID_IN_SOURCE.findall(path.read_text(encoding="utf-8")))
    return sorted(ids)


def _decode_reports(text: str) -> list[dict[str, Any]]:
    """checkov's ``-o json``: one report object, or a list of them (one per framework)."""
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExternalError(f"checkov printed something that is not JSON ({exc}): {text[:300]}") from exc
    reports = data if isinstance(data, list) else [data]
    return [r for r in reports if isinstance(r, dict)]


def _stage(root: Path, name: str, dest: Path) -> None:
    """Copy a Terraform root's committed-style files (``*.tf``, ``*.tf.json``) without working state.

    ``.terraform/`` and generated ``*_override.tf`` files (local mode) are never part of what is judged.
    """
    target = dest / name
    target.mkdir(parents=True)
    for src in sorted(root.rglob("*")):
        rel = src.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not src.is_file():
            continue
        if not (src.name.endswith(".tf") or src.name.endswith(".tf.json")) or src.name.endswith("_override.tf"):
            continue
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)


def load_plan_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such plan JSON file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not JSON ({exc}); pass the output of `terraform show -json PLANFILE`") from exc
    if (
        not isinstance(data, dict)
        or "format_version" not in data
        or not ("planned_values" in data or "resource_changes" in data)
    ):
        raise UserError(f"{path}: not a Terraform plan in JSON (no format_version / planned_values)")
    return data


# checkov runs from its own environment's Python through this launcher, which does what checkov's console script
# does (``Checkov().run()`` with SyntaxWarnings silenced) with one change of speed. checkov's graph parses JSONPath
# expressions with bc_jsonpath_ng, which asks PLY to build its LALR tables anew for every expression (``write_tables
# =0``): about 70 ms of CPU each, some fifty times per scan of the roots, a third of checkov's time. The launcher
# gives each of those ``ply.yacc.yacc`` calls a table file of its own grammar (PLY's ``picklefile``, a private
# directory removed at exit): the first call builds and writes it, later calls read it, and PLY uses a table file
# only when its grammar signature equals the grammar's, so every parser is the one PLY would have built.
# With ``--smgitops-wait`` it imports checkov, then waits for one JSON line on stdin ({"argv": [...], "cwd": ...})
# and runs that (a process started ahead of its scan: :func:`prewarm_checkov`); end of input ends it quietly.
# It ends as smgitops' console script does (smgitops.cli.run_and_exit): threads shut down, exit handlers run,
# output flushed, then no interpreter teardown, which took checkov's thousands of modules and objects about 0.5 s.
CHECKOV_LAUNCHER = r"""
import atexit, json, os, shutil, sys, tempfile, threading, warnings
def _end(code):
    shutdown, handlers = getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or handlers is None:
        sys.exit(code)
    shutdown()
    handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
import ply.yacc as _ply_yacc
_build, _dir, _files, _lock = _ply_yacc.yacc, tempfile.mkdtemp(prefix="smgitops-ply-"), {}, [threading.Lock()]
atexit.register(shutil.rmtree, _dir, True)
os.register_at_fork(after_in_child=lambda: _lock.__setitem__(0, threading.Lock()))
def _yacc(*args, **kwargs):
    module = kwargs.get("module")
    if args or module is None or kwargs.get("picklefile") or kwargs.get("debug"):
        return _build(*args, **kwargs)
    cls = type(module)
    key = (cls.__module__, cls.__qualname__, kwargs.get("start"), kwargs.get("method", "LALR"))
    with _lock[0]:
        table = _files.setdefault(key, os.path.join(_dir, "%d.pickle" % len(_files)))
        return _build(**{**kwargs, "picklefile": table})
_ply_yacc.yacc = _yacc
from checkov.main import Checkov
argv = sys.argv[1:]
if argv == ["--smgitops-wait"]:
    line = sys.stdin.readline()
    if not line.strip():
        _end(0)
    request = json.loads(line)
    argv = request["argv"]
    os.chdir(request["cwd"])
sys.argv = ["checkov", *argv]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=SyntaxWarning)
    try:
        code = Checkov(argv).run()
    except SystemExit as exc:  # how checkov itself ends a scan
        code = exc.code
_end(code)
"""
WAIT_FLAG = "--smgitops-wait"


def _launcher_python(exe: Path) -> Path | None:
    """The Python of the environment checkov's console script ``exe`` belongs to (None: not a virtualenv's)."""
    python = exe.parent / "python"
    return python if python.exists() and (exe.parent.parent / "pyvenv.cfg").exists() else None


class _Prewarmed:
    """checkov processes started ahead of their scan (:func:`prewarm_checkov`), one per checkov and environment;
    each serves one scan. Those never used are ended when the process exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, tuple[tuple[str, str], ...]], subprocess.Popen[str]] = {}
        self.used = 0  # scans served by a process started ahead
        self.missed: list[str] = []  # why a scan found none for it (the environment variables that differed)

    @staticmethod
    def _key(exe: Path, env: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return str(exe), tuple(sorted(env.items()))

    def start(self, exe: Path, env: Mapping[str, str]) -> bool:
        python = _launcher_python(exe)
        if python is None:
            return False
        key = self._key(exe, env)
        with self._lock:
            if key in self._waiting and self._waiting[key].poll() is None:
                return True
            try:
                self._waiting[key] = subprocess.Popen(
                    [str(python), "-c", CHECKOV_LAUNCHER, WAIT_FLAG],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=dict(env),
                    cwd=tempfile.gettempdir(),
                )
            except OSError:
                return False
        return True

    def take(self, exe: Path, env: Mapping[str, str]) -> subprocess.Popen[str] | None:
        key = self._key(exe, env)
        with self._lock:
            proc = self._waiting.pop(key, None)
            if proc is None:
                for other in self._waiting:
                    if other[0] == key[0]:
                        differ = sorted({k for k, _ in set(other[1]) ^ set(key[1])})
                        self.missed.append("another environment (" + ", ".join(differ) + ")")
        if proc is None or proc.poll() is not None:
            return None
        self.used += 1
        return proc

    def stop_all(self) -> None:
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        for proc in waiting:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                proc.communicate(input="", timeout=10)  # end of input: it exits without scanning
            if proc.poll() is None:
                proc.kill()
                proc.wait()


PREWARMED = _Prewarmed()
atexit.register(PREWARMED.stop_all)


def checkov_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment checkov runs with: ``environ`` (the process's) with its log level, no vendor mapping, no
    colours."""
    base = os.environ if environ is None else environ
    return {**base, "LOG_LEVEL": "WARNING", "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLOR": "1"}


def prewarm_checkov(checkov: Path | None = None) -> bool:
    """Start a checkov process now (its import takes seconds of CPU) that waits for the next scan
    :func:`run_checkov` makes in this process with the same checkov and environment. False: checkov is missing
    or not in a virtual environment; the scan then starts its own process, as without."""
    exe = Path(checkov or paths.tools_bin("checkov"))
    return exe.exists() and PREWARMED.start(exe, checkov_env())


def launch_checkov(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run checkov's command line ``cmd`` (``[console script, args...]``) through :data:`CHECKOV_LAUNCHER` in
    checkov's environment, in a process started ahead when there is one; ``kwargs`` as for ``subprocess.run``
    (``capture_output``, ``text``, ``env``, ``cwd``, ``check``)."""
    exe = Path(cmd[0])
    python = _launcher_python(exe)
    if python is None:
        return subprocess.run(list(cmd), **kwargs)
    env = kwargs.get("env") or dict(os.environ)
    waiting = PREWARMED.take(exe, env)
    if waiting is None:
        return subprocess.run([str(python), "-c", CHECKOV_LAUNCHER, *cmd[1:]], **kwargs)
    request = json.dumps({"argv": list(cmd[1:]), "cwd": str(kwargs.get("cwd") or os.getcwd())})
    stdout, stderr = waiting.communicate(input=request + "\n")
    return subprocess.CompletedProcess(list(cmd), waiting.returncode, stdout, stderr)


def run_checkov(
    roots: Mapping[str, Path],
    *,
    plan_json: Path | None = None,
    policies_dir: Path,
    checks: Sequence[str] = (),
    require_coverage: bool = True,
    checkov: Path | None = None,
    runner: Runner = launch_checkov,
    clock: Callable[[], float] = time.monotonic,
    plan_root: str = "terraform",
) -> CheckovResult:
    """One checkov run over every root (and the plan), parsed into findings.

    Inline skips (``#checkov:skip=ID:reason``) in the root the plan was made from (``plan_root``) apply to the
    plan's findings for the same check and resource too: checkov only carries them over with ``-f`` and
    ``--repo-root-for-plan-enrichment``, which would cost a second run.

    checkov 3.3 mis-reports when ``-d`` is repeated (every report repeats the first directory), so the roots are
    staged side by side in a scratch directory and scanned with a single ``-d``; file paths in findings are
    relative to that directory, i.e. ``terraform/endpoint.tf``.
    """
    exe = checkov or paths.tools_bin("checkov")
    if not Path(exe).exists():
        raise UserError(f"checkov not found at {exe}: run `make setup` (it installs the tools environment)")
    for name, root in roots.items():
        if not root.is_dir():
            raise UserError(f"{root}: no such Terraform root ({name})")
    declared = custom_check_ids(policies_dir)
    if not declared:
        raise UserError(f"{policies_dir}: no custom checks found (expected policies/*.py or *.yaml with CKV_SMG ids)")

    with tempfile.TemporaryDirectory(prefix="smgitops-policy-") as tmp:
        scan = Path(tmp) / "scan"
        scan.mkdir()
        for name, root in roots.items():
            _stage(root, name, scan)
        frameworks = ["terraform"]
        if plan_json is not None:
            load_plan_json(plan_json)
            (scan / "plan").mkdir()
            shutil.copyfile(plan_json, scan / PLAN_IN_SCAN)
            frameworks.append("terraform_plan")
        cmd = [str(exe), "--skip-download", "-o", "json", "-d", str(scan), "--framework", *frameworks]
        cmd += ["--external-checks-dir", str(policies_dir)]
        if checks:
            cmd += ["-c", ",".join(checks)]
        env = checkov_env()
        started = clock()
        proc = runner(cmd, capture_output=True, text=True, env=env, cwd=tmp, check=False)
        seconds = clock() - started
        if proc.returncode not in (0, 1):
            raise ExternalError(f"checkov exited {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}")
        reports = _decode_reports(proc.stdout)
        result = _parse_reports(reports, str(scan) + os.sep)
    if plan_json is not None:
        _carry_skips_to_plan(result, plan_root)
    result.seconds = seconds
    result.targets = [f"{name}/" for name in roots] + ([str(plan_json)] if plan_json is not None else [])

    for name in sorted(set(_LOAD_FAILURE.findall(proc.stderr or ""))):
        result.findings.append(
            Finding(
                "checkov",
                "LOAD",
                "a custom check failed to load",
                file=f"policies/{name}.py",
                detail="checkov skipped it; its guarantee is not being checked",
            )
        )
    wanted = [c for c in declared if not checks or c in checks]
    result.evaluated = {c: result.evaluated.get(c, 0) for c in wanted}
    if require_coverage and plan_json is not None:
        for check_id, count in result.evaluated.items():
            if count == 0:
                result.findings.append(
                    Finding(
                        "checkov",
                        check_id,
                        "custom check evaluated no resource",
                        detail="neither the Terraform roots nor the plan gave it anything to judge",
                    )
                )
    return result


_INDEX = re.compile(r"\[[^\]]*\]")


def _carry_skips_to_plan(result: CheckovResult, plan_root: str) -> None:
    """Findings on the plan that the plan's Terraform root skips inline become skips (with that reason)."""
    reasons = {
        (s["id"], _INDEX.sub("", s["resource"])): (s["reason"], s["file"])
        for s in result.skipped
        if s["file"].startswith(f"{plan_root}/")
        and s["reason"].lower() not in _NO_REASON
        and not s["id"].startswith(CUSTOM_PREFIXES)
    }
    kept: list[Finding] = []
    for f in result.findings:
        key = (f.check_id, _INDEX.sub("", f.resource))
        if f.file == PLAN_IN_SCAN and key in reasons:
            reason, where = reasons[key]
            result.skipped.append(
                {"id": f.check_id, "resource": f.resource, "file": f.file, "reason": f"{reason} (skipped in {where})"}
            )
            result.failed -= 1
        else:
            kept.append(f)
    result.findings = kept


def _relative(path: str, scan_prefix: str) -> str:
    if path.startswith(scan_prefix):
        return path[len(scan_prefix) :]
    return path.lstrip("/")


def _parse_reports(reports: list[dict[str, Any]], scan_prefix: str) -> CheckovResult:
    out = CheckovResult()
    for report in reports:
        summary = report.get("summary") or {}
        out.version = str(summary.get("checkov_version", out.version))
        results = report.get("results") or {}
        for item in results.get("passed_checks") or []:
            out.passed += 1
            _count(out, item, "PASSED", scan_prefix)
        for item in results.get("failed_checks") or []:
            out.failed += 1
            _count(out, item, "FAILED", scan_prefix)
            file = _relative(str(item.get("file_abs_path") or item.get("file_path", "")), scan_prefix)
            lines = item.get("file_line_range") or [0]
            out.findings.append(
                Finding(
                    "checkov",
                    str(item.get("check_id")),
                    str(item.get("check_name", "")),
                    resource=str(item.get("resource", "")),
                    file=file,
                    line=int(lines[0] or 0),
                    detail=str(item.get("guideline") or ""),
                )
            )
        for item in results.get("skipped_checks") or []:
            file = _relative(str(item.get("file_abs_path") or item.get("file_path", "")), scan_prefix)
            reason = str((item.get("check_result") or {}).get("suppress_comment") or "").strip()
            check_id = str(item.get("check_id"))
            lines = item.get("file_line_range") or [0]
            entry = {"id": check_id, "resource": str(item.get("resource", "")), "file": file, "reason": reason}
            out.skipped.append(entry)
            if check_id.startswith(CUSTOM_PREFIXES):
                out.findings.append(
                    Finding(
                        "checkov",
                        check_id,
                        "a smgitops policy check may not be skipped",
                        resource=entry["resource"],
                        file=file,
                        line=int(lines[0] or 0),
                        detail=reason,
                    )
                )
            elif reason.lower() in _NO_REASON:
                out.findings.append(
                    Finding(
                        "checkov",
                        check_id,
                        "skipped without a reason",
                        resource=entry["resource"],
                        file=file,
                        line=int(lines[0] or 0),
                        detail="write it inline: #checkov:skip=CHECK_ID:why this does not apply",
                    )
                )
        for path in results.get("parsing_errors") or []:
            out.findings.append(
                Finding(
                    "checkov",
                    "PARSE",
                    "checkov could not parse the file",
                    file=_relative(str(path), scan_prefix),
                    detail="nothing in it was checked",
                )
            )
    return out


def _count(out: CheckovResult, item: Mapping[str, Any], verdict: str, scan_prefix: str) -> None:
    check_id = str(item.get("check_id"))
    file = _relative(str(item.get("file_abs_path") or item.get("file_path", "")), scan_prefix)
    out.results.append({"id": check_id, "resource": str(item.get("resource", "")), "file": file, "result": verdict})
    if check_id.startswith(CUSTOM_PREFIXES):
        out.evaluated[check_id] = out.evaluated.get(check_id, 0) + 1


# ---------------------------------------------------------------------------------------------------------------
# The release policy
# ---------------------------------------------------------------------------------------------------------------


def _served_digests(release: Any) -> dict[str, int]:
    """Artifact digest -> total weight of the variants serving it."""
    out: dict[str, int] = {}
    for variant in release.variants:
        model = release.models.get(variant.model)
        if model is not None:
            out[model.artifact_sha256] = out.get(model.artifact_sha256, 0) + int(variant.weight)
    return out


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _describe_digest(release: Any, digest: str) -> str:
    names = [f"{v.name}={v.model}" for v in release.variants if release.models[v.model].artifact_sha256 == digest]
    return ", ".join(names) + f"@{digest[:12]}"


def promotion(release: Any, base: Any | None, evidence: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Per digest the release gives traffic, the promotion status RP005 judges (``[]`` for an environment not
    promoted from another).

    Each entry: ``digest``, ``models``, ``variants``, ``weight``, ``source`` (the environment promoted from),
    ``status`` (``passed``, ``served`` -- the base release already served it with traffic --, ``override`` or
    ``missing``), ``override`` (the reason, or None) and ``canary`` (the newest passed canary of the digest in the
    source environment, :func:`smgitops.record.last_canary`, or None).
    """
    from .record import last_canary

    source = PROMOTED_FROM.get(str(release.environment))
    if source is None:
        return []
    served_before = {d for d, w in _served_digests(base).items() if w > 0} if base is not None else set()
    out: list[dict[str, Any]] = []
    for digest, weight in _served_digests(release).items():
        if weight <= 0:
            continue
        models = sorted({v.model for v in release.variants if release.models[v.model].artifact_sha256 == digest})
        overrides = [release.models[m].promotion_override for m in models if release.models[m].promotion_override]
        canary = last_canary(evidence or [], digest)
        if canary is not None:
            status = "passed"
        elif digest in served_before:
            status = "served"
        elif overrides:
            status = "override"
        else:
            status = "missing"
        out.append(
            {
                "digest": digest,
                "models": models,
                "variants": [v.name for v in release.variants if v.model in models and int(v.weight) > 0],
                "weight": weight,
                "source": source,
                "status": status,
                "override": overrides[0] if overrides else None,
                "canary": canary,
            }
        )
    return out


def release_findings(
    release: Any,
    base: Any | None,
    *,
    latest_teardown: str = LATEST_TEARDOWN,
    evidence: Sequence[Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """The release policy (module docstring) for ``release`` relative to ``base`` (None: no base release).

    ``evidence``: the canary evidence of the environment ``release`` is promoted from
    (:func:`smgitops.record.read_evidence`); None counts as none (RP005 fails closed)."""
    file = str(release.path)
    findings: list[Finding] = []
    for entry in promotion(release, base, evidence):
        if entry["status"] != "missing":
            continue
        digest, source = entry["digest"], entry["source"]
        models = ", ".join(entry["models"])
        findings.append(
            Finding(
                "release",
                "RP005",
                f"digest {digest} never passed a canary in {source}",
                resource=", ".join(f"{v}={models}@{digest[:12]}" for v in entry["variants"]),
                file=file,
                detail=f"{entry['weight']} % of {release.environment}'s traffic to {models} @ {digest}, which has "
                f"no passed canary in {source} (no smgitops/canary/{source}/* evidence with a good tag serves it): "
                f"deploy it to {source} first, or set models.{entry['models'][0]}.promotion_override.reason",
            )
        )
    cap = int(release.canary.max_initial_weight)

    if not release.variants or all(int(v.weight) <= 0 for v in release.variants):
        findings.append(
            Finding(
                "release",
                "RP004",
                "a release never removes all variants",
                file=file,
                detail="at least one variant must keep weight > 0",
            )
        )

    try:
        late = _minutes(release.teardown.at) > _minutes(latest_teardown)
    except ValueError:
        late = True
    if late:
        findings.append(
            Finding(
                "release",
                "RP003",
                f"teardown.at is later than {latest_teardown}",
                file=file,
                detail=f"teardown.at = {release.teardown.at} ({release.teardown.timezone}); "
                f"endpoints must be gone before the night",
            )
        )

    if base is not None:
        known = set(_served_digests(base))
        new_weight = 0
        new_models: list[str] = []
        for variant in release.variants:
            model = release.models.get(variant.model)
            if model is None or int(variant.weight) <= 0 or model.artifact_sha256 in known:
                continue
            new_weight += int(variant.weight)
            new_models.append(f"{variant.name}={variant.model}@{model.artifact_sha256[:12]} ({variant.weight} %)")
        if new_weight > cap:
            findings.append(
                Finding(
                    "release",
                    "RP001",
                    "models never served before get more than the canary cap",
                    resource=", ".join(new_models),
                    file=file,
                    detail=f"{new_weight} % to new models; canary.max_initial_weight is {cap} %",
                )
            )
        if new_models:
            before = _served_digests(base)
            for digest, weight in _served_digests(release).items():
                if digest in before and weight > before[digest]:
                    findings.append(
                        Finding(
                            "release",
                            "RP002",
                            "a known model gains weight in the same PR that adds a canary",
                            resource=_describe_digest(release, digest),
                            file=file,
                            detail=f"{before[digest]} % -> {weight} %; promote in a separate pull request",
                        )
                    )
    return findings


def _lenient_release(text: str, path: Path) -> Any:
    """A base release as merged earlier: validated then; only its shape is needed now."""
    from .release import load_release_text, release_from_mapping

    try:
        return load_release_text(text, path)
    except InvalidRelease:
        doc = yaml.safe_load(text)
        try:
            return release_from_mapping(doc, path)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{path}: the base release cannot be read ({exc!r})") from exc


def base_from_rev(release_path: Path, rev: str, *, runner: Runner = subprocess.run) -> Any | None:
    """The release file as it is at git revision ``rev`` (None when the file does not exist there)."""
    git = Git.for_path(release_path, why="needed for --base-rev", runner=runner)
    if not git.is_commit(rev):
        raise UserError(f"--base-rev {rev}: no such commit in {git.repo}")
    text = git.file_at(rev, git.relpath(release_path))
    if text is None:
        return None  # a new release file: nothing to compare with
    return _lenient_release(text, release_path)


def promotion_evidence(release: Any) -> list[dict[str, Any]] | None:
    """The canary evidence of the environment ``release`` is promoted from, read from the release file's git
    repository (None when the environment is not promoted from another). Outside a git repository: exit 2."""
    from .record import read_evidence

    source = PROMOTED_FROM.get(str(release.environment))
    if source is None:
        return None
    try:
        git = Git.for_path(Path(release.path))
    except UserError as exc:
        raise UserError(
            f"{release.path}: the release policy RP005 reads {source}'s canary evidence (git tags smgitops/canary/"
            f"{source}/*) from the release's repository, and this file is not in one"
        ) from exc
    return read_evidence(git, source)


def show_saved_plan(release: Any, plan_file: Path, ctx: Context) -> dict[str, Any]:
    """``terraform show -json`` of a plan ``smgitops plan`` saved, in the environment's own working copy."""
    if not plan_file.is_file():
        raise UserError(f"{plan_file}: no such saved plan (run `smgitops plan {release.path}` first)")
    ws = ctx.bound_to(release).workspace(release)
    with ws.locked():
        shown: dict[str, Any] = ws.terraform.show_json(plan_file.resolve())
    return shown


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def build_report(
    release_path: str | None,
    checkov: CheckovResult | None,
    findings: list[Finding],
    base: str | None,
    promoted: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "promotion": promoted or [],
        "ok": not findings,
        "release": release_path,
        "base": base,
        "findings": [asdict(f) | {"where": f.where} for f in findings],
        "checkov": None
        if checkov is None
        else {
            "version": checkov.version,
            "targets": checkov.targets,
            "passed": checkov.passed,
            "failed": checkov.failed,
            "skipped": checkov.skipped,
            "custom_checks": checkov.evaluated,
            "seconds": round(checkov.seconds, 2),
        },
        "release_rules": list(RELEASE_RULES) if release_path else [],
    }


def print_report(report: Mapping[str, Any], file: Any = None) -> None:
    from rich.table import Table

    from .console import make_console

    console = make_console(file)
    ck = report.get("checkov")
    if ck:
        console.print(
            f"checkov {ck['version']}: {ck['passed']} passed, {ck['failed']} failed, "
            f"{len(ck['skipped'])} skipped with reasons ({', '.join(ck['targets'])}; {ck['seconds']:.1f} s)"
        )
    findings = report["findings"]
    if findings:
        table = Table(title=f"policy: {len(findings)} finding{'s' if len(findings) != 1 else ''}")
        for col in ("source", "check", "resource", "where", "finding"):
            table.add_column(col, overflow="fold")
        for f in findings:
            text = f["title"] + (f" — {f['detail']}" if f["detail"] else "")
            table.add_row(f["source"], f["check_id"], f["resource"], f["where"], text)
        console.print(table)
    else:
        console.print("policy: ok, no findings")


# ---------------------------------------------------------------------------------------------------------------
# The report of ``smgitops policy``
# ---------------------------------------------------------------------------------------------------------------


def policy_report(
    release_path: Path | None,
    ctx: Context,
    *,
    root: Path | None = None,
    plan_json: Path | None = None,
    plan_file: Path | None = None,
    base_release: Path | None = None,
    base_rev: str | None = None,
    release_only: bool = False,
) -> dict[str, Any]:
    """The report of ``smgitops policy`` (:func:`build_report`): checkov on the roots under ``root`` (default: the
    release's repository, else the working directory) and on the plan (``plan_json``, or the saved ``plan_file``
    shown as JSON), unless ``release_only``; then, with a release, the release policy against its base (the file
    ``base_release``, or the release's copy at ``base_rev``) and the promotion evidence."""
    from .release import load_release

    release = load_release(release_path) if release_path is not None else None
    root = (root or (release.repo_root if release is not None else Path.cwd())).resolve()

    findings: list[Finding] = []
    checkov_result: CheckovResult | None = None
    if not release_only:
        policies_dir = root / "policies"
        if not policies_dir.is_dir():
            raise UserError(f"{policies_dir}: no policies/ directory in the repository root")
        with tempfile.TemporaryDirectory(prefix="smgitops-plan-") as tmp:
            if plan_file is not None:
                plan_json = Path(tmp) / "plan.json"
                plan_json.write_text(json.dumps(show_saved_plan(release, plan_file, ctx)), encoding="utf-8")
            checkov_result = run_checkov(
                {name: root / name for name in ROOTS}, plan_json=plan_json, policies_dir=policies_dir
            )
        findings += checkov_result.findings

    base_label: str | None = None
    promoted: list[dict[str, Any]] = []
    if release_path is not None and release is not None:
        base: Any | None = None
        if base_release is not None:
            if not base_release.is_file():
                raise UserError(f"{base_release}: no such base release file")
            base = _lenient_release(base_release.read_text(encoding="utf-8"), base_release)
            base_label = str(base_release)
        elif base_rev is not None:
            base = base_from_rev(release_path, base_rev)
            base_label = f"{base_rev}:{release_path}" + ("" if base is not None else " (absent: new release)")
        evidence = promotion_evidence(release)
        findings += release_findings(release, base, evidence=evidence)
        promoted = promotion(release, base, evidence)

    return build_report(str(release_path) if release_path else None, checkov_result, findings, base_label, promoted)
