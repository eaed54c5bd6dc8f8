"""``smgitops publish``: put trained artifacts into the content-addressed store, never overwriting anything.

Key of an artifact: ``s3://<artifact-bucket>/models/<model-id>/sha256=<digest>/model.tar.gz``
(:func:`smgitops.naming.artifact_key`). A key names exactly one content, so publishing is idempotent:

* the key is first looked up (``HeadObject``): present with the same SHA-256 → *already present*, nothing is sent;
  present with other content → *refused* (the store is never "repaired" by overwriting);
* absent → ``PutObject`` with ``If-None-Match: *`` and the SHA-256 checksum (S3 verifies the bytes it receives
  and keeps the checksum). If another writer got there first, S3 answers ``412 PreconditionFailed``: the object
  is then re-read, and the upload counts as *already present* when the content is the same, *refused* otherwise.

Every model of the release is published, served or not (a rollback may need it later). Before anything is sent,
every local artifact that has to be uploaded must exist and hash to the release's ``artifact_sha256``; otherwise
nothing is uploaded and the command exits 2 ("run smgitops train"). A model whose artifact is already in the store
needs no local file.

Exit codes: 0 everything published or already present; 1 something was refused; 2 bad input.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import naming
from .errors import CheckFailed, UserError
from .files import CHUNK, sha256_file
from .release import Release

if TYPE_CHECKING:
    from .aws import Aws
    from .context import Context

Status = Literal["published", "already_present", "refused"]


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def _hex(b64_digest: str) -> str | None:
    try:
        raw = base64.b64decode(b64_digest, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


# -- the typed S3 wrapper ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str | None  # hex, as S3 verified it on upload; None when the object carries no whole-object checksum


class ArtifactMismatch(UserError):
    """A stored archive's SHA-256 is not the release's: exit 2, nothing served or changed."""


class AlreadyExists(Exception):
    """``PutObject`` with ``If-None-Match: *`` found the key taken (HTTP 412 PreconditionFailed)."""


class ArtifactStore:
    """The artifact bucket, through the S3 client of an injected :class:`smgitops.aws.Aws`."""

    def __init__(self, aws: Aws, bucket: str) -> None:
        self.bucket = bucket
        self._s3 = aws.s3

    def head(self, key: str) -> StoredObject | None:
        """The object's size and SHA-256 as S3 keeps them, or None when the key does not exist.

        Only S3's own checksum counts: user metadata is whatever the uploader wrote and S3 never checks it."""
        from botocore.exceptions import ClientError

        try:
            resp = self._s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _external("HeadObject", self.bucket, key, exc) from exc
        sha: str | None = None
        checksum = resp.get("ChecksumSHA256")
        if isinstance(checksum, str) and "-" not in checksum:  # "-N" marks a composite multipart checksum
            sha = _hex(checksum)
        return StoredObject(key=key, size=int(resp.get("ContentLength", 0)), sha256=sha)

    def content_sha256(self, key: str) -> str:
        """SHA-256 of the stored bytes, read back (for objects that carry no checksum)."""
        from botocore.exceptions import ClientError

        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            raise _external("GetObject", self.bucket, key, exc) from exc
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def read(self, key: str) -> bytes | None:
        """The stored bytes of ``key`` (None when it does not exist)."""
        from botocore.exceptions import ClientError

        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _external("GetObject", self.bucket, key, exc) from exc
        data: bytes = body.read()
        return data

    def put_new(self, key: str, path: Path, sha256: str) -> None:
        """Create ``key`` from ``path``; raises :class:`AlreadyExists` if the key exists (never overwrites)."""
        from botocore.exceptions import ClientError

        with path.open("rb") as body:
            try:
                self._s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64(sha256),
                    ContentType="application/gzip",
                    Metadata={"sha256": sha256},
                )
            except ClientError as exc:
                if _status(exc) == 412 or _code(exc) == "PreconditionFailed":
                    raise AlreadyExists(key) from exc
                raise _external("PutObject", self.bucket, key, exc) from exc

    def exists(self, key: str) -> bool:
        return self.head(key) is not None


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _external(op: str, bucket: str, key: str, exc: Any) -> Exception:
    from .errors import ExternalError

    message = exc.response.get("Error", {}).get("Message", "")
    return ExternalError(f"S3 {op} s3://{bucket}/{key}: {_code(exc) or _status(exc)}: {message}")


# -- publishing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    model: str
    digest: str
    key: str
    status: Status
    detail: str = ""
    bytes: int = 0


@dataclass
class PublishReport:
    bucket: str
    outcomes: list[Outcome] = field(default_factory=list)

    def by_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.by_status("refused")

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "ok": self.ok,
            "published": len(self.by_status("published")),
            "already_present": len(self.by_status("already_present")),
            "refused": len(self.by_status("refused")),
            "artifacts": [asdict(o) for o in self.outcomes],
        }


def default_artifact_dir(release: Release) -> Path:
    return release.repo_root / "out" / "artifacts"


def local_artifact_path(out_dir: Path, model_id: str) -> Path:
    """Where ``smgitops train`` leaves a model's archive (``training.artifact_path`` when available)."""
    try:
        training = importlib.import_module("smgitops.training")
    except ImportError:
        training = None
    artifact_path = getattr(training, "artifact_path", None)
    if artifact_path is None:
        return out_dir / model_id / "model.tar.gz"
    return Path(artifact_path(out_dir, model_id))


def _refusal(actual: str, digest: str) -> str:
    return (
        f"s3 object exists with different content (sha256 {actual}, expected {digest}); "
        "a published artifact is never overwritten"
    )


def _stored_digest(store: ArtifactStore, stored: StoredObject) -> str:
    return stored.sha256 if stored.sha256 is not None else store.content_sha256(stored.key)


def stale_archive_problems(release: Release, out_dir: Path) -> list[str]:
    """One line per model whose trained archive in ``out_dir`` does not hash to the release's ``artifact_sha256``:
    the release pins another training than the one in ``out/`` (a parameter changed, the digest was not written)."""
    problems = []
    for model_id, spec in release.models.items():
        local = local_artifact_path(out_dir, model_id)
        if not local.is_file():
            continue
        local_digest = sha256_file(local)
        if local_digest != spec.artifact_sha256:
            problems.append(
                f"{model_id}: {local} has sha256 {local_digest}, the release pins {spec.artifact_sha256} "
                f"(models.{model_id}.artifact_sha256): run smgitops train {release.path} --write to pin what "
                "training produces"
            )
    return problems


def refuse_stale_archives(release: Release, out_dir: Path, what: str) -> None:
    """Raise UserError (exit 2) when :func:`stale_archive_problems` finds any: ``what`` says what was not done."""
    problems = stale_archive_problems(release, out_dir)
    if problems:
        raise UserError(
            f"{release.path}: {what}: an archive in {out_dir} is not the release's:\n  " + "\n  ".join(problems)
        )


def publish_release(release: Release, store: ArtifactStore, *, artifact_dir: Path | None = None) -> PublishReport:
    """Publish every model of ``release`` to ``store``. Raises UserError (nothing uploaded) on bad local input,
    including a trained archive that is not the release's (:func:`stale_archive_problems`), even when the store
    already holds the pinned one: the release would serve a model other than the one just trained."""
    out_dir = artifact_dir or default_artifact_dir(release)
    report = PublishReport(bucket=store.bucket)
    to_upload: list[tuple[str, str, str, Path]] = []
    problems = stale_archive_problems(release, out_dir)
    for model_id, spec in release.models.items():
        if any(p.startswith(f"{model_id}: ") for p in problems):
            continue
        digest = spec.artifact_sha256
        key = naming.artifact_key(model_id, digest)
        stored = store.head(key)
        if stored is not None:
            actual = _stored_digest(store, stored)
            if actual == digest:
                report.outcomes.append(Outcome(model_id, digest, key, "already_present", "", stored.size))
            else:
                report.outcomes.append(Outcome(model_id, digest, key, "refused", _refusal(actual, digest), stored.size))
            continue
        local = local_artifact_path(out_dir, model_id)
        if not local.is_file():
            problems.append(f"{model_id}: {local} not found and not in the store: run smgitops train")
            continue
        to_upload.append((model_id, digest, key, local))
    if problems:
        raise UserError(f"{release.path}: nothing published:\n  " + "\n  ".join(problems))
    for model_id, digest, key, local in to_upload:
        size = local.stat().st_size
        try:
            store.put_new(key, local, digest)
        except AlreadyExists:
            # Someone published this key between our lookup and our write.
            again = store.head(key)
            if again is not None and _stored_digest(store, again) == digest:
                report.outcomes.append(
                    Outcome(model_id, digest, key, "already_present", "published concurrently", size)
                )
            else:
                detail = "412 PreconditionFailed: the key exists with different content; nothing overwritten"
                report.outcomes.append(Outcome(model_id, digest, key, "refused", detail, size))
            continue
        report.outcomes.append(Outcome(model_id, digest, key, "published", "", size))
    return report


# -- verifying what is served ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactProblem:
    """A served model whose stored archive is not the release's: missing (``found`` None) or other bytes."""

    model: str
    key: str
    expected: str
    found: str | None

    def describe(self, bucket: str) -> str:
        where = f"s3://{bucket}/{self.key}"
        if self.found is None:
            return f"model {self.model}: artifact sha256={self.expected} missing ({where})"
        return (
            f"model {self.model}: {where} holds sha256 {self.found}, the release pins sha256 {self.expected} "
            "(the stored archive is not the one that was published)"
        )


def verify_artifacts(release: Release, store: ArtifactStore) -> list[ArtifactProblem]:
    """Check the stored archive of every *served* model against the release's ``artifact_sha256``.

    The digest is S3's full-object ``ChecksumSHA256`` (``HeadObject`` with ``ChecksumMode=ENABLED``; ``publish``
    uploads with it) when the object carries one, else the SHA-256 of the bytes read back. Never the key alone and
    never user metadata: the key only names what *should* be there. Returns the problems (empty: all servable).
    Every consumer (plan, apply, deploy, rollback, verify) asks this one function."""
    problems: list[ArtifactProblem] = []
    for model_id, spec in release.served_models().items():
        key = naming.artifact_key(model_id, spec.artifact_sha256)
        stored = store.head(key)
        found = None if stored is None else _stored_digest(store, stored)
        if found != spec.artifact_sha256:
            problems.append(ArtifactProblem(model_id, key, spec.artifact_sha256, found))
    return problems


def require_servable(release: Release, store: ArtifactStore, label: str, advice: str) -> None:
    """Raise unless :func:`verify_artifacts` finds nothing: other bytes under a key is exit 2 (nothing is served
    from a store that does not hold what the release pins), a missing archive exit 1 (``advice`` says what to do)."""
    problems = verify_artifacts(release, store)
    if not problems:
        return
    listed = "; ".join(p.describe(store.bucket) for p in problems)
    if any(p.found is not None for p in problems):
        raise ArtifactMismatch(f"{label}: not served: {listed}. Nothing was changed.")
    raise CheckFailed(f"{label}: {listed}. {advice}")


def missing_artifacts(release: Release, store: ArtifactStore) -> list[tuple[str, str]]:
    """(model id, key) of every *served* model whose artifact is not in the store."""
    return [(p.model, p.key) for p in verify_artifacts(release, store) if p.found is None]


def store_for(release: Release, ctx: Context) -> ArtifactStore:
    """The artifact store of a release's account: bootstrap outputs in local mode, else the env settings
    (:attr:`smgitops.context.Context.artifact_bucket`)."""
    return ArtifactStore(ctx.aws, ctx.artifact_bucket)
