"""``smgitops publish`` against the emulator: content-addressed keys, written once, never overwritten.

Behaviour users depend on: publishing the same artifact again sends nothing; a key that already holds other bytes
is refused and reported (exit 1) and the stored object is left as it was, whether the difference is seen before
the upload (HEAD) or by S3's conditional write (412 PreconditionFailed from ``If-None-Match: *``); bad local input
(missing or mismatching archive) uploads nothing at all and exits 2.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from fixtures_terraform import edit_release
from smgitops import cli, naming
from smgitops.artifacts import ArtifactStore, StoredObject, publish_release
from smgitops.aws import Aws, make_session
from smgitops.release import load_release

BUCKET = "smgitops-artifacts-test"
pytestmark = pytest.mark.usefixtures("emulator")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def session() -> boto3.session.Session:
    sess = make_session("us-east-1")
    sess.client("s3").create_bucket(Bucket=BUCKET)
    return sess


@pytest.fixture()
def put_calls(session: boto3.session.Session) -> list[str]:
    """Keys of every PutObject request the session's clients send (counted by botocore, before the wire)."""
    calls: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["Key"])

    session.events.register("provide-client-params.s3.PutObject", record)
    return calls


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A release with two models (one served, one not) and a local archive for each."""
    root = tmp_path / "repo"
    for name in ("releases", "data"):
        src = Path(__file__).resolve().parents[1] / name
        (root / name).mkdir(parents=True)
        for f in src.iterdir():
            if f.is_file():
                (root / name / f.name).write_bytes(f.read_bytes())
    archives = {"cancer-logreg": b"archive of cancer-logreg v1", "cancer-tree": b"archive of cancer-tree v1"}
    for model_id, data in archives.items():
        path = root / "out" / "artifacts" / model_id / "model.tar.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)

    def mutate(doc: dict[str, Any]) -> None:
        base = doc["models"]["cancer-logreg"]
        doc["models"] = {
            "cancer-logreg": {**base, "artifact_sha256": _digest(archives["cancer-logreg"])},
            "cancer-tree": {
                **base,
                "estimator": "sklearn.linear_model.LogisticRegression",
                "params": {"C": 0.5, "max_iter": 1000},
                "artifact_sha256": _digest(archives["cancer-tree"]),
            },
        }

    edit_release(root / "releases" / "dev.yaml", mutate)
    return root


def _stored(session: boto3.session.Session, key: str) -> bytes:
    body: bytes = session.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def test_publishing_twice_uploads_once(repo: Path, session: boto3.session.Session, put_calls: list[str]) -> None:
    release = load_release(repo / "releases" / "dev.yaml")
    store = ArtifactStore(Aws(session), BUCKET)

    first = publish_release(release, store)
    assert [(o.model, o.status) for o in first.outcomes] == [
        ("cancer-logreg", "published"),
        ("cancer-tree", "published"),  # not served, published all the same (a later release may serve it)
    ]
    assert len(put_calls) == 2
    for model_id, spec in release.models.items():
        key = naming.artifact_key(model_id, spec.artifact_sha256)
        assert _digest(_stored(session, key)) == spec.artifact_sha256
        head = session.client("s3").head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"]  # S3 verified and keeps the checksum the upload carried

    second = publish_release(release, store)
    assert {o.status for o in second.outcomes} == {"already_present"}
    assert len(put_calls) == 2, "an artifact already in the store must not be sent again"
    assert second.ok


def test_existing_key_with_other_bytes_is_refused_and_kept(
    repo: Path, session: boto3.session.Session, put_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    release = load_release(repo / "releases" / "dev.yaml")
    spec = release.models["cancer-logreg"]
    key = naming.artifact_key("cancer-logreg", spec.artifact_sha256)
    session.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"somebody else's bytes")
    put_calls.clear()

    code = cli.main(["publish", str(repo / "releases" / "dev.yaml"), "--json"])

    assert code == 1
    report = json.loads(capsys.readouterr().out)
    outcomes = {a["model"]: a for a in report["artifacts"]}
    assert outcomes["cancer-logreg"]["status"] == "refused"
    assert "different content" in outcomes["cancer-logreg"]["detail"]
    assert outcomes["cancer-tree"]["status"] == "published"  # the other model is not held hostage
    assert (report["published"], report["already_present"], report["refused"]) == (1, 0, 1)
    assert _stored(session, key) == b"somebody else's bytes"
    assert key not in put_calls, "the refused key must not even be sent"


def test_self_declared_digest_metadata_is_not_trusted(
    repo: Path, session: boto3.session.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    """User metadata is whatever the uploader wrote; S3 does not check it. An object without an S3-verified
    checksum whose metadata claims the release's digest is judged by its bytes: other bytes are refused."""
    release = load_release(repo / "releases" / "dev.yaml")
    digest = release.models["cancer-logreg"].artifact_sha256
    key = naming.artifact_key("cancer-logreg", digest)
    session.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"other bytes", Metadata={"sha256": digest})

    assert cli.main(["publish", str(repo / "releases" / "dev.yaml"), "--json"]) == 1
    outcomes = {a["model"]: a for a in json.loads(capsys.readouterr().out)["artifacts"]}
    assert outcomes["cancer-logreg"]["status"] == "refused"
    assert _digest(b"other bytes") in outcomes["cancer-logreg"]["detail"]
    assert _stored(session, key) == b"other bytes"


class _RacingStore(ArtifactStore):
    """A store where another publisher writes other bytes between our HEAD and our PUT."""

    def __init__(self, session: Any, bucket: str, racer: Any) -> None:
        super().__init__(Aws(session), bucket)
        self._racer = racer
        self._raced: set[str] = set()

    def head(self, key: str) -> StoredObject | None:
        if key not in self._raced:
            self._raced.add(key)
            self._racer(key)
            return None  # what we saw just before the other writer's PUT landed
        return super().head(key)


def test_conditional_write_refuses_a_concurrent_different_object(
    repo: Path, session: boto3.session.Session, put_calls: list[str]
) -> None:
    release = load_release(repo / "releases" / "dev.yaml")
    racer_client = make_session("us-east-1").client("s3")

    def race(key: str) -> None:
        racer_client.put_object(Bucket=BUCKET, Key=key, Body=b"written by a concurrent publisher")

    report = publish_release(release, _RacingStore(session, BUCKET, race))

    assert [o.status for o in report.outcomes] == ["refused", "refused"]
    assert all("412 PreconditionFailed" in o.detail for o in report.outcomes)
    assert len(put_calls) == 2  # we did try, with If-None-Match: S3 refused
    for model_id, spec in release.models.items():
        assert _stored(session, naming.artifact_key(model_id, spec.artifact_sha256)) == (
            b"written by a concurrent publisher"
        )
    assert not report.ok


def test_concurrent_publish_of_the_same_bytes_counts_as_present(repo: Path, session: boto3.session.Session) -> None:
    release = load_release(repo / "releases" / "dev.yaml")
    racer_client = make_session("us-east-1").client("s3")

    def race(key: str) -> None:
        model_id = key.split("/")[1]
        data = (repo / "out" / "artifacts" / model_id / "model.tar.gz").read_bytes()
        racer_client.put_object(Bucket=BUCKET, Key=key, Body=data)  # no checksum: read back and hashed

    report = publish_release(release, _RacingStore(session, BUCKET, race))
    assert [o.status for o in report.outcomes] == ["already_present", "already_present"]
    assert report.ok


def test_artifact_already_in_store_needs_no_local_file(repo: Path, session: boto3.session.Session) -> None:
    release = load_release(repo / "releases" / "dev.yaml")
    store = ArtifactStore(Aws(session), BUCKET)
    publish_release(release, store)
    for model_id in release.models:
        (repo / "out" / "artifacts" / model_id / "model.tar.gz").unlink()

    report = publish_release(release, store)
    assert [o.status for o in report.outcomes] == ["already_present", "already_present"]


def test_missing_or_mismatching_local_artifact_uploads_nothing(
    repo: Path, session: boto3.session.Session, put_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "out" / "artifacts" / "cancer-tree" / "model.tar.gz").write_bytes(b"retrained, different bytes")
    (repo / "out" / "artifacts" / "cancer-logreg" / "model.tar.gz").unlink()

    code = cli.main(["publish", str(repo / "releases" / "dev.yaml")])

    assert code == 2
    err = capsys.readouterr().err
    assert "cancer-logreg" in err and "not found" in err and "run smgitops train" in err
    assert "cancer-tree" in err and "the release pins" in err
    assert put_calls == []
    assert session.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_a_trained_archive_the_release_does_not_pin_is_refused_even_when_the_pinned_one_is_stored(
    repo: Path, session: boto3.session.Session, put_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A parameter changed and ``train`` ran, but the digest was not written: the store holds the old archive, so
    "already present" would silently keep serving the old model. Exit 2 with both digests and the fix."""
    release_path = repo / "releases" / "dev.yaml"
    publish_release(load_release(release_path), ArtifactStore(Aws(session), BUCKET))
    put_calls.clear()
    local = repo / "out" / "artifacts" / "cancer-logreg" / "model.tar.gz"
    local.write_bytes(b"cancer-logreg retrained with other parameters")
    pinned = load_release(release_path).models["cancer-logreg"].artifact_sha256

    code = cli.main(["publish", str(release_path)])

    assert code == 2
    err = capsys.readouterr().err
    assert f"cancer-logreg: {local} has sha256 {_digest(local.read_bytes())}, the release pins {pinned}" in err
    assert f"run smgitops train {release_path} --write" in err and "nothing published" in err
    assert "cancer-tree" not in err  # its archive is the pinned one
    assert put_calls == []


def test_publish_from_another_directory(repo: Path, session: boto3.session.Session, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    (repo / "out" / "artifacts").rename(other)
    code = cli.main(["publish", str(repo / "releases" / "dev.yaml"), "--from", str(other), "--json"])
    assert code == 0
    keys = [o["Key"] for o in session.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(keys) == 2 and all(k.startswith("models/") and k.endswith("/model.tar.gz") for k in keys)


def test_verify_artifacts_judges_the_stored_bytes_of_served_models(
    repo: Path, session: boto3.session.Session, get_calls: list[str]
) -> None:
    """What apply, deploy, rollback and verify ask before serving: S3's SHA-256 when stored, else the bytes."""
    from smgitops.artifacts import ArtifactMismatch, require_servable, verify_artifacts
    from smgitops.errors import CheckFailed

    release = load_release(repo / "releases" / "dev.yaml")
    store = ArtifactStore(Aws(session), BUCKET)
    spec = release.models["cancer-logreg"]
    key = naming.artifact_key("cancer-logreg", spec.artifact_sha256)
    [missing] = verify_artifacts(release, store)  # only served models count: cancer-tree has no variant
    assert (missing.model, missing.key, missing.found) == ("cancer-logreg", key, None)
    with pytest.raises(CheckFailed, match="publish first"):
        require_servable(release, store, "dev", "publish first")

    publish_release(release, store)
    assert verify_artifacts(release, store) == []
    assert get_calls == []  # the stored SHA-256 checksum answered: no byte was read

    s3 = session.client("s3")
    s3.delete_object(Bucket=BUCKET, Key=key)  # the test bucket has no policy: a rewrite behind publish's back
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"forged", ChecksumAlgorithm="SHA256")
    [forged] = verify_artifacts(release, store)
    assert forged.found == _digest(b"forged") and forged.expected == spec.artifact_sha256
    assert get_calls == []
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"forged again")  # no SHA-256 stored: the bytes are hashed
    [forged] = verify_artifacts(release, store)
    assert forged.found == _digest(b"forged again") and get_calls == [key]
    with pytest.raises(ArtifactMismatch) as info:
        require_servable(release, store, "dev", "publish first")
    assert info.value.exit_code == 2
    assert f"s3://{BUCKET}/{key} holds sha256 {_digest(b'forged again')}, the release pins sha256" in str(info.value)


@pytest.fixture()
def get_calls(session: boto3.session.Session) -> list[str]:
    calls: list[str] = []
    session.events.register("provide-client-params.s3.GetObject", lambda params, **_: calls.append(params["Key"]))
    return calls


@pytest.fixture(autouse=True)
def _artifact_bucket_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads the bucket from SMGITOPS_ARTIFACT_BUCKET (as in CI) instead of bootstrapping the emulator."""
    monkeypatch.setenv("SMGITOPS_ARTIFACT_BUCKET", BUCKET)
