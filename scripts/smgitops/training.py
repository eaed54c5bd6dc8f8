"""Deterministic training and packaging: ``smgitops train``.

The same release gives a byte-identical ``model.tar.gz`` whatever the machine, ``PYTHONHASHSEED``, time zone,
umask, working directory, file mtimes or clock, as long as the pinned numeric stack (scikit-learn, numpy, scipy,
joblib, Python minor version; all recorded in the manifest) is the same. What makes it so:

* Input: the data file's sha256 is checked against the release before anything else; rows are parsed strictly.
* Randomness: one seed per model drives the stratified train/test split and the estimator's ``random_state``.
* Threads: fitting and scoring run under ``threadpoolctl.threadpool_limits(1)`` (OpenBLAS, OpenMP), so floating
  point reductions do not depend on the number of cores; ``n_jobs`` cannot be set by a release.
* BLAS kernels: OpenBLAS picks its kernels by CPU model (numpy's and scipy's copies even pick differently on the
  same CPU), and kernels round differently: the logistic-regression digest changed with each of Cooperlake,
  SkylakeX, Sandybridge, Nehalem and Prescott kernels, while tree models did not. On x86-64, training therefore
  sets ``OPENBLAS_CORETYPE`` to :data:`OPENBLAS_CORETYPE` (AVX2, on every x86-64 CI runner and laptop of the last
  decade) before numpy is imported, and :func:`check_blas_kernels` refuses to package if a loaded OpenBLAS runs
  other kernels (numpy imported earlier in the same process). Elsewhere (arm64) it warns: digests then match
  only machines of that architecture.
* Archive: entries in sorted order, explicit USTAR format, uid/gid 0, empty owner names, modes 0644/0755, a fixed
  mtime; gzip header without file name and with mtime 0, fixed compression level; JSON with sorted keys and fixed
  separators; ``model.joblib`` is a plain pickle with an explicit protocol the serving image's Python 3.9 reads
  (``joblib.load`` reads plain pickles with any joblib version, while ``joblib.dump``'s own array framing from
  joblib >= 1.2 cannot be read by the joblib 1.1 that scikit-learn 1.2.1 still allows). The archive
  is built in memory and written with an atomic rename.
* zlib: deflate output is only identical between implementations that share zlib's algorithm (zlib-ng, for one,
  compresses differently). :func:`check_zlib` compresses a fixed probe and refuses to package when the result
  is not the canonical one, instead of silently producing a different digest.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import pickle
import re
import sys
import tarfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import estimators
from .errors import ExternalError, UserError
from .files import write_atomic
from .release import Release, load_release

if TYPE_CHECKING:
    from .pinning import Pinned

TARGET_COLUMN = "target"
TEST_SIZE = 0.25
METRIC_DECIMALS = 6
PICKLE_PROTOCOL = 4  # readable by Python >= 3.4; the serving image runs 3.9
GZIP_LEVEL = 9
ARCHIVE_MTIME = 315532800  # 1980-01-01T00:00:00Z: fixed, and not 0 (some tar versions warn on 1970 timestamps)
FILE_MODE = 0o644
DIR_MODE = 0o755
MANIFEST_FORMAT = "smgitops.model/1"
# OpenBLAS kernel family used for training everywhere (x86-64, AVX2): set before numpy loads OpenBLAS.
OPENBLAS_CORETYPE = "Haswell"
INFERENCE_SOURCE = Path(__file__).resolve().parent / "serving" / "inference.py"
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# sha256 of zlib level-9 raw deflate of _zlib_probe(): what canonical zlib (1.2.x, 1.3.x) produces.
_ZLIB_PROBE_SHA256 = "a5241b625fa639e360b3efcf78666f1237e82251a9f449c75f008c8c258480d1"


@dataclass(frozen=True)
class TrainResult:
    model_id: str
    digest: str  # sha256 of model.tar.gz
    path: Path
    metrics: dict[str, float]
    manifest: dict[str, Any]
    expected: str = ""  # the release's artifact_sha256
    size: int = 0
    warnings: tuple[str, ...] = ()  # what the estimator warned about while fitting (e.g. no convergence)

    @property
    def matches(self) -> bool:
        return self.digest == self.expected

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "digest": self.digest,
            "expected": self.expected,
            "matches": self.matches,
            "path": str(self.path),
            "size": self.size,
            "metrics": dict(self.metrics),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Dataset:
    features: list[str]
    rows: list[list[float]] = field(repr=False)
    target: list[int] = field(repr=False)


def artifact_path(out_dir: Path, model_id: str) -> Path:
    """Where the archive of ``model_id`` is written under ``out_dir`` (``publish`` reads it from there)."""
    return Path(out_dir) / model_id / "model.tar.gz"


def default_out_dir(release: Release) -> Path:
    return release.repo_root / "out" / "artifacts"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------------------


def _field(model_id: str, name: str) -> str:
    return f"models.{model_id}.{name}"


def read_data(release: Release, model_id: str) -> bytes:
    """The model's data file, checked to lie inside the repository and to match the release's sha256.

    The bytes that were hashed are the bytes that get parsed: a file changed after validation cannot slip in.
    """
    spec = release.models[model_id]
    root = release.repo_root.resolve()
    path = (root / spec.data.path).resolve()
    where = f"{release.path}: {_field(model_id, 'data.path')}"
    if not path.is_relative_to(root):
        raise UserError(f"{where}: {spec.data.path} is outside the repository {root}")
    if not path.is_file():
        raise UserError(f"{where}: {spec.data.path} does not exist (looked for {path})")
    data = path.read_bytes()
    actual = sha256_bytes(data)
    if actual != spec.data.sha256:
        raise UserError(
            f"{release.path}: {_field(model_id, 'data.sha256')}: {spec.data.path} has sha256 {actual}, "
            f"the release pins {spec.data.sha256}"
        )
    return data


def parse_dataset(data: bytes, name: str) -> Dataset:
    """Parse a CSV with a header, numeric feature columns and an integer ``target`` column last."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{name}: not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"{name}:1: empty file, expected a header line") from None
    except csv.Error as exc:
        raise UserError(f"{name}:1: {exc}") from None
    if len(header) < 2 or header[-1] != TARGET_COLUMN:
        raise UserError(f"{name}:1: the last column must be {TARGET_COLUMN!r} (got {header[-1:]})")
    if len(set(header)) != len(header):
        raise UserError(f"{name}:1: duplicate column names")
    n = len(header)
    rows: list[list[float]] = []
    target: list[int] = []
    try:
        for record in reader:
            line = reader.line_num
            if len(record) != n:
                raise UserError(f"{name}:{line}: {len(record)} values, the header has {n} columns")
            values: list[float] = []
            for col, cell in zip(header[:-1], record[:-1], strict=True):
                try:
                    value = float(cell)
                except ValueError:
                    raise UserError(f"{name}:{line}: column {col}: {cell!r} is not a number") from None
                if value != value or value in (float("inf"), float("-inf")):
                    raise UserError(f"{name}:{line}: column {col}: {cell!r} is not a finite number")
                values.append(value)
            try:
                label = int(record[-1])
            except ValueError:
                raise UserError(f"{name}:{line}: column {TARGET_COLUMN}: {record[-1]!r} is not an integer") from None
            rows.append(values)
            target.append(label)
    except csv.Error as exc:
        raise UserError(f"{name}:{reader.line_num}: {exc}") from None
    if len(set(target)) < 2:
        raise UserError(f"{name}: column {TARGET_COLUMN} needs at least two classes")
    return Dataset(features=header[:-1], rows=rows, target=target)


def build_estimator(release: Release, model_id: str) -> Any:
    spec = release.models[model_id]
    where = f"{release.path}: {_field(model_id, 'estimator')}"
    try:
        cls = estimators.estimator_class(spec.estimator)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None
    accepted = estimators.accepted_params(spec.estimator)
    unknown = sorted(set(spec.params) - accepted)
    if unknown:
        raise UserError(
            f"{release.path}: {_field(model_id, 'params')}: {spec.estimator} does not take {', '.join(unknown)} "
            f"(accepted: {', '.join(sorted(accepted))})"
        )
    params = dict(spec.params)
    if estimators.has_random_state(spec.estimator):
        params["random_state"] = spec.seed
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{release.path}: {_field(model_id, 'params')}: {exc}") from None


# --------------------------------------------------------------------------------------------------------------
# Determinism helpers
# --------------------------------------------------------------------------------------------------------------


def _is_x86_64() -> bool:
    import platform

    return platform.machine().lower() in ("x86_64", "amd64")


def pin_blas_kernels() -> None:
    """Pin OpenBLAS's kernel family on x86-64; effective only if numpy/scipy have not loaded OpenBLAS yet.

    The pin overrides an ``OPENBLAS_CORETYPE`` already in the environment: the kernel family is part of what a
    digest means, like the library versions. :func:`check_blas_kernels` verifies that it took effect.
    """
    if _is_x86_64():
        os.environ["OPENBLAS_CORETYPE"] = OPENBLAS_CORETYPE


def check_blas_kernels() -> list[str]:
    """Raise when a loaded OpenBLAS runs other kernels than the pinned family (digests would differ).

    Returns warnings for machines where no pin is possible (not x86-64: digests differ from x86-64 ones).
    """
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    if not _is_x86_64():
        return [
            f"BLAS kernels are not pinned on {os.uname().machine}: digests match those of other machines of "
            "this architecture only, not the x86-64 digests releases normally pin"
        ]
    wrong = sorted(
        {
            f"{info.get('filepath')} ({info.get('architecture')})"
            for info in threadpool_info()
            if info.get("internal_api") == "openblas"
            and str(info.get("architecture", "")).lower() != OPENBLAS_CORETYPE.lower()
        }
    )
    if wrong:
        raise ExternalError(
            f"OpenBLAS runs other kernels than the pinned {OPENBLAS_CORETYPE} family ({', '.join(wrong)}), so the "
            f"digests would depend on this CPU. numpy was loaded before training could pin them: start the process "
            f"with OPENBLAS_CORETYPE={OPENBLAS_CORETYPE} (smgitops train does this itself)"
        )
    return []


@contextmanager
def single_threaded() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _zlib_probe() -> bytes:
    """64 KiB of fixed, partly repetitive bytes (a linear congruential generator over a small alphabet)."""
    state = 12345
    out = bytearray()
    alphabet = b"0123456789.,-\nabcdef"
    while len(out) < 65536:
        state = (1103515245 * state + 12345) % 2**31
        out.append(alphabet[(state >> 16) % len(alphabet)])
        if state % 7 == 0:
            out += out[-32:]
    return bytes(out[:65536])


def zlib_probe_digest() -> str:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
    return sha256_bytes(compressor.compress(_zlib_probe()) + compressor.flush())


def check_zlib() -> None:
    """Refuse to package with a zlib whose deflate output differs from canonical zlib's (digests would differ)."""
    if zlib_probe_digest() != _ZLIB_PROBE_SHA256:
        raise ExternalError(
            f"this Python's zlib ({zlib.ZLIB_RUNTIME_VERSION}) compresses differently from canonical zlib, so "
            "model.tar.gz digests would not match the release; run with a Python linked against zlib 1.2/1.3"
        )


# --------------------------------------------------------------------------------------------------------------
# Packaging
# --------------------------------------------------------------------------------------------------------------


def json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2, separators=(",", ": "), ensure_ascii=True) + "\n").encode()


def inference_source() -> bytes:
    """``serving/inference.py`` with LF line endings (a CRLF checkout must not change the digest)."""
    return INFERENCE_SOURCE.read_bytes().replace(b"\r\n", b"\n")


def pack(files: dict[str, bytes]) -> bytes:
    """A reproducible ``.tar.gz`` of ``files`` (archive path -> content); parent directories get entries too."""
    dirs = {str(Path(name).parent) for name in files if "/" in name}
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in dirs] + list(files.items())
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = ARCHIVE_MTIME
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = DIR_MODE
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = FILE_MODE
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=GZIP_LEVEL) as gz:
        gz.write(tar_buffer.getvalue())
    return out.getvalue()


def library_versions() -> dict[str, str]:
    import joblib
    import numpy
    import scipy
    import sklearn

    return {
        "joblib": joblib.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "scipy": scipy.__version__,
    }


# --------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------


def _check_model_id(release: Release, model_id: str) -> None:
    if model_id not in release.models:
        known = ", ".join(release.models) or "none"
        raise UserError(f"{release.path}: no model {model_id!r} under models (defined: {known})")
    if not _MODEL_ID.match(model_id):
        raise UserError(f"{release.path}: models.{model_id}: a model id is letters, digits, '.', '_' and '-'")


def _metrics(model: Any, x_test: Any, y_test: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    predicted = model.predict(x_test)
    average = "binary" if len(model.classes_) == 2 else "macro"
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), METRIC_DECIMALS),
        "f1": round(float(f1_score(y_test, predicted, average=average)), METRIC_DECIMALS),
    }
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x_test)
        if len(model.classes_) == 2:
            auc = roc_auc_score(y_test, proba[:, 1])
        else:
            auc = roc_auc_score(y_test, proba, multi_class="ovr")
        metrics["roc_auc"] = round(float(auc), METRIC_DECIMALS)
    return metrics


@dataclass(frozen=True)
class Artifact:
    archive: bytes
    manifest: dict[str, Any]
    warnings: tuple[str, ...]


def build_artifact(release: Release, model_id: str) -> Artifact:
    """Train ``model_id`` and return the archive bytes and its manifest (nothing written)."""
    _check_model_id(release, model_id)
    spec = release.models[model_id]
    dataset = parse_dataset(read_data(release, model_id), spec.data.path)
    model = build_estimator(release, model_id)
    check_zlib()
    pin_blas_kernels()

    import numpy as np
    from sklearn.model_selection import train_test_split

    x = np.asarray(dataset.rows, dtype=np.float64)
    y = np.asarray(dataset.target, dtype=np.int64)
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=TEST_SIZE, stratify=y, random_state=spec.seed
        )
    except ValueError as exc:
        raise UserError(f"{spec.data.path}: cannot split the data for {model_id}: {exc}") from None
    with single_threaded(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(x_train, y_train)
        except (TypeError, ValueError) as exc:
            # scikit-learn validates parameter values when fitting (its InvalidParameterError is a ValueError).
            raise UserError(f"{release.path}: {_field(model_id, 'params')}: {spec.estimator}: {exc}") from None
        metrics = _metrics(model, x_test, y_test)
    notes = check_blas_kernels() + [" ".join(str(w.message).split()) for w in caught]
    fit_warnings = tuple(dict.fromkeys(notes))

    model_bytes = pickle.dumps(model, protocol=PICKLE_PROTOCOL)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "model_id": model_id,
        "data": {"path": spec.data.path, "sha256": spec.data.sha256, "rows": len(dataset.rows)},
        "split": {
            "method": "sklearn.model_selection.train_test_split",
            "stratify": TARGET_COLUMN,
            "test_size": TEST_SIZE,
            "random_state": spec.seed,
            "train_rows": int(len(y_train)),
            "test_rows": int(len(y_test)),
        },
        "estimator": spec.estimator,
        "params": dict(sorted(spec.params.items())),
        "seed": spec.seed,
        "features": dataset.features,
        "classes": [int(c) for c in model.classes_],
        "metrics": metrics,
        "libraries": library_versions(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "pickle_protocol": PICKLE_PROTOCOL,
    }
    archive = pack(
        {
            "code/inference.py": inference_source(),
            "manifest.json": json_bytes(manifest),
            "model.joblib": model_bytes,
        }
    )
    return Artifact(archive, manifest, fit_warnings)


def train_model(release: Release, model_id: str, out_dir: Path | None = None) -> TrainResult:
    """Train and package one model; write ``artifact_path(out_dir, model_id)`` atomically."""
    artifact = build_artifact(release, model_id)
    path = artifact_path(out_dir if out_dir is not None else default_out_dir(release), model_id)
    write_atomic(path, artifact.archive, mode=FILE_MODE)
    return TrainResult(
        model_id=model_id,
        digest=sha256_bytes(artifact.archive),
        path=path,
        metrics=dict(artifact.manifest["metrics"]),
        manifest=artifact.manifest,
        expected=release.models[model_id].artifact_sha256,
        size=len(artifact.archive),
        warnings=artifact.warnings,
    )


def train_release(
    release: Release, model_ids: Sequence[str] | None = None, out_dir: Path | None = None
) -> list[TrainResult]:
    """Train the given models (default: every model of the release, in release order)."""
    ids = list(model_ids) if model_ids else list(release.models)
    unknown = [m for m in ids if m not in release.models]
    if unknown:
        known = ", ".join(release.models) or "none"
        raise UserError(f"{release.path}: no model {', '.join(map(repr, unknown))} under models (defined: {known})")
    for model_id in ids:
        _check_model_id(release, model_id)
    return [train_model(release, model_id, out_dir) for model_id in dict.fromkeys(ids)]


def read_release(path: Path, *, digest_optional: bool = False) -> Release:
    """The release at ``path`` for training; an unreadable one is a :class:`UserError` naming the file."""
    if not path.is_file():
        raise UserError(f"{path}: release file not found")
    try:
        return load_release(path, digest_optional=digest_optional)
    except UserError:
        raise
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # Until the strict loader reports located problems, a missing or mistyped field surfaces here.
        raise UserError(f"{path}: cannot read the release: {type(exc).__name__}: {exc}") from None


def train_and_write(
    path: Path, model_ids: Sequence[str] | None = None, out_dir: Path | None = None
) -> tuple[list[TrainResult], list[Pinned]]:
    """``smgitops train RELEASE --write``: train (a model may lack ``artifact_sha256``), then write each digest
    the release does not pin yet into the file (:mod:`smgitops.pinning`: that value or line only). The results'
    ``expected`` is what the file pins afterwards. A file edited while training ran is left alone (UserError)."""
    from .pinning import pin_file

    before = path.read_bytes() if path.is_file() else None
    results = train_release(read_release(path, digest_optional=True), model_ids, out_dir)
    mismatched = {r.model_id: r.digest for r in results if not r.matches}
    written = pin_file(path, mismatched, expected_bytes=before) if mismatched else []
    return [replace(r, expected=r.digest) for r in results], written
