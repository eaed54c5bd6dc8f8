"""A local GitHub Actions runner for the workflows of ``.github/workflows``.

A small runner reads each workflow with PyYAML and runs its jobs' ``run:`` steps in order with bash, the way
GitHub's runner does (``shell: bash`` means ``bash --noprofile --norc -eo pipefail``), with the workflow's, job's and
step's ``env``, ``${{ ... }}`` expressions resolved by a strict evaluator (an unknown context, property or function
fails the test), ``GITHUB_OUTPUT``/``GITHUB_ENV``/``GITHUB_PATH``/``GITHUB_STEP_SUMMARY`` honoured, job outputs,
``needs``, matrices (including ``fromJSON`` of a previous job's output) and ``if:`` conditions with the status
functions. Each ``uses:`` step is replaced by its local equivalent:

* ``actions/checkout`` -> a fresh clone of the scratch repository's ``origin`` at the event's commit;
* ``actions/setup-python`` -> a bare Python of the set-up's interpreter (standard library and nothing else);
* ``actions/cache`` -> always a miss (its key and paths checked); ``actions/create-github-app-token`` -> the token of
  the configured :class:`GitHubApp`; ``actions/upload-artifact``/``download-artifact`` -> a folder per workflow run;
* ``hashicorp/setup-terraform`` -> the ``terraform`` already on ``PATH``;
* ``aws-actions/configure-aws-credentials`` -> the emulator's endpoint, CA bundle and dummy credentials (without
  it a step has no AWS access at all), recording which role the step asked for;

and the one set-up command, ``make setup``, by links to the checkout's already built environments. Steps get a
minimal environment (no git identity, no AWS settings) like a fresh runner. The GitHub REST API is a local fake
(``tests/support/fake_github.py``) and ``gh`` a small client of it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iam_judge import role_access_key

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def load_workflow(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc and "on" not in doc:  # YAML 1.1 reads the key `on` as the boolean true
        doc["on"] = doc.pop(True)
    return dict(doc)


# ---------------------------------------------------------------------------------------------------------------
# Expressions: a strict evaluator for the subset the workflows use
# ---------------------------------------------------------------------------------------------------------------


class ExpressionError(AssertionError):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>().,\[\]*])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse expression {text!r} at {text[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _num(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip()) if v.strip() else 0.0
        except ValueError:
            return math.nan
    return math.nan


def truthy(v: Any) -> bool:
    if v is None or v is False or v == "":
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0 and not math.isnan(v)
    return True


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b) or (a is None and b is None):
        return bool(a == b)
    return _num(a) == _num(b)


def to_str(v: Any) -> str:
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


class Outputs(dict[str, Any]):
    """A step's or a job's outputs. A name that was never set evaluates to null (``''``), as on GitHub: a step
    that was skipped or failed before writing ``GITHUB_OUTPUT``, a job that was skipped. ``declared``, for a job's
    outputs, names what the job declares: any other name is a typo (actionlint reports it too) and fails."""

    def __init__(self, values: Mapping[str, Any] | None = None, declared: Iterable[str] | None = None) -> None:
        super().__init__(values or {})
        self.declared = None if declared is None else frozenset(declared)

    def lookup(self, key: Any, path: list[str]) -> Any:
        if key in self:
            return self[key]
        if self.declared is not None and key not in self.declared:
            raise ExpressionError(f"unknown property {'.'.join(path)!r} (the job declares {sorted(self.declared)})")
        return None


class Evaluator:
    """``${{ }}`` expressions over the given contexts; ``status`` answers success()/failure(); ``hashFiles()``
    hashes files of ``workspace`` (every pattern must match a file: a misspelled path is an error, where GitHub
    would silently hash nothing)."""

    def __init__(self, contexts: Mapping[str, Any], status: Mapping[str, bool], workspace: Path | None = None) -> None:
        self.contexts = contexts
        self.status = status
        self.workspace = workspace

    def evaluate(self, text: str) -> Any:
        self.toks = _tokens(text)
        self.i = 0
        value = self._or()
        if self.i != len(self.toks):
            raise ExpressionError(f"unexpected {self.toks[self.i][1]!r} in {text!r}")
        return value

    def _peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def _take(self, want: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise ExpressionError("unexpected end of expression")
        tok = self.toks[self.i]
        if want is not None and tok[1] != want:
            raise ExpressionError(f"expected {want!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek() == "&&":
            self._take()
            right = self._cmp()
            left = right if truthy(left) else left
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self._take()[1]
            right = self._unary()
            if op == "==":
                left = _equal(left, right)
            elif op == "!=":
                left = not _equal(left, right)
            else:
                a, b = _num(left), _num(right)
                left = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._postfix()

    def _postfix(self) -> Any:
        kind, text = self._take()
        if text == "(":
            value = self._or()
            self._take(")")
        elif kind == "num":
            value = float(text) if "." in text else int(text)
        elif kind == "str":
            value = text[1:-1].replace("''", "'")
        elif kind == "name" and text in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[text]
        elif kind == "name" and self._peek() == "(":
            return self._call(text)
        elif kind == "name":
            if text not in self.contexts:
                raise ExpressionError(f"unknown context {text!r}")
            value = self.contexts[text]
            path = [text]
            while self._peek() in (".", "["):
                if self._take()[1] == ".":
                    key = self._take()[1]
                else:
                    key = self._or()
                    self._take("]")
                path.append(str(key))
                value = self._index(value, key, path)
            return value
        else:
            raise ExpressionError(f"unexpected {text!r}")
        return value

    @staticmethod
    def _index(value: Any, key: Any, path: list[str]) -> Any:
        if isinstance(value, Outputs):
            return value.lookup(key, path)
        if isinstance(value, Mapping):
            if key not in value:
                raise ExpressionError(f"unknown property {'.'.join(path)!r}")
            return value[key]
        if isinstance(value, list) and isinstance(key, (int, float)):
            return value[int(key)]
        raise ExpressionError(f"cannot index {'.'.join(path[:-1])!r} ({type(value).__name__}) with {key!r}")

    def _call(self, name: str) -> Any:
        self._take("(")
        args: list[Any] = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        if name in STATUS_FUNCTIONS:
            if args:
                raise ExpressionError(f"{name}() takes no arguments")
            return self.status[name]
        if name == "fromJSON":
            return json.loads(to_str(args[0]))
        if name == "toJSON":
            return json.dumps(args[0], indent=2)
        if name == "contains":
            hay, needle = args
            if isinstance(hay, list):
                return any(_equal(h, needle) for h in hay)
            return to_str(needle).lower() in to_str(hay).lower()
        if name == "startsWith":
            return to_str(args[0]).lower().startswith(to_str(args[1]).lower())
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: to_str(args[1 + int(m.group(1))]), to_str(args[0]))
        if name == "hashFiles":
            return self._hash_files([to_str(a) for a in args])
        raise ExpressionError(f"unknown function {name}()")

    def _hash_files(self, patterns: list[str]) -> str:
        """GitHub's hashFiles: the sha256 of the files' sha256 digests, in path order, relative to the workspace."""
        if self.workspace is None:
            raise ExpressionError("hashFiles() outside a job's workspace")
        files: set[Path] = set()
        for pattern in patterns:
            matched = {p for p in self.workspace.glob(pattern) if p.is_file()}
            if not matched:
                raise ExpressionError(f"hashFiles({pattern!r}) matches no file of the checkout")
            files |= matched
        outer = hashlib.sha256()
        for p in sorted(files):
            outer.update(hashlib.sha256(p.read_bytes()).digest())
        return outer.hexdigest()


_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def interpolate(value: Any, ev: Evaluator) -> Any:
    """Resolve ``${{ }}`` in a string (a whole-string expression keeps its type); recurse into lists and dicts."""
    if isinstance(value, str):
        whole = _EXPR.fullmatch(value.strip())
        if whole:
            return ev.evaluate(whole.group(1))
        return _EXPR.sub(lambda m: to_str(ev.evaluate(m.group(1))), value)
    if isinstance(value, list):
        return [interpolate(v, ev) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, ev) for k, v in value.items()}
    return value


def condition(text: Any, ev: Evaluator) -> bool:
    """An ``if:``: with or without ``${{ }}``; success() is implied when no status function is used."""
    if text is None:
        return bool(ev.status["success"])
    if isinstance(text, bool):
        return text
    expr = str(text).strip()
    m = _EXPR.fullmatch(expr)
    if m:
        expr = m.group(1)
    if not any(re.search(rf"\b{f}\s*\(", expr) for f in STATUS_FUNCTIONS):
        expr = f"success() && ({expr})"
    return truthy(ev.evaluate(expr))


# ---------------------------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class StepResult:
    name: str
    id: str | None
    outcome: str  # success | failure | skipped
    output: str = ""


@dataclass
class JobResult:
    job: str
    matrix: dict[str, Any]
    result: str  # success | failure | skipped
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)
    environment: str | None = None
    summary: str = ""
    temp: Path | None = None  # the job's RUNNER_TEMP

    def step(self, name_or_id: str) -> StepResult:
        for s in self.steps:
            if s.id == name_or_id or s.name == name_or_id:
                return s
        raise KeyError(name_or_id)


@dataclass
class Event:
    name: str  # pull_request | push | schedule | workflow_dispatch
    payload: dict[str, Any]
    sha: str
    ref: str
    inputs: dict[str, Any] = field(default_factory=dict)
    fork: bool = False  # a pull request from a fork: no OIDC token, every variable '' (GitHub passes none)


@dataclass(frozen=True)
class GitHubApp:
    """A GitHub App installed on the repository: actions/create-github-app-token mints ``token`` for it."""

    client_id: str
    private_key: str
    slug: str
    token: str


class Runner:
    def __init__(
        self,
        *,
        origin: Path,
        tmp: Path,
        aws_env: Mapping[str, str],
        variables: Mapping[str, str],
        environment_variables: Mapping[str, Mapping[str, str]],
        api_url: str,
        repository: str,
        token: str,
        iam_log: Any = None,
        secrets: Mapping[str, str] | None = None,
        app: GitHubApp | None = None,
    ) -> None:
        self.origin, self.tmp = origin, tmp
        self.secrets = dict(secrets or {})  # repository secrets by name ('' = not set); GITHUB_TOKEN is added
        self.app = app
        # The set-up's failure (say PyPI unreachable): `make setup` fails with this message instead of linking.
        self.setup_fault: str | None = None
        # The emulator's IAM request log (an AdminClient), read after every step: tests/iam_judge.py judges it.
        self.iam_log = iam_log
        self.iam_records: list[dict[str, Any]] = []
        self.role_keys: dict[str, str] = {}  # access key id -> the role it stands for
        self._iam_seq = 0
        self._workflow = ""
        self.aws_env = dict(aws_env)
        self.variables = dict(variables)
        self.environment_variables = environment_variables
        self.api_url, self.repository, self.token = api_url, repository, token
        self.runs = 0
        self.shims = tmp / "shims"
        self._make_shims()

    def _make_shims(self) -> None:
        # actions/setup-python installs a bare interpreter: the standard library and pip, none of the project's
        # dependencies. A venv of the set-up's own base interpreter without pip is that Python (the base
        # interpreter itself may have packages of its own here).
        bare = self.shims / "python"
        base = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", "import sys; print(sys._base_executable)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run([base, "-m", "venv", "--without-pip", str(bare)], check=True)
        self.python_version = subprocess.run(
            [str(bare / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        gh_bin = self.shims / "gh"
        gh_bin.mkdir(parents=True, exist_ok=True)
        gh = gh_bin / "gh"
        gh.write_text(f"#!{ROOT / '.venv' / 'bin' / 'python'}\n" + GH_CLIENT)
        gh.chmod(0o755)

    def base_env(self, workspace: Path, home: Path) -> dict[str, str]:
        system_path = ":".join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(":") if ".venv" not in p and p)
        return {
            "PATH": f"{self.shims / 'gh'}:{system_path}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.tmp / "tmp"),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_API_URL": self.api_url,
            "GITHUB_SERVER_URL": "https://github.invalid",
            "GITHUB_RUN_ID": str(1000 + self.runs),
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(workspace.parent / "runner-temp"),
            "GIT_CONFIG_NOSYSTEM": "1",
            # the suite's lock timeout (tests/conftest.py), as a repository variable would set it for every job
            **{k: os.environ[k] for k in ("SMGITOPS_LOCK_TIMEOUT",) if k in os.environ},
        }

    def run(self, workflow: str | Path, event: Event) -> dict[str, list[JobResult]]:
        self.runs += 1
        self._workflow = Path(workflow).name
        doc = load_workflow(WORKFLOWS / workflow)  # an absolute path stays itself
        results: dict[str, list[JobResult]] = {}
        event_file = self.tmp / f"event-{self.runs}.json"
        event_file.write_text(json.dumps(event.payload))
        pending = list(doc["jobs"])
        while pending:
            ready = [j for j in pending if all(n in results for n in _needs(doc["jobs"][j]))]
            assert ready, f"{workflow}: unsatisfiable needs among {pending}"
            for job_id in ready:
                results[job_id] = self._run_job(doc, job_id, event, event_file, results)
                pending.remove(job_id)
        return results

    def _contexts(
        self, doc: Mapping[str, Any], event: Event, results: Mapping[str, list[JobResult]], job: Mapping[str, Any]
    ) -> dict[str, Any]:
        declared = (
            ((doc["on"].get("workflow_dispatch") or {}).get("inputs") or {}) if isinstance(doc["on"], dict) else {}
        )
        # a dispatched run sees every declared input, defaults applied; any other event sees them null
        inputs = {
            name: event.inputs.get(name, (spec or {}).get("default")) if event.name == "workflow_dispatch" else None
            for name, spec in declared.items()
        }
        needs: dict[str, Any] = {}
        for n in _needs(job):
            runs = results[n]
            outputs: dict[str, str] = {}
            for r in runs:
                outputs.update(r.outputs)
            result = (
                "success"
                if all(r.result == "success" for r in runs)
                else ("skipped" if all(r.result == "skipped" for r in runs) else "failure")
            )
            needs[n] = {"outputs": Outputs(outputs, declared=doc["jobs"][n].get("outputs") or {}), "result": result}
        return {
            "github": {
                "event": event.payload,
                "event_name": event.name,
                "sha": event.sha,
                "ref": event.ref,
                "repository": self.repository,
                "token": self.token,
                "run_id": str(1000 + self.runs),
                "server_url": "https://github.invalid",
                "api_url": self.api_url,
            },
            "inputs": inputs,
            "vars": dict.fromkeys(self.variables, "") if event.fork else dict(self.variables),
            # a fork's pull request gets no secret but GITHUB_TOKEN (read-only there)
            "secrets": {
                "GITHUB_TOKEN": self.token,
                **(dict.fromkeys(self.secrets, "") if event.fork else self.secrets),
            },
            "needs": needs,
            "env": dict(doc.get("env") or {}),
        }

    def _run_job(
        self,
        doc: Mapping[str, Any],
        job_id: str,
        event: Event,
        event_file: Path,
        results: Mapping[str, list[JobResult]],
    ) -> list[JobResult]:
        job = doc["jobs"][job_id]
        ctx = self._contexts(doc, event, results, job)
        needs_ok = all(ctx["needs"][n]["result"] == "success" for n in ctx["needs"])
        status = {"success": needs_ok, "failure": not needs_ok, "always": True, "cancelled": False}
        if not condition(job.get("if"), Evaluator({**ctx, "matrix": {}}, status)):
            return [JobResult(job_id, {}, "skipped")]
        combos = self._matrix(job, Evaluator(ctx, status))
        out = []
        for combo in combos:
            out.append(self._run_combo(doc, job_id, job, combo, ctx, event, event_file))
        return out

    @staticmethod
    def _matrix(job: Mapping[str, Any], ev: Evaluator) -> list[dict[str, Any]]:
        strategy = job.get("strategy") or {}
        matrix = interpolate(strategy.get("matrix") or {}, ev)
        axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
        combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
        for extra in matrix.get("include") or []:
            combos.append(dict(extra))
        return combos or [{}]

    def _run_combo(
        self,
        doc: Mapping[str, Any],
        job_id: str,
        job: Mapping[str, Any],
        combo: dict[str, Any],
        ctx: dict[str, Any],
        event: Event,
        event_file: Path,
    ) -> JobResult:
        self.runs += 0
        work = self.tmp / f"run{self.runs}-{job_id}-{'-'.join(map(str, combo.values())) or 'job'}"
        workspace, home = work / "workspace", work / "home"
        for d in (workspace, home, work / "runner-temp", self.tmp / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        status = {"success": True, "failure": False, "always": True, "cancelled": False}
        base_ctx = {**ctx, "matrix": combo, "steps": {}, "runner": {"temp": str(work / "runner-temp"), "os": "Linux"}}
        ev = Evaluator(base_ctx, status, workspace)
        environment = interpolate(job.get("environment"), ev)
        if isinstance(environment, dict):
            environment = environment.get("name")
        if environment and not event.fork:
            base_ctx["vars"] = {**self.variables, **self.environment_variables.get(str(environment), {})}
        interpolate(job.get("concurrency"), ev)  # strictness: its expressions must resolve
        result = JobResult(job_id, combo, "success", environment=environment, temp=work / "runner-temp")
        env: dict[str, str] = {
            **self.base_env(workspace, home),
            "GITHUB_EVENT_NAME": event.name,
            "GITHUB_EVENT_PATH": str(event_file),
            "GITHUB_SHA": event.sha,
            "GITHUB_REF": event.ref,
        }
        if (job.get("permissions") or {}).get("id-token") == "write" and not event.fork:
            env.update(ACTIONS_ID_TOKEN_REQUEST_URL=f"{self.api_url}/oidc-token", ACTIONS_ID_TOKEN_REQUEST_TOKEN="x")
        job_env = {
            k: to_str(v) for k, v in interpolate({**(doc.get("env") or {}), **(job.get("env") or {})}, ev).items()
        }
        env.update(job_env)
        base_ctx["env"] = dict(job_env)
        shell = ((job.get("defaults") or doc.get("defaults") or {}).get("run") or {}).get("shell")
        extra_path: list[str] = []
        for index, step in enumerate(job.get("steps", [])):
            name = str(step.get("name") or step.get("uses") or step.get("run", "")[:40])
            sid = step.get("id")
            step_ev = Evaluator(base_ctx, status, workspace)
            if not condition(step.get("if"), step_ev):
                result.steps.append(StepResult(name, sid, "skipped"))
                if sid:
                    base_ctx["steps"][sid] = {"outputs": Outputs(), "outcome": "skipped", "conclusion": "skipped"}
                continue
            step_env = {k: to_str(v) for k, v in interpolate(step.get("env") or {}, step_ev).items()}
            files = {
                k: work / f"{k.lower()}-{index}"
                for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
            }
            for f in files.values():
                f.write_text("")
            full_env = {**env, **step_env, **{k: str(v) for k, v in files.items()}}
            full_env["PATH"] = ":".join([*reversed(extra_path), full_env["PATH"]])
            if "uses" in step:
                outcome, output = self._uses(
                    step, step_ev, workspace, event, env, result, extra_path, files["GITHUB_OUTPUT"]
                )
            else:
                script = interpolate(str(step["run"]), step_ev)
                outcome, output = self._bash(script, shell, full_env, workspace / step.get("working-directory", "."))
            self._collect_iam(job_id, combo, name)
            outputs = _parse_kv(files["GITHUB_OUTPUT"].read_text())
            env.update(_parse_kv(files["GITHUB_ENV"].read_text()))
            extra_path += [p for p in files["GITHUB_PATH"].read_text().splitlines() if p]
            result.summary += files["GITHUB_STEP_SUMMARY"].read_text()
            result.steps.append(StepResult(name, sid, outcome, output))
            continued = outcome == "failure" and bool(step.get("continue-on-error"))
            if sid:  # a step that failed with continue-on-error: outcome failure, conclusion success
                base_ctx["steps"][sid] = {
                    "outputs": Outputs(outputs),
                    "outcome": outcome,
                    "conclusion": "success" if continued else outcome,
                }
            if outcome == "failure" and not continued:
                status.update(success=False, failure=True)
                result.result = "failure"
        out_ev = Evaluator(base_ctx, status, workspace)
        result.outputs = {k: to_str(interpolate(v, out_ev)) for k, v in (job.get("outputs") or {}).items()}
        return result

    def _collect_iam(self, job_id: str, combo: Mapping[str, Any], step: str) -> None:
        if self.iam_log is None:
            return
        entries = self.iam_log.iam_log(since=self._iam_seq)
        self._iam_seq += len(entries)
        matrix = "-".join(map(str, combo.values()))
        where = f"{self._workflow} run {self.runs} / {job_id}{f' ({matrix})' if matrix else ''} / {step}"
        self.iam_records.append({"where": where, "entries": entries})

    def _bash(self, script: str, shell: str | None, env: Mapping[str, str], cwd: Path) -> tuple[str, str]:
        path = Path(env["RUNNER_TEMP"]) / "step.sh"
        path.write_text(script)
        if script.strip() == "make setup":
            if self.setup_fault:
                return "failure", f"setup: error: {self.setup_fault}"
            # the one set-up command: the checkout's environments are already built
            for name in (".venv", ".venv-tools"):
                link = cwd / name
                if not link.exists():
                    link.symlink_to(ROOT / name)
            return "success", "set-up replaced by the checkout's environments"
        argv = (
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)]
            if shell == "bash"
            else ["bash", "-e", str(path)]
        )
        proc = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=1200, check=False)
        return ("success" if proc.returncode == 0 else "failure"), proc.stdout + proc.stderr

    def _uses(
        self,
        step: Mapping[str, Any],
        ev: Evaluator,
        workspace: Path,
        event: Event,
        env: dict[str, str],
        result: JobResult,
        extra_path: list[str],
        outputs_file: Path,
    ) -> tuple[str, str]:
        action = str(step["uses"]).split("@")[0]

        def set_outputs(**values: str) -> None:
            with outputs_file.open("a") as fh:
                fh.writelines(f"{k.replace('_', '-')}={v}\n" for k, v in values.items())

        with_ = {k: to_str(v) for k, v in interpolate(step.get("with") or {}, ev).items()}
        if action == "actions/checkout":
            if not (workspace / ".git").exists():
                run_git(workspace.parent, "clone", "-q", str(self.origin), str(workspace))
            run_git(workspace, "checkout", "-q", "--detach", event.sha)
            return "success", f"checked out {event.sha}"
        if action == "actions/setup-python":
            assert with_.get("python-version") == "3.11"
            assert self.python_version.startswith("3.11."), self.python_version
            extra_path.append(str(self.shims / "python" / "bin"))
            set_outputs(python_version=self.python_version, python_path=str(self.shims / "python" / "bin" / "python"))
            return "success", f"bare python {self.python_version} (no project dependencies)"
        if action == "actions/cache":
            # Never a hit here: `make setup` links the built environments. The key must resolve (hashFiles of
            # files the checkout has) and name the Python it was built with; the paths must be the set-up's.
            key, paths = with_.get("key", ""), with_.get("path", "").split()
            assert self.python_version in key, f"cache key {key!r} does not name the Python"
            assert paths and all(not Path(p).is_absolute() and ".." not in p for p in paths), paths
            set_outputs(cache_hit="false")
            return "success", f"cache miss for {key}"
        if action == "actions/create-github-app-token":
            client_id, key = with_.get("client-id", ""), with_.get("private-key", "")
            if not client_id or not key:
                return "failure", "Error: [@octokit/auth-app] appId or clientId option is required"
            if self.app is None or (client_id, key) != (self.app.client_id, self.app.private_key):
                return "failure", "Error: A JSON web token could not be decoded (401)"
            perms = {k: v for k, v in with_.items() if k.startswith("permission-")}
            assert perms == {"permission-contents": "write", "permission-pull-requests": "write"}, perms
            set_outputs(token=self.app.token, app_slug=self.app.slug, installation_id="4242")
            return "success", f"minted an installation token of {self.app.slug}"
        if action == "hashicorp/setup-terraform":
            assert shutil.which("terraform"), "terraform must be on PATH"
            return "success", "terraform on PATH"
        if action == "aws-actions/configure-aws-credentials":
            if not env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
                return "failure", "Credentials could not be loaded: no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL)"
            role, region = with_.get("role-to-assume", ""), with_.get("aws-region", "")
            assert role.startswith("arn:aws:iam::"), f"role-to-assume resolved to {role!r}"
            assert region, "aws-region resolved to nothing"
            result.roles.append(role)
            env.update(self.aws_env)
            env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
            key = role_access_key(role)  # one dummy key per role: the emulator's request log tells them apart
            self.role_keys[key] = role
            env.update(AWS_ACCESS_KEY_ID=key)
            return "success", f"assumed {role} (emulator)"
        if action == "actions/upload-artifact":
            return self._upload(with_, workspace)
        if action == "actions/download-artifact":
            return self._download(with_, workspace)
        raise AssertionError(f"no local equivalent for the action {action}")

    # Artifacts live for one workflow run, in a folder of their own: one job's files reach another only this way.
    def artifacts(self) -> Path:
        return self.tmp / f"artifacts-{self.runs}"

    def _upload(self, with_: Mapping[str, str], workspace: Path) -> tuple[str, str]:
        name, source = with_["name"], Path(with_["path"])
        source = source if source.is_absolute() else workspace / source
        assert re.fullmatch(r"[\w.-]+", name), f"artifact name {name!r}"
        target = self.artifacts() / name
        assert not target.exists(), f"artifact {name} uploaded twice in one run"
        if not source.exists() or (source.is_dir() and not any(source.iterdir())):
            if with_.get("if-no-files-found", "warn") == "error":
                return "failure", f"no files at {source}"
            return "success", f"no files at {source}: nothing uploaded"
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)
        return "success", f"uploaded {name}"

    def _download(self, with_: Mapping[str, str], workspace: Path) -> tuple[str, str]:
        dest = Path(with_.get("path") or workspace)
        dest = dest if dest.is_absolute() else workspace / dest
        stored = sorted(self.artifacts().iterdir()) if self.artifacts().is_dir() else []
        if with_.get("name"):
            found = [a for a in stored if a.name == with_["name"]]
            if not found:
                return "failure", f"artifact {with_['name']} not found"
            merge = True
        else:
            found = [a for a in stored if fnmatch.fnmatchcase(a.name, with_.get("pattern") or "*")]
            merge = with_.get("merge-multiple") == "true"
        dest.mkdir(parents=True, exist_ok=True)
        for artifact in found:
            shutil.copytree(artifact, dest if merge else dest / artifact.name, dirs_exist_ok=True)
        return "success", f"downloaded {[a.name for a in found]}"


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _parse_kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            value: list[str] = []
            i += 1
            while lines[i] != delim:
                value.append(lines[i])
                i += 1
            out[key] = "\n".join(value)
        elif "=" in line:
            key, value_s = line.split("=", 1)
            out[key] = value_s
        i += 1
    return out


def run_git(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


# The `gh` the workflows call: `gh pr create` against $GITHUB_API_URL (the fake), with GH_TOKEN.
GH_CLIENT = r"""
import json, os, sys, urllib.request, argparse
p = argparse.ArgumentParser(prog="gh")
p.add_argument("group"); p.add_argument("verb")
p.add_argument("--base", required=True); p.add_argument("--head", required=True)
p.add_argument("--title", required=True); p.add_argument("--body", required=True)
a = p.parse_args()
assert (a.group, a.verb) == ("pr", "create"), "this gh only creates pull requests"
req = urllib.request.Request(
    f"{os.environ['GITHUB_API_URL']}/repos/{os.environ['GITHUB_REPOSITORY']}/pulls",
    data=json.dumps({"base": a.base, "head": a.head, "title": a.title, "body": a.body}).encode(), method="POST",
    headers={"Authorization": f"Bearer {os.environ['GH_TOKEN']}", "Content-Type": "application/json"})
with urllib.request.urlopen(req) as resp:
    print(json.loads(resp.read())["html_url"])
"""


# ---------------------------------------------------------------------------------------------------------------
# Reading results
# ---------------------------------------------------------------------------------------------------------------


def explain(results: Mapping[str, list[JobResult]]) -> str:
    lines = []
    for job, runs in results.items():
        for r in runs:
            lines.append(f"{job} {r.matrix}: {r.result} roles={r.roles}")
            for s in r.steps:
                lines.append(f"  {s.outcome:8} {s.name}")
                if s.outcome == "failure":
                    lines.append("    " + s.output[-3000:].replace("\n", "\n    "))
    return "\n".join(lines)


def only(results: Mapping[str, list[JobResult]], job: str) -> JobResult:
    (run,) = results[job]
    return run
