"""Rollouts: the git records (good revisions, revert branches), smoke judging, and the end-to-end journeys --
deploy → canary breach → automatic rollback → revert branch; rollback without training; a missing artifact refused.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from smgitops.aws import Aws
from smgitops.context import Context
from smgitops.git import Git
from smgitops.rollout import (
    GoodRevision,
    Invocation,
    _judge_smoke,
    good_tag,
    last_good_revision,
    record_good,
    write_revert_branch,
)


def sh(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        sh(repo, "add", name)
    sh(repo, "commit", "-q", "-m", message)
    return sh(repo, "rev-parse", "HEAD")


@pytest.fixture()
def history(tmp_path: Path, git_identity: dict[str, str]) -> tuple[Git, list[str]]:
    """v1 → canary → promote → a commit that does not touch the release file."""
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    shas = [
        commit(repo, {"releases/dev.yaml": "v: 1\n"}, "v1"),
        commit(repo, {"releases/dev.yaml": "v: 2\n"}, "canary"),
        commit(repo, {"releases/dev.yaml": "v: 3\n"}, "promote"),
        commit(repo, {"README.md": "docs\n"}, "docs"),
    ]
    return Git(repo), shas


REL = "releases/dev.yaml"


def test_last_good_is_the_newest_recorded_ancestor(history: tuple[Git, list[str]]) -> None:
    git, (v1, canary, promote, docs) = history
    git.create_tag(good_tag("dev", v1), v1)
    git.create_tag(good_tag("dev", canary), canary)
    git.create_tag(good_tag("prod", promote), promote)  # another environment's record does not count
    good = last_good_revision(git, "dev", REL, promote)
    assert good == GoodRevision(canary, f"last recorded good (tag smgitops/good/dev/{canary})")
    # the deployed commit itself never counts, even if recorded good by an earlier run
    git.create_tag(good_tag("dev", promote), promote)
    assert last_good_revision(git, "dev", REL, promote) == good
    assert last_good_revision(git, "dev", REL, docs) == GoodRevision(
        promote, f"last recorded good (tag smgitops/good/dev/{promote})"
    )


def test_without_records_the_previous_different_revision_is_used_and_said_so(history: tuple[Git, list[str]]) -> None:
    git, (v1, canary, promote, docs) = history
    fallback = last_good_revision(git, "dev", REL, docs)  # docs has promote's content: skip to canary
    assert fallback is not None and fallback.sha == canary
    assert "no good revision recorded" in fallback.how
    assert last_good_revision(git, "dev", REL, v1) is None  # nothing before the first revision


def test_good_is_recorded_only_for_a_committed_file(history: tuple[Git, list[str]]) -> None:
    git, (*_, docs) = history
    (git.repo / REL).write_text("v: 99\n")  # deployed content is not a revision
    assert record_good(git, "dev", REL, docs) is None
    assert git.tags("smgitops/good/") == {}
    (git.repo / REL).write_text("v: 3\n")
    assert record_good(git, "dev", REL, docs) == good_tag("dev", docs)
    assert git.tags("smgitops/good/dev/") == {good_tag("dev", docs): docs}


def test_revert_branch_holds_the_good_content_on_top_of_the_failed_commit(history: tuple[Git, list[str]]) -> None:
    git, (v1, canary, promote, docs) = history
    before_status = sh(git.repo, "status", "--porcelain")
    good = GoodRevision(canary, "last recorded good")
    branch, sha = write_revert_branch(git, "dev", REL, promote, good, "canary breach: error rate 40%")
    assert branch == f"smgitops/rollback-dev-{promote[:8]}"
    assert sh(git.repo, "rev-parse", f"refs/heads/{branch}") == sha
    assert sh(git.repo, "rev-parse", f"{sha}^") == promote
    assert sh(git.repo, "show", f"{sha}:{REL}") + "\n" == "v: 2\n"
    assert sh(git.repo, "diff", "--name-only", promote, sha) == REL  # nothing else changes
    message = sh(git.repo, "log", "-1", "--format=%B", sha)
    assert message.startswith(f"Roll back {REL} to {canary[:8]}") and "error rate 40%" in message
    # the person's checkout is untouched: same branch, same files, nothing staged
    assert sh(git.repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert sh(git.repo, "status", "--porcelain") == before_status
    assert (git.repo / REL).read_text() == "v: 3\n"
    again, _ = write_revert_branch(git, "dev", REL, promote, good, "again")
    assert again == f"{branch}-2"


def test_unknown_revision_and_missing_file_are_user_errors(history: tuple[Git, list[str]]) -> None:
    from smgitops.errors import UserError

    git, (v1, *_) = history
    with pytest.raises(UserError, match="is not a commit"):
        git.rev_parse("no-such-rev")
    with pytest.raises(UserError, match="does not exist at revision"):
        git.show(v1, "releases/prod.yaml")


# ---------------------------------------------------------------------------------------------------------------
# smoke judging
# ---------------------------------------------------------------------------------------------------------------


def _answer(model: str, predictions: list[int]) -> Invocation:
    import json

    return Invocation(True, 200, "canary", json.dumps({"model": model, "classes": [0, 1], "predictions": predictions}))


def test_smoke_requires_the_variants_own_model_and_mostly_right_labels() -> None:
    labels = [0, 1, 1, 0, 1, 1, 0, 1]
    assert _judge_smoke("canary", "m2", _answer("m2", labels), labels) == "ok"
    assert "served by model 'm1'" in _judge_smoke("canary", "m2", _answer("m1", labels), labels)
    wrong = [1 - y for y in labels]
    assert "only 0% of 8 held-out rows" in _judge_smoke("canary", "m2", _answer("m2", wrong), labels)
    assert "7 predictions for 8 rows" in _judge_smoke("canary", "m2", _answer("m2", labels[:7]), labels)
    failed = Invocation(False, 500, "canary", "boom")
    assert _judge_smoke("canary", "m2", failed, labels) == "HTTP 500: boom"
    other = Invocation(True, 200, "primary", "{}")
    assert _judge_smoke("canary", "m2", other, labels) == "answered by variant primary, not canary"


# ---------------------------------------------------------------------------------------------------------------
# synthetic traffic: exactly the requests asked for (the emulator, no Terraform)
# ---------------------------------------------------------------------------------------------------------------


def _served_release(root: Path, weights: dict[str, int], min_invocations: int) -> Path:
    """The shipped dev release with one model per variant (seeds differ), in a scratch layout holding its data."""
    project = Path(__file__).resolve().parents[1]
    shutil.copytree(project / "data", root / "data")
    doc = yaml.safe_load((project / "releases" / "dev.yaml").read_text())
    model = next(iter(doc["models"].values()))
    doc["models"] = {f"m-{name}": {**model, "seed": model["seed"] + i} for i, name in enumerate(weights)}
    doc["variants"] = [{"name": name, "model": f"m-{name}", "weight": w} for name, w in weights.items()]
    doc["canary"]["min_invocations"] = min_invocations
    path = root / "releases" / "dev.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False))  # no shared nodes: no anchors
    return path


def _invocations(cw: Any, variants: list[str]) -> int:
    """The emulator's CloudWatch Invocations (Sum), added over the variants of smgitops-dev."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    total = 0.0
    for variant in variants:
        dims = [{"Name": "EndpointName", "Value": "smgitops-dev"}, {"Name": "VariantName", "Value": variant}]
        stats = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims, Statistics=["Sum"],
            StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1), Period=7200,
        )  # fmt: skip
        total += sum(point["Sum"] for point in stats["Datapoints"])
    return int(total)


def _serve(release: Any, emulator_admin: Any) -> Any:
    """smgitops-dev serving ``release``'s variants on the emulator (made through its API, no Terraform); the
    session that made it."""
    from smgitops.aws import make_session
    from smgitops.training import build_artifact

    session = make_session("us-east-1")  # the process's parsed service models, as the CLI's sessions share them
    s3, sm = session.client("s3"), session.client("sagemaker")
    s3.create_bucket(Bucket="artifacts")
    for v in release.variants:
        s3.put_object(Bucket="artifacts", Key=f"{v.model}.tar.gz", Body=build_artifact(release, v.model).archive)
        sm.create_model(
            ModelName=v.model,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/smgitops-sagemaker",
            PrimaryContainer={"Image": "sklearn", "ModelDataUrl": f"s3://artifacts/{v.model}.tar.gz"},
        )
    sm.create_endpoint_config(
        EndpointConfigName="smgitops-dev-1",
        ProductionVariants=[
            {"VariantName": v.name, "ModelName": v.model, "InstanceType": "ml.t2.medium",
             "InitialInstanceCount": 1, "InitialVariantWeight": float(v.weight)}
            for v in release.variants
        ],
    )  # fmt: skip
    sm.create_endpoint(EndpointName="smgitops-dev", EndpointConfigName="smgitops-dev-1")
    emulator_admin.advance_clock(60)
    emulator_admin.seed(5)
    return session


def test_traffic_sends_exactly_the_requests_asked_and_smoke_one_per_variant(
    emulator: Any, emulator_admin: Any, tmp_path: Path
) -> None:
    """--traffic 200 on a 90/10 endpoint whose canary wants 50 invocations per variant used to send until the
    10 % variant had its 50 (440 requests in one run). Now --traffic 100 (any number whose 10 % is below 50
    shows it): 100 sent, 100 more Invocations in CloudWatch, each answered one attributed to
    its variant, and a note saying how many would be needed. Smoke adds one invocation per serving variant,
    stated apart. With errors injected, still one invocation per request."""
    from smgitops.release import load_release
    from smgitops.rollout import Runtime, send_traffic, smoke, traffic_for_canary

    release = load_release(_served_release(tmp_path, {"primary": 90, "candidate": 10}, min_invocations=50))
    session = _serve(release, emulator_admin)
    cw = session.client("cloudwatch")
    names = [v.name for v in release.variants]
    runtime = Runtime(Aws(session))

    assert _invocations(cw, names) == 0
    assert smoke(release, runtime).ok
    assert _invocations(cw, names) == 2  # smoke: one request (of several rows) per serving variant

    traffic = send_traffic(release, runtime, 100)
    assert (traffic.sent, traffic.ok, traffic.errors) == (100, 100, 0)
    assert set(traffic.by_variant) == {"primary", "candidate"} and sum(traffic.by_variant.values()) == 100
    assert 0 < traffic.by_variant["candidate"] < traffic.by_variant["primary"]
    assert _invocations(cw, names) == 2 + 100
    assert traffic_for_canary(release) == 746
    assert traffic.notes == [
        "candidate (10 %) can expect about 10 of 100 requests, fewer than the canary's min_invocations 50: "
        "without other traffic its canary stays inconclusive (--traffic 746 would give every variant enough)"
    ]
    assert traffic.describe().startswith(
        f"100 requests: answered by primary {traffic.by_variant['primary']}, "
        f"candidate {traffic.by_variant['candidate']}; candidate (10 %) can expect"
    )

    # errors: each failed request is still exactly one invocation (no retry), counted apart from the variants
    emulator_admin.inject_fault("smgitops-dev", "primary", error_rate=0.5)
    failing = send_traffic(release, runtime, 50)
    assert failing.sent == 50 and failing.errors > 0
    assert failing.ok + failing.errors == 50 == sum(failing.by_variant.values()) + failing.errors
    assert _invocations(cw, names) == 2 + 100 + 50
    assert f"; {failing.errors} errors (an error names no variant)" in failing.describe()


def test_an_invocation_is_tried_again_only_when_the_request_never_reached_the_server(
    emulator: Any, emulator_admin: Any, tmp_path: Path
) -> None:
    """The runtime client makes one attempt per request (one request, one invocation). A failed TLS handshake (a
    demo once stopped on a single ``tlsv1 alert decode error`` at smoke) or a refused connection proves the
    request never left: it is tried again, up to three connections in all, with 0.2 then 0.4 s pauses. A request
    that was served and whose answer was lost is not (the invocation is counted once, the error raised), nor is
    a certificate that does not verify (a set-up fault)."""
    from botocore import exceptions as bx

    from smgitops.aws import INVOKE_CONFIG
    from smgitops.emulator.tls import ensure_certificate
    from smgitops.release import load_release
    from smgitops.rollout import Runtime
    from support.front import Front

    release = load_release(_served_release(tmp_path, {"primary": 100}, min_invocations=1))
    session = _serve(release, emulator_admin)
    cw = session.client("cloudwatch")
    body = json.dumps({"instances": [[0.0] * 30]})
    foreign = ensure_certificate(tmp_path / "foreign-ca")

    def through(front: Front) -> tuple[Runtime, list[float]]:
        pauses: list[float] = []
        client = session.client("sagemaker-runtime", endpoint_url=front.url, config=INVOKE_CONFIG)
        return Runtime(Aws(session, sleep=pauses.append, clients={"sagemaker_runtime": client})), pauses

    with Front(emulator.port, ["alert", "alert"]) as front:
        runtime, pauses = through(front)
        answer = runtime.invoke("smgitops-dev", body)
        assert (answer.ok, answer.variant, front.connections, pauses) == (True, "primary", 3, [0.2, 0.4])
    assert _invocations(cw, ["primary"]) == 1

    with Front(emulator.port, ["alert"] * 3) as front:
        runtime, pauses = through(front)
        with pytest.raises(bx.SSLError, match="DECODE_ERROR"):
            runtime.invoke("smgitops-dev", body)
        assert (front.connections, pauses) == (3, [0.2, 0.4])
    assert _invocations(cw, ["primary"]) == 1

    with Front(emulator.port, ["drop-answer"], server_cert=ensure_certificate(emulator.tls_dir)) as front:
        runtime, pauses = through(front)
        with pytest.raises(bx.ConnectionClosedError):
            runtime.invoke("smgitops-dev", body)
        assert (front.connections, pauses) == (1, [])
    assert _invocations(cw, ["primary"]) == 2  # served once, its answer lost, not sent again

    with Front(emulator.port, ["foreign-cert"], foreign_cert=foreign) as front:
        runtime, pauses = through(front)
        with pytest.raises(bx.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            runtime.invoke("smgitops-dev", body)
        assert (front.connections, pauses) == (1, [])

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # a port nobody listens on: the connection is refused
    pauses = []
    refused = session.client("sagemaker-runtime", endpoint_url=f"https://127.0.0.1:{port}", config=INVOKE_CONFIG)
    runtime = Runtime(Aws(session, sleep=pauses.append, clients={"sagemaker_runtime": refused}))
    with pytest.raises(bx.EndpointConnectionError):
        runtime.invoke("smgitops-dev", body)
    assert pauses == [0.2, 0.4]
    assert _invocations(cw, ["primary"]) == 2


# ---------------------------------------------------------------------------------------------------------------
# end to end: real Terraform, the emulator, a scratch repository
# ---------------------------------------------------------------------------------------------------------------


def baking() -> dict[str, Any]:
    """The canary bakes its whole window in virtual time (no test waits ten minutes)."""
    from smgitops.clock import VirtualClock

    vc = VirtualClock()
    return {"ctx": Context(clock=vc.now), "canary_sleep": vc.sleep, "canary_timeout": 900}


# Terraform is part of the set-up (conftest stops the run without it): the mark only labels the tests.
terraform_needed = pytest.mark.terraform


class Journey:
    """A scratch repository on a private emulator, and the moves a person makes in it."""

    def __init__(self, repo: Path, stack: Any, trainings: list[str]) -> None:
        self.repo, self.stack, self.trainings = repo, stack, trainings
        self.path = repo / "releases" / "dev.yaml"

    def edit(self, mutate: Any) -> None:
        doc = yaml.safe_load(self.path.read_text())
        mutate(doc)
        self.path.write_text(yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False))

    def commit(self, message: str) -> str:
        sh(self.repo, "add", "releases/dev.yaml")
        sh(self.repo, "commit", "-q", "-m", message)
        return sh(self.repo, "rev-parse", "HEAD")

    def train_and_publish(self, model_ids: list[str]) -> None:
        from smgitops.artifacts import publish_release, store_for
        from smgitops.release import load_release
        from smgitops.training import train_release

        out = self.repo / "out" / "artifacts"
        digests = {r.model_id: r.digest for r in train_release(load_release(self.path), model_ids, out)}
        self.edit(lambda d: [d["models"][m].update(artifact_sha256=h) for m, h in digests.items()])
        release = load_release(self.path)
        assert publish_release(release, store_for(release, Context.for_release(release)), artifact_dir=out).ok

    def commit_v1(self) -> str:
        """v1: the release's first model alone at 100 % (min_invocations 10), trained, published and committed."""

        def v1(doc: dict[str, Any]) -> None:
            model_id = next(iter(doc["models"]))
            doc["models"] = {model_id: doc["models"][model_id]}
            doc["variants"] = [{"name": "primary", "model": model_id, "weight": 100}]
            doc["canary"]["min_invocations"] = 10

        self.edit(v1)
        self.train_and_publish([next(iter(yaml.safe_load(self.path.read_text())["models"]))])
        return self.commit("v1")

    def live(self) -> tuple[str, dict[str, float]]:
        import boto3

        ep = boto3.client("sagemaker", region_name="us-east-1").describe_endpoint(EndpointName="smgitops-dev")
        return ep["EndpointConfigName"], {v["VariantName"]: v["CurrentWeight"] for v in ep["ProductionVariants"]}


# The journeys this process built (repository and trainings, kept beside an emulator snapshot of the same name).
_BUILT: dict[str, tuple[Path, list[str]]] = {}


@contextmanager
def journey_at(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before_v1: Callable[[Journey], None] | None = None,
    *,
    applied: bool = False,
    variant: str = "",
) -> Iterator[Journey]:
    """A scratch repository on the bootstrapped emulator with v1 committed (``before_v1`` edits the release first),
    every training counted in ``Journey.trainings``. The journey fixtures of the end-to-end files start here.
    ``applied``: v1 applied too (``apply_release``; the plan after apply empty). ``variant`` names what
    ``before_v1`` does (journeys with a ``before_v1`` and no ``variant`` are built afresh each time).

    The first such journey of a test process is built for real (training, publishing, Terraform) and kept: the
    emulator's whole state as a snapshot, the repository (git history, trained archives, Terraform working copy)
    and the trainings made on the way. Later ones restore the snapshot and copy the repository: the very state
    the build left, without training or applying again."""
    import atexit
    import tempfile

    from fixtures_terraform import BOOTSTRAPPED, keep_snapshot, kept_snapshot, local_stack, make_scratch_repo
    from smgitops import training

    name = f"journey-v1{f'-{variant}' if variant else ''}-{'applied' if applied else 'committed'}"
    keep = before_v1 is None or bool(variant)
    reuse = keep and name in _BUILT and kept_snapshot(name)
    repo = tmp_path / "repo"
    trainings: list[str] = []
    if reuse:
        shutil.copytree(_BUILT[name][0], repo, symlinks=True)
        trainings.extend(_BUILT[name][1])
    else:
        make_scratch_repo(repo)
    original = training.build_artifact

    def counting(release: Any, model_id: str) -> Any:
        trainings.append(model_id)
        return original(release, model_id)

    monkeypatch.setattr(training, "build_artifact", counting)
    with local_stack(tmp_path, repo_root=repo, snapshot=name if reuse else BOOTSTRAPPED) as stack:
        stack.admin.seed(11)
        j = Journey(repo, stack, trainings)
        if reuse:
            yield j
            return
        if before_v1 is not None:
            before_v1(j)
        j.commit_v1()
        if applied:
            from smgitops.deploy import apply_release
            from smgitops.release import load_release

            _, done = apply_release(release := load_release(j.path), Context.for_release(release))
            assert done.ok and done.plan_after_apply_empty
        if keep:
            kept = Path(tempfile.mkdtemp(prefix=f"smgitops-{name}-")) / "repo"
            atexit.register(shutil.rmtree, kept.parent, True)
            shutil.copytree(repo, kept, symlinks=True)
            _BUILT[name] = (kept, list(trainings))
            keep_snapshot(stack, name)
        yield j


@pytest.fixture()
def journey(tmp_path: Path, git_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Journey]:
    with journey_at(tmp_path, monkeypatch) as j:
        yield j


@pytest.fixture()
def applied_journey(tmp_path: Path, git_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Journey]:
    """v1 committed and applied, the plan after apply empty."""
    with journey_at(tmp_path, monkeypatch, applied=True) as j:
        yield j


@terraform_needed
@pytest.mark.terraform
def test_canary_breach_rolls_back_and_writes_the_revert_branch(journey: Journey) -> None:
    from smgitops.rollout import deploy

    j = journey
    first = deploy(j.path, traffic=20, **baking())
    assert first.ok, first.summary()
    v1_config, v1_weights = j.live()
    assert v1_weights == {"primary": 100.0} and first.plan_after_apply_empty
    v1 = sh(j.repo, "rev-parse", "HEAD")
    assert first.recorded_good == f"smgitops/good/dev/{v1}"
    # the canary's evidence is kept beside the good tag: what RP005 reads when prod is promoted to this digest
    from smgitops.record import read_evidence

    (evidence,) = read_evidence(Git(j.repo), "dev")
    assert evidence["revision"] == v1 and evidence["verdict"] == "pass"
    (served,) = evidence["variants"]
    assert served["digest"] == yaml.safe_load(j.path.read_text())["models"][served["model"]]["artifact_sha256"]
    assert served["invocations"] == first.canary["variants"][0]["invocations"] > 0

    def add_candidate(doc: dict[str, Any]) -> None:
        base_id = next(iter(doc["models"]))
        doc["models"]["candidate-model"] = {**doc["models"][base_id], "seed": 99, "artifact_sha256": "0" * 64}
        doc["variants"] = [
            {"name": "primary", "model": base_id, "weight": 90},
            {"name": "candidate", "model": "candidate-model", "weight": 10},
        ]

    j.edit(add_candidate)
    j.train_and_publish(["candidate-model"])
    bad = j.commit("candidate at 10 %")
    j.trainings.clear()

    def errors_after_smoke(step: Any) -> None:  # the candidate starts failing under load, after its smoke test
        if step.name == "smoke":
            j.stack.admin.inject_fault("smgitops-dev", "candidate", error_rate=0.6)

    # exactly the requests asked for: 240 give the 10 % candidate its 10 invocations with 3 sigma to spare
    result = deploy(j.path, traffic=240, on_step=errors_after_smoke, **baking())
    assert result.traffic is not None and result.traffic["sent"] == 240
    assert sum(result.traffic["by_variant"].values()) + result.traffic["errors"] == 240

    assert not result.ok and result.failed_step == "canary"
    assert "candidate: breach" in result.reason
    assert result.canary is not None
    assert {v["name"]: v["verdict"] for v in result.canary["variants"]} == {"primary": "pass", "candidate": "breach"}
    rb = result.rollback or {}
    assert rb["ok"] and rb["to"] == v1 and rb["how"] == f"last recorded good (tag smgitops/good/dev/{v1})"
    assert rb["plan_after_apply_empty"] is True
    # live: back on v1's configuration and weights, no training on the way
    assert j.live() == (v1_config, {"primary": 100.0})
    assert j.trainings == []
    # Git: the revert branch holds v1's release file on top of the failed commit; main is untouched
    branch = f"smgitops/rollback-dev-{bad[:8]}"
    assert rb["branch"] == branch
    assert sh(j.repo, "show", f"{branch}:releases/dev.yaml") == sh(j.repo, "show", f"{v1}:releases/dev.yaml")
    assert sh(j.repo, "rev-parse", f"{branch}^") == bad
    assert sh(j.repo, "rev-parse", "HEAD") == bad and sh(j.repo, "status", "--porcelain") == ""
    assert f"smgitops/good/dev/{bad}" not in sh(j.repo, "tag", "--list")
    assert "rolled back to" in result.summary() and branch in result.summary()

    # any failure rolls back, not only the canary: an endpoint update that fails (FailureReason) fails the apply
    j.stack.admin.clear_faults()
    j.stack.admin.fail_next_update("smgitops-dev", "Model container failed the ping health check.")
    again = deploy(j.path, traffic=20, **baking())
    assert not again.ok and again.failed_step == "apply"
    assert "ping health check" in again.reason
    assert (again.rollback or {}).get("ok") and (again.rollback or {})["to"] == v1
    assert (again.rollback or {})["branch"] == f"{branch}-2"
    assert "ping health check" in (again.rollback or {})["notes"][0]  # reported, cleared by the next update
    assert j.live() == (v1_config, {"primary": 100.0})
    assert j.trainings == []


@terraform_needed
@pytest.mark.terraform
def test_rollback_trains_nothing_and_refuses_a_missing_artifact(
    applied_journey: Journey, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from smgitops import cli
    from smgitops.deploy import apply_release
    from smgitops.release import load_release

    j = applied_journey
    v1 = sh(j.repo, "rev-parse", "HEAD")
    v1_config, _ = j.live()

    j.edit(lambda d: [v.update(weight=100) for v in d["variants"]] and d["endpoint"].update(instance_count=2))
    j.commit("two instances")
    _, applied = apply_release(release := load_release(j.path), Context.for_release(release))
    assert applied.ok and applied.endpoint_config != v1_config

    j.trainings.clear()
    monkeypatch.chdir(j.repo)
    assert cli.main(["rollback", "releases/dev.yaml", "--to", v1[:10], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["sha"] == v1 and out["plan_after_apply_empty"] is True
    assert out["endpoint_config"] == v1_config and j.live()[0] == v1_config  # the very same configuration name
    assert j.trainings == []

    # a revision whose artifact was never published: refused, named, nothing changed
    missing = "ab" * 32
    j.edit(lambda d: [m.update(artifact_sha256=missing) for m in d["models"].values()])
    never_published = j.commit("a model nobody published")
    assert cli.main(["rollback", "releases/dev.yaml", "--to", never_published]) == 1
    err = capsys.readouterr().err
    assert f"artifact sha256={missing} missing" in err and "never trains" in err
    assert j.live()[0] == v1_config and j.trainings == []

    assert cli.main(["rollback", "releases/dev.yaml", "--to", "no-such-rev"]) == 2
    assert "is not a commit" in capsys.readouterr().err


def _tamper(bucket: str, key: str, data: bytes, *, checksum: bool) -> None:
    """Replace a published archive behind the pipeline's back, as an account administrator can: lift the
    artifact bucket's policy (which refuses rewrites), put other bytes under the same key, put the policy back."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    try:
        extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
        s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)
    finally:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


@terraform_needed
@pytest.mark.terraform
def test_a_tampered_archive_is_refused_by_verify_deploy_and_rollback(
    journey: Journey, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from smgitops import cli, naming
    from smgitops.rollout import deploy

    j = journey
    assert deploy(j.path, traffic=20, **baking()).ok
    v1 = sh(j.repo, "rev-parse", "HEAD")
    live = j.live()
    model_id, spec = next(iter(yaml.safe_load(j.path.read_text())["models"].items()))
    expected = spec["artifact_sha256"]
    key = naming.artifact_key(model_id, expected)
    bucket = j.stack.settings.artifact_bucket
    monkeypatch.chdir(j.repo)

    # other bytes under the same key, carrying S3's SHA-256 checksum of those bytes
    forged = b"not the archive that was trained and published"
    _tamper(bucket, key, forged, checksum=True)
    found = hashlib.sha256(forged).hexdigest()
    assert cli.main(["verify", REL]) == 1  # what is served may already be the forged bytes: drift
    err = capsys.readouterr().out
    assert f"holds sha256 {found}, the release pins sha256 {expected}" in err.replace("\n", "")

    j.edit(lambda d: d["endpoint"].update(instance_count=2))
    j.commit("two instances")
    assert cli.main(["deploy", REL, "--traffic", "20"]) == 2
    err = capsys.readouterr().err
    assert f"s3://{bucket}/{key} holds sha256 {found}, the release pins sha256 {expected}" in err
    assert "Nothing was changed" in err and "ROLLBACK" not in err
    assert j.live() == live  # no apply started, no rollback either

    # again, without a checksum (the bytes are read back and hashed): a rollback refuses it too
    forged = b"another forgery, stored without a SHA-256 checksum"
    _tamper(bucket, key, forged, checksum=False)
    found = hashlib.sha256(forged).hexdigest()
    assert cli.main(["rollback", REL, "--to", v1]) == 2
    err = capsys.readouterr().err
    assert f"s3://{bucket}/{key} holds sha256 {found}, the release pins sha256 {expected}" in err
    assert "not rolled back" in err
    assert j.live() == live
    assert j.trainings == [model_id]  # only the first publish trained


def test_bad_usage_is_exit_2_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from smgitops import cli

    assert cli.main(["deploy", str(tmp_path / "missing.yaml")]) == 2
    assert "no such release file" in capsys.readouterr().err
    assert cli.main(["rollback", str(tmp_path / "missing.yaml"), "--to", "HEAD"]) == 2
    release = tmp_path / "dev.yaml"
    release.write_text("environment: dev\n")
    assert cli.main(["deploy", str(release), "--traffic", "-1"]) == 2
    assert "--traffic" in capsys.readouterr().err
    assert cli.main(["rollback", str(release), "--to", "HEAD"]) == 2  # not in a git repository
    assert "not inside a git repository" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# deploys in order; what Git learns goes through a record (real git)
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def pushed(tmp_path: Path, git_identity: dict[str, str]) -> tuple[Path, Path, list[str]]:
    """A scratch repository with an origin: v1, then a change of the release file, then a README-only commit."""
    from fixtures_terraform import edit_release, make_scratch_repo

    repo = make_scratch_repo(tmp_path / "repo")
    origin = tmp_path / "origin.git"
    sh(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    sh(repo, "remote", "add", "origin", str(origin))
    shas = [sh(repo, "rev-parse", "HEAD")]
    edit_release(repo / REL, lambda d: d["endpoint"].update(instance_count=2))
    sh(repo, "commit", "-q", "-am", "two instances")
    shas.append(sh(repo, "rev-parse", "HEAD"))
    shas.append(commit(repo, {"README.md": "docs\n"}, "docs"))
    sh(repo, "push", "-q", "origin", "main")
    sh(repo, "fetch", "-q", "origin")
    return repo, origin, shas


def test_a_deploy_whose_release_file_is_no_longer_mains_stops(
    pushed: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from smgitops import cli
    from smgitops.errors import CheckFailed, UserError
    from smgitops.rollout import ensure_latest

    repo, _, (v1, v2, docs) = pushed
    git = Git(repo)
    ensure_latest(git, REL, v2, "origin/main")  # main moved on, but not its release file: v2's deploy goes on
    ensure_latest(git, REL, docs, "origin/main")
    with pytest.raises(CheckFailed, match="a newer commit changed it"):
        ensure_latest(git, REL, v1, "origin/main")
    with pytest.raises(UserError, match="not a commit"):
        ensure_latest(git, REL, v1, "origin/no-such-branch")

    # the CLI, from a checkout of the older push (as its delayed run has): exit 1 before any AWS call
    sh(repo, "checkout", "-q", "--detach", v1)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert cli.main(["deploy", REL, "--latest-ref", "origin/main"]) == 1
    err = capsys.readouterr().err
    assert f"{REL} at {v1[:8]} is not the one on origin/main ({docs[:8]})" in err
    assert "its deploy applies it" in err


def _record_for(repo: Path, good: str, failed: str) -> Any:
    from smgitops.rollout import DeployResult

    git = Git(repo)
    branch, revert = write_revert_branch(git, "dev", REL, failed, GoodRevision(good, "test"), "canary breach")
    result = DeployResult(release=REL, environment="dev", revision=failed, reason="canary breach")
    result.rollback = {"ok": True, "to": good, "branch": branch, "commit": revert}
    return result


def test_record_pushes_a_checked_revert_branch_and_opens_one_pull_request(
    pushed: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    from smgitops.record import record, write_record

    repo, origin, (v1, v2, docs) = pushed
    out = tmp_path / "record"
    write_record(Git(repo), _record_for(repo, v1, docs), out)
    assert sorted(p.name for p in out.iterdir()) == ["dev.bundle", "dev.json"]

    job = tmp_path / "job"  # the record job's checkout: the pushed commit, without the deploy job's branch
    sh(tmp_path, "clone", "-q", str(origin), str(job))
    sh(job, "checkout", "-q", "--detach", docs)
    requests: list[Any] = []

    class Response:
        headers: dict[str, str] = {}

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

        def read(self) -> bytes:
            return json.dumps({"number": 9, "html_url": "https://github.invalid/pull/9"}).encode()

    def opener(req: Any) -> Response:
        requests.append(req)
        return Response()

    env = {"GH_TOKEN": "t0ken", "GITHUB_REPOSITORY": "octo/models", "GITHUB_API_URL": "https://api.invalid"}
    done = record(out, Git(job), env=env, opener=opener)
    branch = f"smgitops/rollback-dev-{docs[:8]}"
    assert done == [
        f"dev: pushed refs/heads/{branch}",
        "dev: opened the revert pull request https://github.invalid/pull/9",
    ]
    assert sh(origin, "show", f"{branch}:{REL}") == sh(origin, "show", f"{v1}:{REL}")
    (req,) = requests
    assert req.full_url == "https://api.invalid/repos/octo/models/pulls"
    assert json.loads(req.data)["head"] == branch and json.loads(req.data)["base"] == "main"


@pytest.mark.parametrize("app", ["", "smgitops-revert"], ids=["github-token", "github-app"])
def test_the_revert_pull_request_says_whether_its_checks_run(
    pushed: tuple[Path, Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: str
) -> None:
    """GitHub starts no workflow for a pull request opened with GITHUB_TOKEN: the body then says how to start the
    checks; opened with a GitHub App's installation token (``--app-slug``) it says they run. The CLI, against the
    fake GitHub API over HTTP."""
    from smgitops import cli
    from smgitops.record import write_record
    from support.fake_github import FakeGitHub, serve

    repo, origin, (v1, _, docs) = pushed
    out = tmp_path / "record"
    write_record(Git(repo), _record_for(repo, v1, docs), out)
    job = tmp_path / "job"
    sh(tmp_path, "clone", "-q", str(origin), str(job))
    sh(job, "checkout", "-q", "--detach", docs)
    github = FakeGitHub("octo/models", "ghs_workflow_token")
    token = "ghs_workflow_token"
    if app:
        token = "ghs_installation_token_of_the_app"
        github.tokens[token] = f"{app}[bot]"
    with serve(github) as url:
        monkeypatch.chdir(job)
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        env = {"GH_TOKEN": token, "GITHUB_REPOSITORY": "octo/models", "GITHUB_API_URL": url, "GITHUB_RUN_ID": "77"}
        for k, v in {**env, "GITHUB_SERVER_URL": "https://github.com"}.items():
            monkeypatch.setenv(k, v)
        assert cli.main(["record", str(out), "--app-slug", app]) == 0
    branch = f"smgitops/rollback-dev-{docs[:8]}"
    (pull,) = github.pulls
    assert pull["head"]["ref"] == branch and pull["base"]["ref"] == "main"
    assert pull["user"]["login"] == (f"{app}[bot]" if app else "github-actions[bot]")
    body = pull["body"]
    assert "https://github.com/octo/models/actions/runs/77" in body
    if app:
        assert "Opened by the GitHub App `smgitops-revert`: the plan comment and the checks run" in body
        assert "have not run" not in body
    else:
        assert "The checks have not run" in body and "closing and reopening this pull request" in body
        assert f"git fetch origin {branch} && git switch {branch}" in body
        assert f'git commit --allow-empty -m "Run the checks" && git push origin {branch}' in body
        assert "SMGITOPS_APP_CLIENT_ID" in body and "SMGITOPS_APP_PRIVATE_KEY" in body


def test_record_refuses_a_record_that_does_not_hold(pushed: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    from smgitops.errors import UserError
    from smgitops.record import record, write_record

    repo, origin, (v1, v2, docs) = pushed
    job = tmp_path / "job"
    sh(tmp_path, "clone", "-q", str(origin), str(job))
    sh(job, "checkout", "-q", "--detach", docs)

    # a good tag for another commit than the one checked out
    out = tmp_path / "other-revision"
    from smgitops.rollout import DeployResult

    write_record(Git(repo), DeployResult(REL, "dev", v2, ok=True, recorded_good=good_tag("dev", v2)), out)
    with pytest.raises(UserError, match="is not the commit checked out"):
        record(out, Git(job), env={})

    # a "revert" commit that changes more than the release file
    sh(repo, "checkout", "-q", "-b", "smgitops/rollback-dev-evil", docs)
    evil = commit(repo, {"scripts/payload.sh": "curl evil\n"}, "not a revert")
    sh(repo, "checkout", "-q", "main")
    out = tmp_path / "evil"
    result = DeployResult(REL, "dev", docs, reason="x")
    result.rollback = {"ok": True, "to": v1, "branch": "smgitops/rollback-dev-evil", "commit": evil}
    write_record(Git(repo), result, out)
    with pytest.raises(UserError, match="expected only releases/dev.yaml"):
        record(out, Git(job), env={})
    assert "smgitops/rollback-dev-evil" not in sh(origin, "branch", "--list")  # nothing pushed
