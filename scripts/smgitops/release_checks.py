"""The checks of a release file (``smgitops validate``, and every command that loads a release): the size limit,
then the JSON Schema, then the semantic checks, over the plain values :mod:`smgitops.yamlload` read strictly.

The JSON Schema ``releases/release.schema.json`` (Draft 2020-12, every error reported, with integers strict:
``true`` and ``1.0`` are not integers); then the checks that need more than a schema: weights summing to
100, unique variant names, variants' models defined, data files inside the repository with matching sha256,
estimators and their parameters, the instance-type and region allowlists, the time zone, the image's scikit-learn
version. A release file is at most 1 MiB (checked before parsing) and its top level is a mapping. Every problem
carries the file (as given), 1-based line and column, and a dotted field path. Nothing here calls AWS or imports
botocore; scikit-learn is imported only to check a model's parameters, through :mod:`smgitops.estimators`.
:func:`smgitops.release.load_release` turns a document that passed into the typed release.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ExternalError, Problem
from .files import sha256_file
from .naming import RELEASE_DIR, release_file_problem
from .paths import PACKAGE_DIR, repo_root_for, verdict_dir
from .yamlload import INVALID, FieldPath, Reporter, decode, describe, parse

# ---------------------------------------------------------------------------------------------------------------
# Limits and allowlists
# ---------------------------------------------------------------------------------------------------------------

MAX_FILE_BYTES = 1024 * 1024  # a release is a few kilobytes; anything near this is a mistake or an attack
# Names compared for "did you mean" hints per file (difflib, tens of microseconds each): a release needs a few
# hundred (about 600 for a time zone); a file of thousands of unknown references gets the first hints only.
SUGGESTION_BUDGET = 10_000
# Models whose parameters are test-fitted on a synthetic sample per file (up to about 30 ms of CPU each, more on a
# busy machine): a release has a few models; sixty at the training budget took 1.8 s of CPU. Training checks the
# parameters of the others.
MAX_PROBE_FITS = 5

SCHEMA_PATH = PACKAGE_DIR.parents[1] / "releases" / "release.schema.json"

# Cost safety: instance types a release may use. SMGITOPS_ALLOWED_INSTANCE_TYPES (comma-separated) replaces the list.
# The two smallest CPU types SageMaker hosts real-time endpoints on: a scikit-learn model of this size fits in
# ml.t2.medium's 4 GiB at half ml.t2.large's price; ml.t2.large (8 GiB) is the default for heavier models. No ml.t3:
# SageMaker does not host endpoints on them (see HOSTING_UNAVAILABLE_FAMILIES).
DEFAULT_ALLOWED_INSTANCE_TYPES: tuple[str, ...] = ("ml.t2.medium", "ml.t2.large")
INSTANCE_TYPES_ENV = "SMGITOPS_ALLOWED_INSTANCE_TYPES"
# Instance families SageMaker offers for notebooks and Studio but not for real-time endpoints: the API's
# ProductionVariantInstanceType (botocore 1.44.8) lists no ml.t3.* type and hashicorp/aws 3.39 refuses them at plan.
# Refused whatever the allowlist says, with the hosting type to use instead.
HOSTING_UNAVAILABLE_FAMILIES: dict[str, str] = {"ml.t3": "ml.t2"}
HOSTING_FALLBACK_TYPE = "ml.t2.large"
_T2_SIZES = ("medium", "large", "xlarge", "2xlarge")
ALLOWED_REGIONS: tuple[str, ...] = ("us-east-1",)

# Zone files that are not IANA zone names.
_NOT_IANA_ZONES = {"localtime", "posixrules", "Factory"}


def allowed_instance_types() -> tuple[str, ...]:
    """The instance-type allowlist: the default, or the comma-separated ``SMGITOPS_ALLOWED_INSTANCE_TYPES``."""
    env = os.environ.get(INSTANCE_TYPES_ENV, "")
    types = tuple(t.strip() for t in env.split(",") if t.strip())
    return types or DEFAULT_ALLOWED_INSTANCE_TYPES


class _Reporter(Reporter):
    """The located problems of one release file, and what its checks may still spend and will keep."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.suggestion_budget = SUGGESTION_BUDGET
        self.probe_fits = 0
        self.passed: list[Path | None] = []  # parameter verdicts to keep once the file is checked
        self.digest_optional = False  # `train --write`: a model may lack artifact_sha256 (it is about to be written)


# ---------------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExternalError(
            f"the release schema is missing at {SCHEMA_PATH}: smgitops runs from its checkout (pip install -e .)"
        ) from None
    return loaded


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema import validators as _validators

    validators: Any = _validators  # extend() is untyped in the stubs

    # Strict integers: JSON Schema counts 1.0 as an integer; a release does not (weights, counts, seeds).
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    cls = validators.extend(Draft202012Validator, type_checker=checker)
    return cls(_schema())


_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _did_you_mean(word: str, choices: Iterable[str], rep: _Reporter) -> str:
    """``; did you mean 'x'?`` for the closest choice, while the file's budget of comparisons lasts."""
    options = list(choices)
    if rep.suggestion_budget < len(options):
        return ""
    rep.suggestion_budget -= len(options)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _checked_schema(doc: dict[str, Any], rep: _Reporter) -> None:
    """The schema's problems; a document that passed before (same content, schema and jsonschema) is not checked
    again: importing jsonschema and checking cost about 0.25 s of every command that loads the release. The
    verdict is kept beside the parameters' (:func:`smgitops.paths.verdict_dir`); problems never are."""
    from . import estimators

    try:
        doc_hash = hashlib.sha256(
            "\n".join(
                [
                    repr(doc),
                    repr(rep.digest_optional),
                    SCHEMA_PATH.read_text(encoding="utf-8"),
                    estimators.installed("jsonschema"),
                ]
            ).encode()
        ).hexdigest()
        kept: Path | None = verdict_dir() / f"schema-{doc_hash}"
    except (OSError, ValueError):
        kept = None
    if estimators.passed_before(kept):
        return
    before = len(rep.problems)
    _schema_problems(doc, rep)
    if len(rep.problems) == before:
        rep.passed.append(kept)


def _schema_problems(doc: Any, rep: _Reporter) -> None:
    for err in _validator().iter_errors(doc):
        path: FieldPath = tuple(err.absolute_path)
        kind = err.validator
        schema = err.schema if isinstance(err.schema, dict) else {}
        if len(path) == 3 and path[0] == "models" and path[2] == "artifact_sha256" and err.instance in (None, ""):
            if not rep.digest_optional:  # left empty for `train --write` to fill, as a missing field is
                rep.at(path, f"empty; `smgitops train {rep.label} --write` trains the model and writes it", key=True)
            continue
        if "propertyNames" in err.relative_schema_path:
            name = str(err.instance)
            msg = schema.get("patternErrorMessage", "")
            if kind == "maxLength":
                msg = f"is too long ({len(name)} characters, at most {err.validator_value})"
                if schema.get("maxLengthErrorMessage"):
                    msg += f": {schema['maxLengthErrorMessage']}"
            reason = f"name {name!r} {msg}".rstrip() if msg else f"name {name!r}: {err.message}"
            rep.at((*path, name), reason, key=True)
            continue
        if kind == "required":
            for prop in err.validator_value:
                if isinstance(err.instance, dict) and prop not in err.instance:
                    reason = "required field missing"
                    if prop == "artifact_sha256" and len(path) == 2 and path[0] == "models":
                        if rep.digest_optional:
                            continue
                        reason += f"; `smgitops train {rep.label} --write` trains the model and writes it"
                    rep.at(path, reason, key=True, report_as=(*path, prop))
            continue
        if kind == "additionalProperties" and isinstance(err.instance, dict):
            known = schema.get("properties", {})
            for extra in err.instance:
                if extra not in known:
                    rep.at(
                        (*path, extra),
                        f"unknown field {extra!r}{_did_you_mean(extra, known, rep)} (known: {', '.join(known)})",
                        key=True,
                    )
            continue
        value = err.instance
        if value is INVALID:
            continue  # already reported where it was refused
        if kind == "type":
            expected = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            names = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in expected)
            reason = f"expected {names}, got {describe(value)}"
            if expected == ["string"] and isinstance(value, int | float | bool):
                reason += " (quote it)"
        elif kind == "pattern":
            msg = schema.get("patternErrorMessage") or f"must match {err.validator_value}"
            reason = f"{value!r} {msg}"
        elif kind in ("maxLength", "minLength"):
            bound = "at most" if kind == "maxLength" else "at least"
            reason = f"{value!r} has {len(value)} characters, {bound} {err.validator_value} allowed"
        elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            words = {
                "minimum": "at least",
                "maximum": "at most",
                "exclusiveMinimum": "greater than",
                "exclusiveMaximum": "less than",
            }
            reason = f"{value!r} is out of range: must be {words[kind]} {err.validator_value}"
            if schema.get(f"{kind}ErrorMessage"):
                reason += f" ({schema[f'{kind}ErrorMessage']})"
        elif kind in ("minItems", "maxItems"):
            bound = "at least" if kind == "minItems" else "at most"
            reason = f"has {len(value)} entries, {bound} {err.validator_value} allowed"
        elif kind == "minProperties":
            reason = f"must define at least {err.validator_value} entry"
        elif kind == "enum":
            choices = [str(c) for c in err.validator_value]
            hint = _did_you_mean(str(value), choices, rep) if isinstance(value, str) else ""
            reason = f"{value!r} is not one of {', '.join(choices)}{hint}"
        elif kind == "uniqueItems":
            reason = "lists an entry more than once"
        else:
            reason = err.message
        rep.at(path, reason)


# ---------------------------------------------------------------------------------------------------------------
# Semantics
# ---------------------------------------------------------------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-f]{64}")


class _DigestCache:
    """sha256 of data files, computed once per (file, size, mtime) in a run."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Path, int, int], str] = {}

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            self._cache[key] = sha256_file(path)
        return self._cache[key]


_DIGESTS = _DigestCache()


def _get(doc: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


@lru_cache(maxsize=1)
def _iana_zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(z for z in zoneinfo.available_timezones() if z not in _NOT_IANA_ZONES)


def _is_iana_zone(name: str) -> bool:
    """Whether ``name`` is one of :func:`_iana_zones`. A valid name is known by loading it, without listing the
    whole database (a walk over some 600 files, a tenth of a second, on every command that reads a release)."""
    import zoneinfo

    if name not in _NOT_IANA_ZONES and not name.startswith(("posix/", "right/")):  # the listing leaves these out
        try:
            zoneinfo.ZoneInfo(name)
            return True
        except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError; a directory an OSError
            pass
    return name in _iana_zones()


def _semantic_problems(doc: dict[str, Any], rep: _Reporter, release_path: Path, repo_root: Path) -> None:
    env = doc.get("environment")
    in_releases = release_path.parent.name == RELEASE_DIR and release_file_problem(release_path.name) is None
    if isinstance(env, str) and in_releases and env != release_path.stem:
        reason = f"{env!r} does not match the file name {release_path.name} (expected {release_path.stem!r})"
        rep.at(("environment",), reason)

    # Every SageMaker name derives from the endpoint's (configurations <endpoint>-<8 hex>, alarms <endpoint>/...), and
    # each environment's apply role may only touch names ending in -<environment> (bootstrap/roles.tf).
    name = _get(doc, "endpoint", "name")
    if (
        isinstance(env, str)
        and isinstance(name, str)
        and not rep.flagged(("endpoint", "name"))
        and not rep.flagged(("environment",))
        and not name.endswith(f"-{env}")
    ):
        rep.at(
            ("endpoint", "name"),
            f"{name!r} must end with -{env}, the release's environment (e.g. {name.rsplit('-', 1)[0]}-{env}): "
            "each environment's deploy role may only change endpoints named for it",
        )

    region = doc.get("region")
    if isinstance(region, str) and region not in ALLOWED_REGIONS and not rep.flagged(("region",)):
        rep.at(("region",), f"{region!r} is not on the region allowlist ({', '.join(ALLOWED_REGIONS)})")

    instance_type = _get(doc, "endpoint", "instance_type")
    if rep.flagged(("endpoint", "instance_type")):
        instance_type = None
    allowed_types = allowed_instance_types()
    hosting_problem = _hosting_unavailable(instance_type) if isinstance(instance_type, str) else None
    if hosting_problem:
        rep.at(("endpoint", "instance_type"), hosting_problem)
    elif isinstance(instance_type, str) and instance_type not in allowed_types:
        rep.at(
            ("endpoint", "instance_type"),
            f"{instance_type!r} is not on the instance-type allowlist ({', '.join(allowed_types)}; "
            f"{INSTANCE_TYPES_ENV} overrides it)",
        )

    tz = _get(doc, "teardown", "timezone")
    if isinstance(tz, str) and not _is_iana_zone(tz):
        if not _iana_zones():
            no_database = "no time zone database on this machine: install tzdata (OS or pip package)"
            rep.at(("teardown", "timezone"), no_database)
        elif not rep.flagged(("teardown", "timezone")):
            rep.at(("teardown", "timezone"), f"{tz!r} is not an IANA time zone{_did_you_mean(tz, _iana_zones(), rep)}")

    up, down = _get(doc, "schedule", "up"), _get(doc, "teardown", "at")
    if isinstance(up, str) and isinstance(down, str) and not rep.flagged(("schedule", "up")):
        if not rep.flagged(("teardown", "at")) and up >= down:  # both "HH:MM": text order is time order
            rep.at(
                ("schedule", "up"),
                f"{up!r} must be before teardown.at {down!r} (the same day, in teardown.timezone): the endpoint "
                "comes up at schedule.up and the evening teardown deletes it at teardown.at",
            )

    _image_problems(doc.get("image"), rep)
    models = doc.get("models")
    if isinstance(models, dict):
        for model_id, spec in models.items():
            if isinstance(spec, dict):
                _model_problems(model_id, spec, rep, repo_root)
    _variant_problems(doc.get("variants"), models if isinstance(models, dict) else {}, rep)


def _hosting_unavailable(instance_type: str) -> str | None:
    """Why ``instance_type`` can never serve a real-time endpoint, or None."""
    family, _, size = instance_type.rpartition(".")
    replacement_family = HOSTING_UNAVAILABLE_FAMILIES.get(family)
    if replacement_family is None:
        return None
    replacement = f"{replacement_family}.{size}" if size in _T2_SIZES else HOSTING_FALLBACK_TYPE
    return (
        f"{instance_type!r} is not offered for SageMaker real-time endpoints ({family}.* instances serve notebooks "
        f"and Studio only); use {replacement}"
    )


def _image_problems(image: Any, rep: _Reporter) -> None:
    if not isinstance(image, str) or rep.flagged(("image",)):
        return
    from . import estimators

    known: dict[str, str] = dict(estimators.IMAGE_SKLEARN_VERSIONS)
    if image not in known:
        rep.at(("image",), f"unknown image tag {image!r}{_did_you_mean(image, known, rep)} (known: {', '.join(known)})")
    elif not estimators.image_matches_training(image):
        rep.at(
            ("image",),
            f"image {image!r} serves scikit-learn {known[image]} but training uses "
            f"{estimators.TRAINING_SKLEARN_VERSION}; the served model would not load reliably",
        )


def _data_problems(model_id: str, data: dict[str, Any], rep: _Reporter, repo_root: Path) -> Path | None:
    """Problems of the model's data reference; the resolved file when it is readable and its digest matches."""
    where: FieldPath = ("models", model_id, "data", "path")
    raw = data.get("path")
    if not isinstance(raw, str) or not raw or rep.flagged(where):
        return None
    pure = PurePosixPath(raw)
    if "\\" in raw:
        rep.at(where, f"{raw!r}: use forward slashes")
        return None
    if pure.is_absolute() or re.match(r"[A-Za-z]:", raw):
        rep.at(where, f"{raw!r} is absolute: give the path relative to the repository root")
        return None
    if ".." in pure.parts:
        rep.at(where, f"{raw!r} leaves the repository ('..'): data files live inside it")
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        rep.at(where, f"{raw!r} contains a control character: give the file's plain relative path")
        return None
    root = repo_root.resolve()
    try:
        target = (root / pure).resolve()
        if not target.is_relative_to(root):
            rep.at(where, f"{raw!r} resolves outside the repository (to {target}) through a symbolic link")
            return None
        if not target.exists():
            rep.at(where, f"data file {raw!r} not found in the repository {root}")
            return None
        if not target.is_file():
            rep.at(where, f"{raw!r} is not a regular file")
            return None
        expected = data.get("sha256")
        actual = _DIGESTS.sha256(target) if isinstance(expected, str) and _HEX64.fullmatch(expected) else None
    except OSError as exc:
        rep.at(where, f"{raw!r} cannot be read: {exc.strerror or exc}")
        return None
    if actual is not None and actual != expected:
        rep.at(
            ("models", model_id, "data", "sha256"),
            f"does not match {raw}: expected {expected} (release), actual {actual} (file)",
        )
        return None
    return target


def _model_problems(model_id: str, spec: dict[str, Any], rep: _Reporter, repo_root: Path) -> None:
    data = spec.get("data")
    data_file = _data_problems(model_id, data, rep, repo_root) if isinstance(data, dict) else None
    estimator = spec.get("estimator")
    if not isinstance(estimator, str) or rep.flagged(("models", model_id, "estimator")):
        return
    from . import estimators

    if not estimators.is_allowed(estimator):
        allowed = list(estimators.ALLOWED_ESTIMATORS)
        rep.at(
            ("models", model_id, "estimator"),
            f"{estimator!r} is not on the estimator allowlist{_did_you_mean(estimator, allowed, rep)} "
            f"(allowed: {', '.join(allowed)})",
        )
        return
    params = spec.get("params")
    if not isinstance(params, dict) or not params:
        return  # {}: an allowlisted estimator's defaults always fit, and scikit-learn need not be imported
    # The same parameters passed before on this installation and data shape: scikit-learn need not be asked again.
    shape = _data_shape(data_file) if data_file is not None and rep.probe_fits < MAX_PROBE_FITS else None
    kept = estimators.verdict_file(estimator, params, shape)
    if estimators.passed_before(kept):
        _count_probe_fit(rep, data_file)
        return
    problems_before = len(rep.problems)
    accepted = sorted(estimators.accepted_params(estimator))
    excluded = estimators.EXCLUDED_PARAMS
    short = estimator.rsplit(".", 1)[-1]
    bad = False
    for key in params:
        where: FieldPath = ("models", model_id, "params", key)
        if rep.flagged(where):
            bad = True
        elif key == "random_state":
            rep.at(where, "random_state is always the model's `seed`; remove it from params", key=True)
            bad = True
        elif key in excluded:
            rep.at(
                where,
                f"{short} takes {key!r} but a release may not set it (excluded: {', '.join(sorted(excluded))})",
                key=True,
            )
            bad = True
        elif key not in accepted:
            rep.at(
                where,
                f"{short} does not accept {key!r}{_did_you_mean(key, accepted, rep)} (accepted: {', '.join(accepted)})",
                key=True,
            )
            bad = True
    if not bad and all(v is not INVALID for v in params.values()):
        _param_value_problems(model_id, estimator, params, rep, data_file, shape)
        if len(rep.problems) == problems_before:
            rep.passed.append(kept)  # kept at the end: a model with the same parameters is still checked now


def _count_probe_fit(rep: _Reporter, data_file: Path | None) -> bool:
    """Count a model whose parameter values passed toward the probe budget; True if its fit is to be probed."""
    if data_file is None:
        return False
    rep.probe_fits += 1
    if rep.probe_fits > MAX_PROBE_FITS:
        if rep.probe_fits == MAX_PROBE_FITS + 1:
            rep.notes.append(
                f"only the first {MAX_PROBE_FITS} models' parameters were test-fitted on a synthetic sample; "
                "training checks the others'"
            )
        return False
    return True


_PARAM_IN_MESSAGE = re.compile(r"The '(\w+)' parameter")


def _param_value_problems(
    model_id: str,
    estimator: str,
    params: dict[str, Any],
    rep: _Reporter,
    data_file: Path | None = None,
    shape: tuple[int, int, int] | None = None,
) -> None:
    """Let scikit-learn check the parameter values (types, ranges, choices) as ``fit`` would; then, with the
    model's data file at hand, fit the estimator on a synthetic sample of that data's shape
    (:func:`smgitops.estimators.probe_fit`): combinations of values that are each valid alone fail there."""
    from . import estimators

    try:
        instance = estimators.estimator_class(estimator)(**params)
        check = getattr(instance, "_validate_params", None)
        if check is not None:
            check()
    except Exception as exc:  # noqa: BLE001 - any refusal is reported as the user's parameter problem
        message = str(exc).strip() or type(exc).__name__
        m = _PARAM_IN_MESSAGE.search(message)
        where: FieldPath = ("models", model_id, "params")
        if m and m.group(1) in params:
            where = (*where, m.group(1))
        rep.at(where, message)
        return
    if not _count_probe_fit(rep, data_file):
        return
    if shape is None:
        return  # no readable data to take the shape from: training reports the data's problems
    try:
        estimators.probe_fit(estimator, params, *shape)
    except Exception as exc:  # noqa: BLE001 - what fit refuses, the release asked for
        message = " ".join((str(exc).strip() or type(exc).__name__).split())
        short = estimator.rsplit(".", 1)[-1]
        rep.at(("models", model_id, "params"), f"{short} refuses these parameters together when fitting: {message}")


_MAX_PROBE_LABELS = 1000


# A data file's shape, by the sha256 of its bytes: reading the CSV costs about 5 ms (the shipped 120 KB file), the
# digest nothing more once the data's pin was checked (_DIGESTS keeps it). A process that validates many releases
# (the demo, the test suite) reads each data file's rows once; other bytes are another key.
_SHAPES: dict[str, tuple[int, int, int] | None] = {}
_MAX_SHAPES = 64


def _data_shape(path: Path) -> tuple[int, int, int] | None:
    """(features, training rows, classes) of a CSV whose last column is the label (:func:`_read_data_shape`),
    found again by the file's content digest."""
    try:
        digest = _DIGESTS.sha256(path)
    except OSError:
        return None
    if digest not in _SHAPES:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[digest] = _read_data_shape(path)
    return _SHAPES[digest]


def _read_data_shape(path: Path) -> tuple[int, int, int] | None:
    """(features, training rows, classes) of a CSV whose last column is the label, read without parsing numbers;
    ``None`` when the file has no header and two rows of two classes (training reports why)."""
    import csv

    from .training import TEST_SIZE

    labels: set[str] = set()
    rows = 0
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            for record in reader:
                if record:
                    rows += 1
                    if len(labels) < _MAX_PROBE_LABELS:
                        labels.add(record[-1].strip())
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not header or len(header) < 2 or rows < 2 or len(labels) < 2:
        return None
    return len(header) - 1, max(rows - math.ceil(rows * TEST_SIZE), 2), len(labels)


def _variant_problems(variants: Any, models: dict[str, Any], rep: _Reporter) -> None:
    if not isinstance(variants, list):
        return
    seen: dict[str, int] = {}
    weights: list[int] = []
    weights_ok = True
    served: set[str] = set()
    for i, variant in enumerate(variants):
        if not isinstance(variant, dict):
            weights_ok = False
            continue
        name = variant.get("name")
        if isinstance(name, str):
            if name in seen:
                first = seen[name]
                line, _ = rep.locate(("variants", first, "name"))
                reason = f"duplicate variant name {name!r} (also variants[{first}], line {line})"
                rep.at(("variants", i, "name"), reason)
            else:
                seen[name] = i
        model = variant.get("model")
        if isinstance(model, str):
            served.add(model)
            if model not in models:
                rep.at(
                    ("variants", i, "model"),
                    f"model {model!r} is not defined under models{_did_you_mean(model, models, rep)} "
                    f"(defined: {', '.join(models) or 'none'})",
                )
        weight = variant.get("weight")
        if isinstance(weight, int) and not isinstance(weight, bool) and 0 <= weight <= 100:
            weights.append(weight)
        else:
            weights_ok = False
    if weights_ok and weights and sum(weights) != 100:
        detail = ", ".join(f"{v.get('name')}={v.get('weight')}" for v in variants)
        extra = "; no variant receives traffic" if not any(weights) else ""
        rep.at(("variants",), f"weights sum to {sum(weights)}, they must sum to 100 ({detail}){extra}", key=True)
    for model_id in models:
        if model_id not in served:
            rep.notes.append(
                f"model {model_id!r} is defined but served by no variant: it is trained and published, "
                "and receives no traffic"
            )


# ---------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ValidationResult:
    """The outcome of validating one release file."""

    file: str
    problems: list[Problem]
    notes: list[str]
    document: dict[str, Any] | None  # the parsed mapping when there are no problems

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok,
            "problems": [
                {"file": p.file, "line": p.line, "col": p.col, "field": p.field, "reason": p.reason}
                for p in sorted(self.problems)
            ],
            "notes": self.notes,
        }


def check_text(text: str, label: str, release_path: Path) -> ValidationResult:
    """Validate release text read elsewhere (``git show REV:releases/dev.yaml``), reported as ``label``; data
    files are checked against the repository root of ``release_path`` as it is now."""
    rep = _Reporter(label)
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_FILE_BYTES:
        rep.add(1, 1, (), f"the file is {size} bytes, over the {MAX_FILE_BYTES}-byte (1 MiB) limit of a release")
        return ValidationResult(label, rep.problems, [], None)
    return _check_parsed(parse(text.removeprefix("\ufeff"), rep), rep, release_path)


def _check_parsed(doc: Any, rep: _Reporter, release_path: Path) -> ValidationResult:
    if doc is not INVALID and not isinstance(doc, dict):
        rep.add(1, 1, (), f"the top level must be a mapping of release fields, got {describe(doc)}")
    if isinstance(doc, dict):
        repo_root = repo_root_for(release_path)
        _checked_schema(doc, rep)
        _semantic_problems(doc, rep, release_path, repo_root)
    if rep.passed:
        from . import estimators

        for kept in rep.passed:
            estimators.remember_passed(kept)
    ok_doc = doc if isinstance(doc, dict) and not rep.problems else None
    return ValidationResult(rep.label, sorted(rep.problems), rep.notes, ok_doc)


def validate_path(path: Path | str, *, digest_optional: bool = False) -> ValidationResult:
    """Validate one release file; the path is reported as given. ``digest_optional``: a model may lack
    ``artifact_sha256`` (``smgitops train --write`` is about to write it)."""
    label = str(path)
    p = Path(path)
    rep = _Reporter(label)
    rep.digest_optional = digest_optional
    try:
        st = p.stat()
    except FileNotFoundError:
        rep.add(0, 0, (), "no such file")
        return ValidationResult(label, rep.problems, [], None)
    except OSError as exc:
        rep.add(0, 0, (), f"cannot read: {exc.strerror or exc}")
        return ValidationResult(label, rep.problems, [], None)
    if stat.S_ISDIR(st.st_mode):
        rep.add(0, 0, (), "is a directory; name the release files, e.g. releases/*.yaml")
        return ValidationResult(label, rep.problems, [], None)
    if not stat.S_ISREG(st.st_mode):
        rep.add(0, 0, (), "not a regular file")
        return ValidationResult(label, rep.problems, [], None)
    if p.absolute().parent.name == RELEASE_DIR and (misnamed := release_file_problem(p.name)) is not None:
        rep.add(0, 0, (), misnamed)  # reported with the content's problems: the file is not planned or deployed
    if st.st_size > MAX_FILE_BYTES:
        rep.add(1, 1, (), f"the file is {st.st_size} bytes, over the {MAX_FILE_BYTES}-byte (1 MiB) limit of a release")
        return ValidationResult(label, rep.problems, [], None)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        rep.add(0, 0, (), f"cannot read: {exc.strerror or exc}")
        return ValidationResult(label, rep.problems, [], None)
    if len(data) > MAX_FILE_BYTES:
        rep.add(1, 1, (), f"the file is over the {MAX_FILE_BYTES}-byte (1 MiB) limit of a release")
        return ValidationResult(label, rep.problems, [], None)
    text = decode(data, rep)
    if text is None:
        return ValidationResult(label, rep.problems, [], None)
    return _check_parsed(parse(text, rep), rep, p)


def validate_file(path: Path | str) -> list[Problem]:
    """Every problem of one release file (empty when it is valid)."""
    return validate_path(path).problems


def validate_text(text: str, path: Path | str) -> list[Problem]:
    """Every problem of release text read elsewhere; data files are checked against the repository of ``path``."""
    return check_text(text, str(path), Path(path)).problems
