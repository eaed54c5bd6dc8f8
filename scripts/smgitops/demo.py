"""``smgitops demo [--report FILE] [--keep]``: the whole story, end to end, on a private emulator.

A scratch git repository (the checkout's ``releases/``, ``data/``, ``terraform/`` and ``bootstrap/``) and a private
emulator on a free port, with real Terraform and the real pipeline functions -- nothing is simulated except AWS:

1. bootstrap: ``bootstrap/`` applied to the emulator (state bucket, lock table, artifact bucket, KMS, roles);
2. release v1 (one variant): train, commit, plan (read-only: no state lock, nothing published), release policy;
   the merge publishes and deploys (apply of the reviewed plan → verify → smoke → traffic → canary), recorded good;
3. canary PR: a second model at 10 %, added without a digest -- ``train --write`` trains it and pins its digest, plan
   summary shown (the candidate's archive "published at merge"), published and deployed, the canary passes;
4. promotion: the weights shift to 0/100, deployed and analysed;
5. bad canary: a commit shifting 30 % back to the first variant while the emulator injects errors into it;
   ``deploy`` fails the canary, rolls back to the last good release (no training) and writes a revert branch;
6. the rollback pull request is merged: Git matches what is live, the plan is empty;
7. ``git revert`` of the promotion: applied with zero trainings, back on the configuration name served in step 3;
8. the evening teardown with ``--now`` after the cut-off: nothing deleted a minute before, no endpoint left after;
9. the next working morning (the release has working hours, ``schedule.up`` 08:00 Monday to Friday): drift before
   08:00 says "down until 08:00 (schedule)" and passes, the bring-up at 08:00 re-creates the endpoint on the
   configuration it had, from the published digests (no training), and drift passes.

Every step states its expectations and checks them against live state (the endpoint's configuration and weights
as SageMaker describes them, the plan after each apply, the number of real calls of the training function); the
report (``--report``) lists them, and the command exits 0 only if every one held.

Steps that need nothing from each other overlap, and the report says so: v1's training and commit run while the
bootstrap does (its AWS provider spends about five seconds waiting on the KMS key), checkov's process and the
emulator's serving libraries start then too, and the v1 pull request's checkov scan runs alongside v1's deploy,
which waits for its verdict. Each step records when it started (``started``, seconds since the story began) and what
it ran ``alongside``; the timeline shows both, and the set-up before the first step (``setup_seconds``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import paths
from .clock import utc_now
from .errors import SmgitopsError
from .estimators import steady_environ_for_numpy
from .git import Git

if TYPE_CHECKING:
    from .context import Context

REGION = "us-east-1"
ENVIRONMENT = "dev"
PRIMARY_MODEL = "cancer-logreg"
CANDIDATE_MODEL = "cancer-logreg-c03"
DEMO_MIN_INVOCATIONS = 10
SCHEDULE_UP = "08:00"
WORKING_DAYS = ("mon", "tue", "wed", "thu", "fri")
FAULT_ERROR_RATE = 0.5
REPO_DIRS = ("releases", "data", "terraform", "bootstrap", "policies")
IDENTITY = {
    "GIT_AUTHOR_NAME": "smgitops demo",
    "GIT_AUTHOR_EMAIL": "demo@smgitops.invalid",
    "GIT_COMMITTER_NAME": "smgitops demo",
    "GIT_COMMITTER_EMAIL": "demo@smgitops.invalid",
}


# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Expectation:
    what: str
    ok: bool


@dataclass
class StepRecord:
    name: str
    ok: bool = True
    seconds: float = 0.0
    started: float = 0.0  # seconds since the story began (after set-up): steps that overlap show it here
    alongside: str = ""  # the step this one ran at the same time as, if any
    endpoint_config: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    trainings: int = 0
    plan_after_apply_empty: bool | None = None
    detail: str = ""
    expectations: list[Expectation] = field(default_factory=list)

    def expect(self, condition: bool, what: str) -> bool:
        self.expectations.append(Expectation(what, bool(condition)))
        if not condition:
            self.ok = False
        return bool(condition)


@dataclass
class DemoReport:
    ok: bool = False
    endpoints_alive_after_teardown: int | None = None
    seconds: float = 0.0
    setup_seconds: float = 0.0  # emulator start and scratch repository, before the first step
    scratch_repository: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainingCounter:
    """Counts real calls of the training function (``smgitops.training.build_artifact``) while installed, in all
    and by thread (a step that runs alongside another counts only its own thread's)."""

    def __init__(self) -> None:
        self.calls = 0
        self.by_thread: dict[int, int] = {}
        self._lock = threading.Lock()

    def calls_in_this_thread(self) -> int:
        with self._lock:
            return self.by_thread.get(threading.get_ident(), 0)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from . import training

        original = training.build_artifact

        def counting(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                here = threading.get_ident()
                self.by_thread[here] = self.by_thread.get(here, 0) + 1
            return original(*args, **kwargs)

        training.build_artifact = counting
        try:
            yield
        finally:
            training.build_artifact = original


# --------------------------------------------------------------------------------------------------------------
# The story
# --------------------------------------------------------------------------------------------------------------


class Demo:
    def __init__(self, workdir: Path, console: Any, emulator: Any, checkov: bool = False) -> None:
        self.checkov = checkov
        self.policy_note = "smgitops policy: not run"
        self.policy_ok = False
        self.policy_thread: threading.Thread | None = None
        self.policy_step: StepRecord | None = None
        self.workdir = workdir
        self.repo = workdir / "repo"
        self.repo_git = Git(self.repo)  # the process's environment at each call: the story's git identity
        self.release_path = self.repo / "releases" / f"{ENVIRONMENT}.yaml"
        self.console = console
        self.emulator = emulator
        self.report = DemoReport(scratch_repository=str(self.repo))
        self.trainings = TrainingCounter()
        self.ctx: Context | None = None  # the story's context (one session, settings resolved once): bootstrap()
        self._release: tuple[bytes, Any] | None = None  # the release file's bytes and what they load as
        self.configs: dict[str, str | None] = {}
        self.commits: dict[str, str] = {}
        self.last_policy_findings: list[str] = []
        self.rollback_branch = ""
        self.evening_cutoff = utc_now()
        self.began = time.monotonic()  # the story's start (reset by run()): each step's `started` counts from it

    # -- plumbing ------------------------------------------------------------------------------------------------

    def git(self, *args: str) -> str:
        return self.repo_git.run(*args).strip()

    def commit(self, message: str, key: str) -> str:
        self.git("add", str(self.release_path.relative_to(self.repo)))
        self.git("commit", "-q", "-m", message)
        sha = self.git("rev-parse", "HEAD")
        self.commits[key] = sha
        return sha

    def doc(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.release_path.read_text(encoding="utf-8"))
        return loaded

    def write(self, doc: dict[str, Any], header: str) -> None:
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
        self.release_path.write_text(f"# {header}\n{text}", encoding="utf-8")

    def release(self) -> Any:
        """The release file as it is now, loaded and validated (about 15 ms: the story asks after every step; a
        file with the same bytes is not loaded again)."""
        from .release import load_release

        text = self.release_path.read_bytes()
        if self._release is None or self._release[0] != text:
            self._release = (text, load_release(self.release_path))
        return self._release[1]

    def live(self) -> tuple[str | None, dict[str, float]]:
        """The endpoint's live configuration and weights; ``(None, {})`` only when SageMaker says it does not exist
        (any other error is raised: an unreadable endpoint is not a deleted one)."""
        assert self.ctx is not None  # made by bootstrap()
        ep = self.ctx.aws.describe_endpoint(self.release().endpoint.name)
        if ep is None:
            return None, {}
        weights = {
            v["VariantName"]: float(v.get("CurrentWeight", v.get("DesiredWeight", 0.0)))
            for v in ep.get("ProductionVariants", [])
        }
        return ep.get("EndpointConfigName"), weights

    def story(self) -> Context:
        """The story's context (made by :meth:`bootstrap`)."""
        assert self.ctx is not None, "bootstrap() makes the story's context"
        return self.ctx

    def endpoint_count(self) -> int:
        """Every endpoint alive in the demo's region, managed or not (teardown's paginated listing)."""
        from .teardown import SageMakerEndpoints

        assert self.ctx is not None
        return sum(1 for _ in SageMakerEndpoints(self.ctx.aws).list_endpoints())

    @contextlib.contextmanager
    def step(
        self, name: str, *, live: bool = True, deferred: bool = False, alongside: str = ""
    ) -> Iterator[StepRecord]:
        """A step of the story, timed; its record is added to the report and printed at its end (``deferred``:
        the caller does that, with :meth:`record`, once the step it runs ``alongside`` has ended, so that the report
        keeps the story's order). A step run alongside another counts the trainings of its own thread only."""
        started = time.monotonic()
        record = StepRecord(name, started=round(started - self.began, 2), alongside=alongside)
        count = self.trainings.calls_in_this_thread if alongside else (lambda: self.trainings.calls)
        before = count()
        try:
            yield record
        except SmgitopsError as exc:
            record.ok = False
            record.detail = f"{record.detail}; error: {exc}".lstrip("; ")
            raise
        finally:
            record.seconds = round(time.monotonic() - started, 2)
            record.trainings = count() - before
            if live and self.ctx is not None:
                try:
                    record.endpoint_config, record.weights = self.live()
                except Exception as exc:  # every step's expectations rest on the live state: unreadable fails it
                    record.expect(False, f"the live endpoint can be described after the step: {exc}")
            if not deferred:
                self.record(record)

    def record(self, record: StepRecord) -> None:
        self.report.steps.append(record)
        self._print_step(record)

    def _print_step(self, r: StepRecord) -> None:
        mark = "[green]✓[/]" if r.ok else "[bold red]✗[/]"
        weights = " ".join(f"{k}={v:g}" for k, v in r.weights.items()) or "-"
        plan = {True: "empty", False: "NOT EMPTY", None: "-"}[r.plan_after_apply_empty]
        self.console.print(
            f"{mark} {r.name:<34} {r.seconds:6.1f} s  config={r.endpoint_config or '-'}  weights={weights}  "
            f"trainings={r.trainings}  plan-after-apply={plan}",
            highlight=False,
        )
        if r.alongside:
            self.console.print(
                f"    from {r.started:.1f} s, alongside {r.alongside} (overlapping time counts in both)",
                markup=False,
                highlight=False,
            )
        if r.detail:
            self.console.print(f"    {r.detail}", markup=False, highlight=False)
        for e in r.expectations:
            if not e.ok:
                self.console.print(f"    [bold red]expectation failed:[/] {e.what}")

    # -- steps ---------------------------------------------------------------------------------------------------

    def setup_repository(self) -> None:
        home = paths.tool_home()
        self.repo.mkdir(parents=True)
        ignore = shutil.ignore_patterns(".terraform", "*_override.tf", "*.tfstate*", "*.tfplan", "__pycache__")
        for name in REPO_DIRS:
            if (home / name).is_dir():
                shutil.copytree(home / name, self.repo / name, ignore=ignore)
        (self.repo / ".gitignore").write_text("/out/\n/.smgitops/\n*_override.tf\n.terraform/\n", encoding="utf-8")
        self.git("init", "-q", "-b", "main")
        self.git("add", ".")
        self.git("commit", "-q", "-m", "Repository layout: releases, data, Terraform roots")

    BOOTSTRAP = "bootstrap (terraform apply bootstrap/)"
    V1_TRAIN = "v1: train + commit"

    def bootstrap(self) -> Callable[[], tuple[StepRecord | None, BaseException | None]]:
        """Start the bootstrap (``bootstrap/`` applied to the emulator: the story's context resolves its settings) in
        a thread, and return the function that waits for it and gives its record and its error, if any. It needs
        nothing the next steps make, and about five of its eight seconds are the AWS provider's wait for the KMS
        key's rotation status: v1's training and commit run meanwhile, then :meth:`start_ahead`."""
        from .context import Context

        records: list[StepRecord] = []
        errors: list[BaseException] = []

        def bootstrap() -> None:
            try:
                with self.step(self.BOOTSTRAP, live=False, deferred=True, alongside=self.V1_TRAIN) as s:
                    records.append(s)
                    self.ctx = Context(region=REGION, repo_root=self.repo)
                    settings = self.ctx.settings
                    s.detail = f"artifact bucket {settings.artifact_bucket}, state bucket {settings.state_bucket}"
                    s.expect(
                        bool(settings.artifact_bucket and settings.state_bucket), "bootstrap outputs the bucket names"
                    )
            except BaseException as exc:  # handed to the story's thread, which raises it
                errors.append(exc)

        steady_environ_for_numpy()  # v1's training imports numpy while the bootstrap thread makes AWS clients
        thread = threading.Thread(target=bootstrap, daemon=True, name="demo-bootstrap")
        thread.start()

        def finished() -> tuple[StepRecord | None, BaseException | None]:
            thread.join()
            return (records[0] if records else None), (errors[0] if errors else None)

        return finished

    def start_ahead(self) -> None:
        """Start, in the background, what later steps would otherwise wait for: checkov's process (its import,
        3-4 s of CPU: :func:`smgitops.policy.prewarm_checkov`; the pull request's scan then only scans) and the
        emulator's import of the serving libraries (else v1's first smoke invocation waits for scikit-learn). Called
        once v1's training is done, so that neither slows the bootstrap's busy start (init, the first applies) but
        both run while the AWS provider waits on the KMS key."""
        if self.checkov and paths.tools_bin("checkov").exists():
            from .policy import prewarm_checkov

            prewarm_checkov()
        if self.emulator is not None:
            self.emulator.admin.warm_inference()

    def train(self, s: StepRecord, model_ids: list[str]) -> None:
        """What a user does for a new model: ``smgitops train RELEASE --write``, which trains and writes each
        digest into the release (the pull request publishes nothing: its credentials are read-only; the merge
        publishes)."""
        from .training import train_and_write

        results, written = train_and_write(self.release_path, model_ids, self.repo / "out" / "artifacts")
        s.detail = ", ".join(f"{r.model_id} sha256={r.digest[:12]}…" for r in results)
        if written:
            s.detail += "; written: " + ", ".join(f"{p.model_id} (line {p.line})" for p in written)
        pinned = {m: spec.artifact_sha256 for m, spec in self.release().models.items()}
        s.expect(all(pinned[r.model_id] == r.digest for r in results), "train --write pins every digest it trained")

    def publish(self, s: StepRecord) -> None:
        """The merge's publish step, before its deploy: uploads what is new, finds the rest, overwrites nothing."""
        from .artifacts import publish_release, store_for

        release = self.release()
        report = publish_release(
            release, store_for(release, self.story()), artifact_dir=self.repo / "out" / "artifacts"
        )
        s.expect(report.ok, "publish (at merge) uploads or finds every artifact, overwriting nothing")
        doc = report.as_dict()
        s.detail += f"{'; ' if s.detail else ''}publish: {doc['published']} new, {doc['already_present']} present"

    def plan_and_policy(self, s: StepRecord) -> Any:
        from .console import percent
        from .plan import plan_release, print_summary

        planned = plan_release(self.release(), self.story(), lock=False)  # as a pull request plans
        summary = planned.summary
        print_summary(summary, file=self.console.file)
        changes = ", ".join(
            f"{v['name']} {percent(v.get('weight_before'))} → {percent(v.get('weight_after'))}"
            for v in summary.get("variants", [])
        )
        added = ", ".join(m["id"] for m in summary.get("models_added", [])) or "none"
        s.detail = f"plan: {changes}; models added: {added}; {_resources(summary)}; {self.policy()}"
        if self.checkov and not paths.tools_bin("checkov").exists():
            self.checkov = False
            s.detail += f"; checkov skipped: {paths.tools_bin('checkov')} is missing (make setup installs it)"
        if self.checkov:
            # The full gate once, on the first pull request. checkov takes several seconds of CPU, so it runs
            # alongside the v1 deploy on the plan's JSON (no Terraform process shared); its verdict is joined and
            # checked at the end of that step (see await_full_policy).
            self.checkov = False
            plan_json = self.workdir / "v1-plan.json"
            plan_json.write_text(json.dumps(planned.plan_json), encoding="utf-8")
            self.policy_step = s
            self.policy_thread = threading.Thread(target=self.full_policy, args=(plan_json,), daemon=True)
            self.policy_thread.start()
        return planned

    def await_full_policy(self) -> None:
        if self.policy_thread is None or self.policy_step is None:
            return
        self.policy_thread.join()
        self.policy_thread = None
        s = self.policy_step
        s.expect(self.policy_ok, "smgitops policy (checkov on the roots and the plan, release policy) passes")
        s.detail += f"; {self.policy_note}"
        self.console.print(f"    v1 pull request: {self.policy_note}", markup=False, highlight=False)

    def full_policy(self, plan_json: Path) -> None:
        """``smgitops policy RELEASE --plan-json F --base-rev HEAD~1``, as the pull-request workflow runs it."""
        from . import cli
        from .policy import PREWARMED

        out = self.workdir / "policy.json"
        rel = str(self.release_path)
        ahead = PREWARMED.used
        try:
            code = cli.main(
                ["policy", rel, "--plan-json", str(plan_json), "--base-rev", "HEAD~1", "--report", str(out)]
            )
        except Exception as exc:  # reported as a failed expectation, not lost in a thread
            self.policy_note = f"smgitops policy failed: {exc}"
            return
        self.policy_ok = code == 0
        self.policy_note = f"smgitops policy: exit {code}"
        if out.exists():
            ck = json.loads(out.read_text(encoding="utf-8")).get("checkov") or {}
            started = (
                "its process started during the bootstrap"
                if PREWARMED.used > ahead
                else "its process started then" + (f" ({PREWARMED.missed[-1]})" if PREWARMED.missed else "")
            )
            self.policy_note = (
                f"smgitops policy: exit {code}, checkov {ck.get('passed')} passed / {ck.get('failed')} failed "
                f"in {ck.get('seconds')} s ({started})"
            )

    def policy(self) -> str:
        try:
            from . import policy
        except ImportError:
            return "policy: smgitops.policy not installed, skipped"
        base = None
        if self.git("rev-list", "--count", "HEAD") != "1":
            base = policy.base_from_rev(self.release_path, "HEAD~1")
        findings = policy.release_findings(self.release(), base)
        self.last_policy_findings = [f"{f.check_id} {f.title}: {f.detail}" for f in findings]
        return "release policy: " + ("clean" if not findings else "; ".join(self.last_policy_findings))

    def working_hours(self) -> datetime:
        """10:00 today in the release's teardown zone: the instant the demo's deploys judge the cut-off at."""
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.release().teardown.timezone)
        return datetime.combine(utc_now().astimezone(zone).date(), dt_time(10, 0), tzinfo=zone)

    def deploy(self, s: StepRecord, planned: Any, on_step: Callable[[Any], None] | None = None) -> Any:
        from .clock import VirtualClock
        from .rollout import deploy, traffic_for_canary

        self.publish(s)
        bake_clock = VirtualClock()
        result = deploy(
            self.release_path,
            # exactly this many requests: enough for every serving variant's min_invocations, 3 sigma to spare
            traffic=traffic_for_canary(self.release()),
            # the canary bakes for the release's whole window, in virtual time: metrics keep real timestamps
            ctx=self.story().with_clock(bake_clock.now),
            canary_sleep=bake_clock.sleep,
            canary_timeout=self.release().canary.bake_minutes * 60 + 120,
            plan_file=planned.plan_file if planned is not None else None,
            on_step=on_step,
            # the demo's deploys happen in working hours whatever the wall clock says; its evening teardown
            # (step 8) is judged at the cut-off
            cutoff_now=self.working_hours,
        )
        s.plan_after_apply_empty = result.plan_after_apply_empty
        steps = ", ".join(f"{st.name} {'ok' if st.ok else 'FAILED'} {st.seconds:.1f} s" for st in result.steps)
        traffic = result.traffic or {}
        answered = " ".join(f"{k}={n}" for k, n in (traffic.get("by_variant") or {}).items()) or "-"
        s.detail += f"{'; ' if s.detail else ''}deploy: {steps}; traffic {traffic.get('sent', 0)} requests: {answered}"
        if result.canary:
            from .canary import render_doc

            render_doc(result.canary, self.console)
            verdicts = ", ".join(f"{v['name']} {v['verdict']}" for v in result.canary["variants"])
            s.detail += f"; canary {result.canary['verdict']} ({verdicts})"
        return result

    def run(self) -> DemoReport:
        from .plan import expected_config_name

        self.began = time.monotonic()
        finish_bootstrap = self.bootstrap()

        # -- 2. release v1 (its training and commit need no AWS: they run while the bootstrap does) ---------------
        trained: StepRecord | None = None
        try:
            with self.step(self.V1_TRAIN, live=False, deferred=True, alongside=self.BOOTSTRAP) as s:
                trained = s
                doc = self.doc()
                primary = doc["models"][PRIMARY_MODEL]
                doc["models"] = {PRIMARY_MODEL: primary}
                doc["variants"] = [{"name": "primary", "model": PRIMARY_MODEL, "weight": 100}]
                doc["canary"] = {**doc["canary"], "min_invocations": DEMO_MIN_INVOCATIONS}
                doc["schedule"] = {"up": SCHEDULE_UP, "days": list(WORKING_DAYS)}  # working hours: step 9
                self.write(doc, "release file of the dev environment (written by smgitops demo)")
                self.train(s, [PRIMARY_MODEL])
                self.commit("Release v1: one variant serving cancer-logreg", "v1")
                s.expect(self.trainings.calls == 1, "v1 trains exactly one model")
            self.start_ahead()
        finally:
            booted, failure = finish_bootstrap()
            for record in (booted, trained):
                if record is not None:
                    self.record(record)
        if failure is not None:
            raise failure
        with self.step("v1: plan + policy (pull request)", live=False) as s:
            planned = self.plan_and_policy(s)
            s.expect(not planned.no_changes, "the plan creates the endpoint")
            to_publish = [m["id"] for m in planned.summary["artifacts_to_publish"]]
            s.expect(to_publish == [PRIMARY_MODEL], "the pull request published nothing (the merge will)")
            s.expect(not self.last_policy_findings, "the release policy is clean")
        with self.step("v1: deploy (merge)") as s:
            result = self.deploy(s, planned)
            self.await_full_policy()
            s.expect(result.ok, "apply → verify → smoke → canary all pass")
            s.expect(bool(result.recorded_good), "the deployed revision is recorded good")
        s.expect(s.plan_after_apply_empty is True, "plan after apply is empty")
        s.expect(s.weights == {"primary": 100.0}, "live: primary serves 100 %")
        s.expect(
            s.endpoint_config == expected_config_name(self.release(), self.story().settings), "live config = release's"
        )
        self.configs["v1"] = s.endpoint_config

        # -- 3. canary pull request: a second model at 10 % ------------------------------------------------------
        with self.step("canary PR: train candidate", live=False) as s:
            doc = self.doc()
            candidate = json.loads(json.dumps(doc["models"][PRIMARY_MODEL]))
            candidate["params"] = {**candidate.get("params", {}), "C": 0.3}
            del candidate["artifact_sha256"]  # a new model has no digest: train --write pins it
            doc["models"][CANDIDATE_MODEL] = candidate
            doc["variants"] = [
                {"name": "primary", "model": PRIMARY_MODEL, "weight": 90},
                {"name": "candidate", "model": CANDIDATE_MODEL, "weight": 10},
            ]
            self.write(doc, "release file of the dev environment (written by smgitops demo)")
            self.train(s, [CANDIDATE_MODEL])
            self.commit("Canary: cancer-logreg-c03 (C=0.3) at 10 %", "canary")
        s.expect(s.trainings == 1, "only the new model is trained")
        with self.step("canary PR: plan + policy", live=False) as s:
            planned = self.plan_and_policy(s)
            variants = {v["name"]: (v.get("weight_before"), v.get("weight_after")) for v in planned.summary["variants"]}
            s.expect(variants.get("candidate", (None, None))[1] == 10, "the plan shows candidate at 10 %")
            to_publish = [m["id"] for m in planned.summary["artifacts_to_publish"]]
            s.expect(to_publish == [CANDIDATE_MODEL], "only the candidate waits for the merge's publish")
            s.expect(not self.last_policy_findings, "the release policy is clean (canary ≤ 10 %)")
        with self.step("canary: deploy + canary analysis") as s:
            result = self.deploy(s, planned)
            s.expect(result.ok, "the canary analysis passes")
        s.expect(s.plan_after_apply_empty is True, "plan after apply is empty")
        s.expect(s.weights == {"primary": 90.0, "candidate": 10.0}, "live: 90/10")
        s.expect(s.trainings == 0, "deploying trains nothing")
        self.configs["canary"] = s.endpoint_config

        # -- 4. promotion ------------------------------------------------------------------------------------------
        with self.step("promote: plan + deploy") as s:
            doc = self.doc()
            doc["variants"][0]["weight"], doc["variants"][1]["weight"] = 0, 100
            self.write(doc, "release file of the dev environment (written by smgitops demo)")
            self.commit("Promote cancer-logreg-c03 to 100 %", "promote")
            planned = self.plan_and_policy(s)
            result = self.deploy(s, planned)
            s.expect(result.ok, "the promotion deploys and its canary passes")
        s.expect(s.plan_after_apply_empty is True, "plan after apply is empty")
        s.expect(s.weights == {"primary": 0.0, "candidate": 100.0}, "live: 0/100")
        s.expect(s.trainings == 0, "a promotion trains nothing")
        self.configs["promote"] = s.endpoint_config

        # -- 5. a bad canary: automatic rollback -------------------------------------------------------------------
        with self.step("bad canary: deploy → auto-rollback") as s:
            doc = self.doc()
            doc["variants"][0]["weight"], doc["variants"][1]["weight"] = 30, 70
            self.write(doc, "release file of the dev environment (written by smgitops demo)")
            bad = self.commit("Shift 30 % back to primary", "bad")
            planned = self.plan_and_policy(s)
            endpoint = self.release().endpoint.name

            def errors_after_smoke(step: Any) -> None:
                # primary starts failing under load once the smoke test has passed: a job for the canary
                if step.name == "smoke":
                    self.emulator.admin.inject_fault(endpoint, "primary", error_rate=FAULT_ERROR_RATE)

            try:
                result = self.deploy(s, planned, on_step=errors_after_smoke)
            finally:
                self.emulator.admin.clear_faults()
            rb = result.rollback or {}
            s.expect(not result.ok and result.failed_step == "canary", "deploy fails at the canary analysis")
            s.expect(bool(rb.get("ok")), "the automatic rollback applied and verified")
            s.expect(rb.get("to") == self.commits["promote"], "it rolled back to the last good release (promotion)")
            s.expect(rb.get("plan_after_apply_empty") is True, "plan after the rollback apply is empty")
            s.plan_after_apply_empty = rb.get("plan_after_apply_empty")
            branch = str(rb.get("branch", ""))
            s.expect(branch == f"smgitops/rollback-{ENVIRONMENT}-{bad[:8]}", f"revert branch {branch} was written")
            rel = str(self.release_path.relative_to(self.repo))
            if branch:
                same = self.git("show", f"{branch}:{rel}") == self.git("show", f"{self.commits['promote']}:{rel}")
                s.expect(same, "the revert branch's release file equals the rolled-back-to release")
            s.detail += f"; rolled back to {str(rb.get('to', ''))[:8]}, revert branch {branch}"
            self.rollback_branch = branch
        s.expect(s.endpoint_config == self.configs["promote"], "live: back on the promotion's configuration")
        s.expect(s.weights == {"primary": 0.0, "candidate": 100.0}, "live: 0/100 again")
        s.expect(s.trainings == 0, "the rollback trains nothing")

        # -- 6. the rollback pull request is merged ---------------------------------------------------------------
        with self.step("merge the rollback PR: Git = live") as s:
            from .deploy import verify_release

            self.git("merge", "-q", "--ff-only", self.rollback_branch)
            verified = verify_release(self.release(), self.story())
            held = "live = release file" if verified.ok else "; ".join(verified.problems)
            s.detail = f"verify after the merge: {held}"
            s.expect(verified.ok, "after the merge the live endpoint equals the release file: Git matches reality")
        s.expect(s.endpoint_config == self.configs["promote"], "live configuration unchanged by the merge")

        # -- 7. git revert of the promotion --------------------------------------------------------------------
        with self.step("git revert promotion → deploy") as s:
            self.git("revert", "--no-edit", self.commits["promote"])
            planned = self.plan_and_policy(s)
            result = self.deploy(s, planned)
            s.expect(result.ok, "the revert deploys and its canary passes")
        s.expect(s.plan_after_apply_empty is True, "plan after apply is empty")
        s.expect(s.endpoint_config == self.configs["canary"], "back on the canary's configuration name")
        s.expect(s.weights == {"primary": 90.0, "candidate": 10.0}, "live: 90/10 again")
        s.expect(s.trainings == 0, "a revert trains nothing")

        # -- 8. the evening teardown -------------------------------------------------------------------------------
        with self.step("evening teardown (--now after cut-off)") as s:
            self.evening_teardown(s)
        self.report.endpoints_alive_after_teardown = self.endpoint_count()
        s.expect(self.report.endpoints_alive_after_teardown == 0, "no endpoint left after the teardown")
        s.expect(s.endpoint_config is None, "the dev endpoint is gone")

        # -- 9. the next working morning -------------------------------------------------------------------------
        self.morning(self.evening_cutoff + timedelta(minutes=1))
        return self.report

    def morning(self, evening: datetime) -> None:
        """Drift before schedule.up passes ("down until"), the bring-up at up re-creates the endpoint with no
        training, drift passes."""
        from .bringup import bring_up, next_up
        from .deploy import verify_live

        release = self.release()
        up = next_up(release, evening)
        assert up is not None  # the demo's release has working hours
        with self.step("morning drift before up") as s:
            early = verify_live(release, self.story(), up - timedelta(minutes=20), timeout=60)
            s.detail = f"drift at {up - timedelta(minutes=20):%a %H:%M %Z}: {early.down_until or early.problems}"
            s.expect(early.ok, "before schedule.up an endpoint torn down on schedule is not drift")
            s.expect(
                (early.down_until or "").startswith(f"down until {SCHEDULE_UP} (schedule)"),
                f'drift says "down until {SCHEDULE_UP} (schedule)"',
            )
        with self.step("bring-up at up (no training)") as s:
            entry = bring_up(release, self.story(), lambda: up, timeout=60)
            s.plan_after_apply_empty = entry.plan_after_apply_empty
            s.detail = f"bring-up at {up:%a %H:%M %Z}: {entry.action}: {entry.reason}; {entry.problems or 'verified'}"
            s.expect(entry.action == "brought up" and entry.ok, "the bring-up re-creates the endpoint and verifies it")
        s.expect(s.endpoint_config == self.configs["canary"], "on the configuration it had before the teardown")
        s.expect(s.trainings == 0, "a bring-up trains nothing")
        s.expect(s.plan_after_apply_empty is True, "plan after apply is empty")
        with self.step("morning drift after bring-up") as s:
            # the endpoint against the release (`verify --no-plan`): the bring-up's plan after apply was empty
            later = verify_live(release, self.story(), up + timedelta(minutes=30), timeout=60, plan=False)
            s.detail = f"drift at {up + timedelta(minutes=30):%a %H:%M %Z}: {later.problems or 'live = release file'}"
            s.expect(later.ok and later.down_until is None, "in working hours the live endpoint equals the release")

    def evening_teardown(self, s: StepRecord) -> None:
        from .teardown import SageMakerEndpoints, load_schedules, regions_for, teardown

        schedules, warnings = load_schedules(self.repo / "releases")
        dev = next(x for x in schedules if x.environment == ENVIRONMENT)
        cutoff = dev.cutoff(utc_now())
        self.evening_cutoff = cutoff

        def clients(region: str) -> SageMakerEndpoints:
            return SageMakerEndpoints(self.story().aws)

        regions = regions_for(schedules)
        early = teardown(clients, regions, schedules, clock=lambda: cutoff - timedelta(minutes=1), warnings=warnings)
        s.expect(early.count(_outcome("deleted")) == 0, "a minute before the cut-off nothing is deleted")
        late = teardown(clients, regions, schedules, clock=lambda: cutoff + timedelta(minutes=1))
        from .teardown import render

        render(late, self.console)
        s.expect(late.ok and late.count(_outcome("deleted")) >= 1, "after the cut-off the endpoint is deleted")
        s.detail = (
            f"cut-off {dev.describe()} = {cutoff.astimezone(utc_now().tzinfo):%H:%M} UTC today; "
            f"at cut-off+1 min deleted: {', '.join(e.endpoint for e in late.entries)}"
        )


def _warm_imports() -> None:
    """botocore, which the bootstrap's first AWS call needs. scikit-learn (1-1.5 s) is left to v1's training, which
    runs while the bootstrap waits on the AWS provider, off the path to the first step."""
    for module in ("botocore.session",):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def _outcome(name: str) -> Any:
    from .teardown import Outcome

    return Outcome(name)


def _resources(summary: dict[str, Any]) -> str:
    r = summary.get("resources", {})
    return f"{r.get('add', 0)} to add, {r.get('change', 0)} to change, {r.get('destroy', 0)} to destroy"


# --------------------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _environment(values: dict[str, str], remove: tuple[str, ...]) -> Iterator[None]:
    saved = dict(os.environ)
    for key in remove:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _show_emulator_log(console: Any, emulator: Any) -> None:
    """What the emulator logged (its errors), for a story that stopped: the server's side of a failed call."""
    tail = emulator.log_tail().strip()
    if tail:
        console.print(f"emulator log (last lines):\n{tail}", markup=False, highlight=False)


def run_story(
    console: Any, *, keep: bool = False, checkov: bool = False, on_done: Callable[[DemoReport], None] | None = None
) -> DemoReport:
    from .emulator.server import Emulator
    from .localmode import emulator_from_env, local_dir
    from .settings import ENV_VARS
    from .training import pin_blas_kernels

    pin_blas_kernels()  # before anything loads numpy: artifact digests must not depend on this CPU
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="smgitops-demo-"))
    emulator = Emulator()
    demo: Demo | None = None
    report = DemoReport(scratch_repository=str(workdir / "repo"))
    bootstrap_dir: Path | None = None
    try:
        # The emulator's process starts (about two seconds of importing moto) while this one makes the scratch
        # repository and imports botocore.
        emulator.launch()
        demo = Demo(workdir, console, emulator, checkov=checkov)
        with _environment(IDENTITY, ()):
            demo.setup_repository()
        _warm_imports()
        emulator.wait_ready()
        report.setup_seconds = round(time.monotonic() - started, 2)
        with _environment({**emulator.env(), **IDENTITY}, tuple(ENV_VARS.values())):
            bootstrap_dir = local_dir(emulator_from_env())
            emulator.admin.set_update_delay(0)
            emulator.admin.seed(7)
            demo.report.setup_seconds = report.setup_seconds
            with demo.trainings.installed():
                try:
                    report = demo.run()
                except SmgitopsError as exc:
                    report = demo.report
                    report.error = str(exc)
        if report.error is not None:
            _show_emulator_log(console, emulator)
    except BaseException:
        _show_emulator_log(console, emulator)
        raise
    finally:
        emulator.stop()
        if bootstrap_dir is not None:
            shutil.rmtree(bootstrap_dir, ignore_errors=True)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report.seconds = round(time.monotonic() - started, 2)
    report.ok = (
        report.error is None
        and bool(report.steps)
        and all(s.ok for s in report.steps)
        and report.endpoints_alive_after_teardown == 0
    )
    if on_done is not None:
        on_done(report)
    return report


def render_timeline(report: DemoReport, console: Any) -> None:
    from rich.table import Table

    table = Table(
        title=f"smgitops demo: {'all expectations held' if report.ok else 'FAILED'} in {report.seconds:.1f} s"
    )
    columns = ("step", "ok", "from s", "s", "endpoint config (live)", "weights (live)", "trainings", "plan after apply")
    for col in columns:
        table.add_column(col)
    for r in report.steps:
        table.add_row(
            r.name,
            "[green]✓[/]" if r.ok else "[bold red]✗[/]",
            f"{r.started:.1f}",
            f"{r.seconds:.1f}",
            r.endpoint_config or "-",
            " ".join(f"{k}={v:g}" for k, v in r.weights.items()) or "-",
            str(r.trainings),
            {True: "empty", False: "NOT EMPTY", None: "-"}[r.plan_after_apply_empty],
        )
    console.print(table)
    overlapping = [r for r in report.steps if r.alongside]
    console.print(
        f"set-up (emulator start, scratch repository) {report.setup_seconds:.1f} s before the first step; "
        + (
            "steps run alongside each other: "
            + ", ".join(f"{r.name} (from {r.started:.1f} s) with {r.alongside}" for r in overlapping)
            + ": their seconds overlap and add up to more than the wall time"
            if overlapping
            else "no steps overlap"
        ),
        highlight=False,
    )
    for r in report.steps:
        for e in r.expectations:
            if not e.ok:
                console.print(f"[bold red]expectation failed[/] in {r.name}: {e.what}", highlight=False)
    held = sum(1 for r in report.steps for e in r.expectations if e.ok)
    total = sum(len(r.expectations) for r in report.steps)
    console.print(
        f"expectations held: {held}/{total}; endpoints alive after teardown: {report.endpoints_alive_after_teardown}"
    )
    if report.error:
        console.print(f"[bold red]error:[/] {report.error}", highlight=False)
