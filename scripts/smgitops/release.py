"""Release files: strict loading, validation (for ``smgitops validate``) and the typed model the pipeline reads.

A release file is small, hand-edited YAML that decides what runs in an AWS account, so it is read strictly:

* at most 1 MiB (checked before parsing), UTF-8 (a UTF-8 byte order mark is accepted and ignored; UTF-16/32 and
  invalid bytes are refused with the byte offset and its line);
* within the bounds of :mod:`smgitops.yamlbounds`, checked before the parser sees the text (and again inside its
  scanner): at most 10,000 lines of at most 1,024 characters, 2,000 tokens, strings of 4,096 characters, 64 KiB
  of keys and values in all and 32 levels of nesting, so any file up to the size limit is judged in well under
  two seconds;
* exactly one YAML document whose top level is a mapping;
* no anchors or aliases (refused outright: they enable "billion laughs" expansion and hide sharing between
  fields a reviewer reads as independent), no tags beyond the core schema (``!!str``, ``!!int``, ``!!float``,
  ``!!bool``, ``!!null``, ``!!seq``, ``!!map``; so no ``!!python/...`` and no custom tags), no directives;
* no duplicate keys (PyYAML silently keeps the last one);
* plain scalars are read with the YAML 1.2 core schema (as Terraform's ``yamldecode`` and editors read them), and
  a plain scalar that YAML 1.1 tools (PyYAML, many scripts) would read differently is refused: ``yes``/``on``
  (booleans in 1.1), ``19:30`` (a base-60 integer in 1.1), ``010`` (octal in 1.1), ``1_000``, ``1e3``, dates. The
  file then means the same thing to every reader; quoting the value always fixes it;
* no ``.inf``/``.nan`` numbers.

Then the JSON Schema ``releases/release.schema.json`` (Draft 2020-12, every error reported, with integers strict:
``true`` and ``1.0`` are not integers) and the semantic checks that need more than a schema: weights summing to
100, unique variant names, variants' models defined, data files inside the repository with matching sha256,
estimators and their parameters, the instance-type and region allowlists, the time zone, the image's scikit-learn
version. Every problem carries the file (as given), 1-based line and column, and a dotted field path such as
``variants[1].weight``. Nothing here calls AWS or imports boto3; scikit-learn is imported only to check a model's
parameters, through :mod:`smgitops.estimators`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .errors import ExternalError, InvalidRelease, Problem
from .files import sha256_file
from .naming import RELEASE_DIR, release_file_problem
from .paths import PACKAGE_DIR, repo_root_for
from .yamlbounds import MAX_DEPTH, BoundedLoader, LimitExceeded, prescan

# ---------------------------------------------------------------------------------------------------------------
# Typed model (the contract other modules code against)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataRef:
    path: str  # relative to the repository root
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    id: str
    data: DataRef
    estimator: str  # dotted name on the allowlist, e.g. sklearn.linear_model.LogisticRegression
    params: dict[str, Any]
    seed: int
    artifact_sha256: str
    # promotion_override.reason: lets a promoted-to environment (prod) serve a digest that never passed a canary
    # in the environment it is promoted from (release policy RP005); shown in the pull-request comment
    promotion_override: str | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    model: str  # a key of Release.models
    weight: int  # integer percent; all variants sum to 100


@dataclass(frozen=True)
class DataCapture:
    enabled: bool
    sampling_percentage: int


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    instance_type: str
    instance_count: int
    data_capture: DataCapture


@dataclass(frozen=True)
class Teardown:
    at: str  # "HH:MM", local time in `timezone`
    timezone: str  # IANA name, e.g. Europe/Berlin


WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DEFAULT_DAYS: tuple[str, ...] = WEEKDAYS[:5]


@dataclass(frozen=True)
class ServiceSchedule:
    """``schedule``: working hours. The scheduled bring-up re-creates the endpoint at ``up`` on ``days``."""

    up: str  # "HH:MM", local time in the teardown's zone, before teardown.at
    days: tuple[str, ...] = DEFAULT_DAYS  # WEEKDAYS names, in the teardown's zone


@dataclass(frozen=True)
class Canary:
    bake_minutes: int
    min_invocations: int
    max_error_rate: float  # fraction, 0.01 = 1 %
    max_p99_latency_ms: float
    max_initial_weight: int = 10  # a model never served before may start at no more than this weight


@dataclass(frozen=True)
class Release:
    path: Path
    environment: str
    region: str
    image: str  # scikit-learn container tag, e.g. 1.2-1-cpu-py3
    endpoint: EndpointSpec
    teardown: Teardown
    models: dict[str, ModelSpec]
    variants: list[Variant]
    canary: Canary
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    schedule: ServiceSchedule | None = None  # None: the endpoint comes back only with the next deploy

    @property
    def repo_root(self) -> Path:
        return repo_root_for(self.path)

    def served_models(self) -> dict[str, ModelSpec]:
        """Models referenced by at least one variant, in variant order."""
        return {v.model: self.models[v.model] for v in self.variants}


def release_from_mapping(doc: dict[str, Any], path: Path) -> Release:
    """Build the typed release from an already validated mapping."""
    ep = doc["endpoint"]
    dc = ep.get("data_capture", {})
    canary = doc["canary"]
    schedule = doc.get("schedule")
    return Release(
        path=path,
        environment=doc["environment"],
        region=doc["region"],
        image=doc["image"],
        endpoint=EndpointSpec(
            name=ep["name"],
            instance_type=ep["instance_type"],
            instance_count=int(ep.get("instance_count", 1)),
            data_capture=DataCapture(
                enabled=bool(dc.get("enabled", True)), sampling_percentage=int(dc.get("sampling_percentage", 100))
            ),
        ),
        teardown=Teardown(at=doc["teardown"]["at"], timezone=doc["teardown"]["timezone"]),
        models={
            mid: ModelSpec(
                id=mid,
                data=DataRef(path=m["data"]["path"], sha256=m["data"]["sha256"]),
                estimator=m["estimator"],
                params=dict(m.get("params") or {}),
                seed=int(m["seed"]),
                artifact_sha256=m.get("artifact_sha256") or "",  # absent or empty only while `train --write` runs
                promotion_override=(m.get("promotion_override") or {}).get("reason"),
            )
            for mid, m in doc["models"].items()
        },
        variants=[Variant(name=v["name"], model=v["model"], weight=int(v["weight"])) for v in doc["variants"]],
        canary=Canary(
            bake_minutes=int(canary["bake_minutes"]),
            min_invocations=int(canary["min_invocations"]),
            max_error_rate=float(canary["max_error_rate"]),
            max_p99_latency_ms=float(canary["max_p99_latency_ms"]),
            max_initial_weight=int(canary.get("max_initial_weight", 10)),
        ),
        raw=doc,
        schedule=None
        if not isinstance(schedule, dict)
        else ServiceSchedule(
            up=schedule["up"],
            days=tuple(d for d in WEEKDAYS if d in (schedule.get("days") or DEFAULT_DAYS)),
        ),
    )


# ---------------------------------------------------------------------------------------------------------------
# Limits and allowlists
# ---------------------------------------------------------------------------------------------------------------

MAX_FILE_BYTES = 1024 * 1024  # a release is a few kilobytes; anything near this is a mistake or an attack
MAX_PROBLEMS_PER_FILE = 200
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


# ---------------------------------------------------------------------------------------------------------------
# Field paths and positions
# ---------------------------------------------------------------------------------------------------------------

FieldPath = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_path(path: Iterable[str | int]) -> str:
    """``("variants", 1, "weight")`` -> ``variants[1].weight``; odd keys are quoted: ``params["a.b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


@dataclass(frozen=True)
class _Pos:
    line: int  # 1-based position of the value
    col: int
    key_line: int | None  # 1-based position of the key that holds the value (None for the root and list items)
    key_col: int | None
    collection: bool


class _Reporter:
    """Collects located problems of one file."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.pos: dict[FieldPath, _Pos] = {}
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self._seen: set[tuple[int, int, str, str]] = set()
        self.suggestion_budget = SUGGESTION_BUDGET
        self.probe_fits = 0
        self.passed: list[Path | None] = []  # parameter verdicts to keep once the file is checked
        self.digest_optional = False  # `train --write`: a model may lack artifact_sha256 (it is about to be written)

    def add(self, line: int, col: int, path: Iterable[str | int], reason: str) -> None:
        fmt = format_path(path)
        key = (line, col, fmt, reason)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.problems) == MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.label, line, col, "", "too many problems; the rest are not shown"))
        if len(self.problems) > MAX_PROBLEMS_PER_FILE:
            return
        self.problems.append(Problem(self.label, line, col, fmt, reason))

    def at(self, path: FieldPath, reason: str, *, key: bool = False, report_as: FieldPath | None = None) -> None:
        """A problem located at ``path`` (its key when ``key`` or when the value is a mapping or list)."""
        line, col = self.locate(path, key=key)
        self.add(line, col, path if report_as is None else report_as, reason)

    def flagged(self, path: FieldPath) -> bool:
        """Whether ``path`` already has a problem (a semantic check then adds no second one for the same value)."""
        field = format_path(path)
        return any(p.field == field for p in self.problems)

    def locate(self, path: FieldPath, *, key: bool = False) -> tuple[int, int]:
        probe = path
        while probe not in self.pos and probe:
            probe = probe[:-1]
            key = True
        p = self.pos.get(probe)
        if p is None:
            return 1, 1
        if (key or p.collection) and p.key_line is not None and p.key_col is not None:
            return p.key_line, p.key_col
        return p.line, p.col


# ---------------------------------------------------------------------------------------------------------------
# Bytes -> text
# ---------------------------------------------------------------------------------------------------------------

_UTF_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
_UTF8_BOM = b"\xef\xbb\xbf"


def _line_col_bytes(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def _line_col_text(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _decode(data: bytes, rep: _Reporter) -> str | None:
    """UTF-8 text of ``data`` (a leading UTF-8 BOM dropped), or None with a located problem."""
    for bom, name in _UTF_BOMS.items():
        if data.startswith(bom):
            rep.add(1, 1, (), f"the file is encoded as {name} (byte order mark); save it as UTF-8")
            return None
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line, col = _line_col_bytes(data, offset)
        rep.add(line, col, (), f"not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset}; save as UTF-8")
        return None


# YAML 1.1 counts these as line breaks, editors and YAML 1.2 do not: line numbers would disagree.
_ODD_BREAKS = re.compile("[\x85\u2028\u2029]")


# ---------------------------------------------------------------------------------------------------------------
# Text -> located values (YAML events, core schema, no aliases)
# ---------------------------------------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_NULL12 = re.compile(r"~|null|Null|NULL|")
_BOOL12 = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT12 = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF12 = re.compile(r"([-+]?)\.(?:inf|Inf|INF)")
_NAN12 = re.compile(r"\.(?:nan|NaN|NAN)")
_SCALAR_TAGS = ("str", "int", "float", "bool", "null")
MAX_NUMBER_CHARS = 100  # Python refuses to read or print integers of over 4300 digits
_INVALID = object()  # stands for a value that was refused (alias, bad tag); never reaches the schema as such


class _Refused(ValueError):
    pass


def _core12(tag: str | None, value: str) -> Any:
    """A scalar read with the YAML 1.2 core schema; ``tag`` None means resolve the plain scalar implicitly."""
    if tag in (None, _TAG + "null") and _NULL12.fullmatch(value):
        return None
    if tag in (None, _TAG + "bool") and value in _BOOL12:
        return _BOOL12[value]
    if tag in (None, _TAG + "int"):
        for form, base, prefix in ((_INT10, 10, 0), (_INT8, 8, 2), (_INT16, 16, 2)):
            if form.fullmatch(value):
                if len(value) > MAX_NUMBER_CHARS:
                    raise _Refused(f"an integer of {len(value)} characters is too long (at most {MAX_NUMBER_CHARS})")
                return int(value[prefix:], base)
    if tag in (None, _TAG + "float"):
        if _FLOAT12.fullmatch(value):
            return float(value)
        if m := _INF12.fullmatch(value):
            return -math.inf if m.group(1) == "-" else math.inf
        if _NAN12.fullmatch(value):
            return math.nan
    if tag in (None, _TAG + "str"):
        return value
    raise _Refused(f"{value!r} is not a valid !!{tag.removeprefix(_TAG) if tag else '?'}")


def describe(value: Any) -> str:
    """A value as a user reads it in a message: ``the integer 50``, ``the string 'yes'``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, _dt.date):
        return f"the date/time {value.isoformat()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (repr(a) == repr(b) if isinstance(a, float) else bool(a == b))


class _Builder:
    """Turns the YAML event stream into plain values, recording every value's position on the way."""

    def __init__(self, text: str, rep: _Reporter) -> None:
        self.rep = rep
        self.loader: Any = BoundedLoader(text)  # the stubs leave the event API untyped

    def close(self) -> None:
        self.loader.dispose()

    def problem(self, mark: Any, path: FieldPath, reason: str) -> None:
        self.rep.add(mark.line + 1, mark.column + 1, path, reason)

    def document(self) -> Any:
        """The single document's value; raises yaml.YAMLError on syntax errors."""
        ld = self.loader
        ld.get_event()  # StreamStart
        if ld.check_event(yaml.StreamEndEvent):
            self.rep.add(1, 1, (), "the file is empty: a release is a YAML mapping of fields")
            return _INVALID
        start = ld.get_event()
        assert isinstance(start, yaml.DocumentStartEvent)
        if start.version is not None or start.tags:
            self.problem(start.start_mark, (), "YAML directives (%YAML, %TAG) are not accepted in a release file")
        value = self.node((), 0, key_mark=None)
        ld.get_event()  # DocumentEnd
        if not ld.check_event(yaml.StreamEndEvent):
            nxt = ld.peek_event()
            self.problem(nxt.start_mark, (), "more than one YAML document ('---'): a release file holds exactly one")
        return value

    def _check_anchor(self, event: Any, path: FieldPath) -> None:
        if getattr(event, "anchor", None) is not None:
            self.problem(
                event.start_mark,
                path,
                f"anchor '&{event.anchor}' refused: anchors and aliases are not accepted in a release file "
                "(they hide sharing between fields and allow exponential expansion); write the value out",
            )

    def _record(self, path: FieldPath, mark: Any, key_mark: Any, collection: bool) -> None:
        key_line = key_mark.line + 1 if key_mark is not None else None
        key_col = key_mark.column + 1 if key_mark is not None else None
        self.rep.pos.setdefault(path, _Pos(mark.line + 1, mark.column + 1, key_line, key_col, collection))

    def _skip(self) -> None:
        """Consume one node's events without building it."""
        depth = 0
        while True:
            ev = self.loader.get_event()
            if isinstance(ev, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(ev, yaml.CollectionEndEvent):
                depth -= 1
            if depth == 0:
                return

    def _collection_tag_ok(self, event: Any, path: FieldPath, expected: str) -> None:
        if event.tag not in (None, "!", _TAG + expected):
            self.problem(event.start_mark, path, _tag_reason(event.tag))

    def node(self, path: FieldPath, depth: int, key_mark: Any) -> Any:
        ld = self.loader
        event = ld.peek_event()
        if isinstance(event, yaml.AliasEvent):
            ld.get_event()
            self._record(path, event.start_mark, key_mark, False)
            self.problem(
                event.start_mark,
                path,
                f"alias '*{event.anchor}' refused: anchors and aliases are not accepted in a release file "
                "(they hide sharing between fields and allow exponential expansion); write the value out",
            )
            return _INVALID
        self._check_anchor(event, path)
        if isinstance(event, yaml.ScalarEvent):
            ld.get_event()
            self._record(path, event.start_mark, key_mark, False)
            return self.scalar(event, path)
        if depth >= MAX_DEPTH:
            self._record(path, event.start_mark, key_mark, True)
            self.problem(event.start_mark, path, f"nested deeper than {MAX_DEPTH} levels")
            self._skip()
            return _INVALID
        if isinstance(event, yaml.SequenceStartEvent):
            ld.get_event()
            self._record(path, event.start_mark, key_mark, True)
            self._collection_tag_ok(event, path, "seq")
            items: list[Any] = []
            while not ld.check_event(yaml.SequenceEndEvent):
                items.append(self.node((*path, len(items)), depth + 1, key_mark=None))
            ld.get_event()
            return items
        if isinstance(event, yaml.MappingStartEvent):
            ld.get_event()
            self._record(path, event.start_mark, key_mark, True)
            self._collection_tag_ok(event, path, "map")
            return self.mapping(path, depth)
        raise AssertionError(f"unexpected YAML event {event!r}")  # pragma: no cover - the parser guarantees this

    def mapping(self, path: FieldPath, depth: int) -> dict[str, Any]:
        ld = self.loader
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        while not ld.check_event(yaml.MappingEndEvent):
            kev = ld.peek_event()
            if not isinstance(kev, yaml.ScalarEvent):
                what = "an alias" if isinstance(kev, yaml.AliasEvent) else "a mapping or list"
                self.problem(kev.start_mark, path, f"a key must be a plain string, not {what}")
                if isinstance(kev, yaml.AliasEvent):
                    ld.get_event()
                else:
                    self._skip()
                self._skip_value()
                continue
            ld.get_event()
            kmark: Any = kev.start_mark
            self._check_anchor(kev, (*path, kev.value))
            key = self.scalar(kev, (*path, kev.value))
            if not isinstance(key, str):
                if key is not _INVALID:
                    self.problem(
                        kev.start_mark,
                        (*path, kev.value),
                        f"key {kev.value!r} is read as {describe(key)}; keys must be strings (quote it)",
                    )
                self._skip_value()
                continue
            child = (*path, key)
            if key in out or key in first_line:
                self.problem(
                    kev.start_mark,
                    child,
                    f"duplicate key {key!r} (first at line {first_line[key]}); "
                    "YAML loaders silently keep only the last value",
                )
                self.node(child, depth + 1, key_mark=kmark)
                continue
            first_line[key] = kmark.line + 1
            out[key] = self.node(child, depth + 1, key_mark=kmark)
        ld.get_event()
        return out

    def _skip_value(self) -> None:
        ev = self.loader.peek_event()
        if isinstance(ev, yaml.CollectionStartEvent):
            self._skip()
        else:
            self.loader.get_event()

    def scalar(self, event: Any, path: FieldPath) -> Any:
        tag, value, plain = event.tag, event.value, event.implicit[0]
        if tag == "!":  # the non-specific tag: a string
            return value
        if tag is not None and not (tag.startswith(_TAG) and tag[len(_TAG) :] in _SCALAR_TAGS):
            self.problem(event.start_mark, path, _tag_reason(tag))
            return _INVALID
        if tag is None and not plain:  # quoted or block scalar
            return value
        try:
            result = _core12(tag, value)
        except _Refused as exc:
            self.problem(event.start_mark, path, str(exc))
            return _INVALID
        if tag is None:
            yaml11 = self._yaml11(value, event)
            if not _same(yaml11, result):
                shown = "read differently" if yaml11 is _INVALID else f"read as {describe(yaml11)}"
                self.problem(
                    event.start_mark,
                    path,
                    f"plain value {value!r} is {shown} by YAML 1.1 tools (PyYAML) but as {describe(result)} "
                    "by YAML 1.2 (Terraform, editors); quote it or write it unambiguously",
                )
                return _INVALID
        if isinstance(result, float) and not math.isfinite(result):
            self.problem(event.start_mark, path, f"{value!r} is not a finite number")
            return _INVALID
        return result

    def _yaml11(self, value: str, event: Any) -> Any:
        tag = self.loader.resolve(yaml.ScalarNode, value, (True, False))
        ctor: Callable[..., Any] | None = yaml.SafeLoader.yaml_constructors.get(tag)
        if ctor is None:
            return _INVALID
        try:
            return ctor(self.loader, yaml.ScalarNode(tag, value, event.start_mark, event.end_mark))
        except Exception:  # noqa: BLE001 - any failure means "not the same value"
            return _INVALID


def _tag_reason(tag: str) -> str:
    shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    return (
        f"tag {shown!r} refused: only the YAML core schema is accepted "
        "(!!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"
    )


def _parse(text: str, rep: _Reporter) -> Any:
    """The document as plain values (or _INVALID); positions and problems go to ``rep``."""
    if m := _ODD_BREAKS.search(text):
        line, col = _line_col_text(text, m.start())
        rep.add(line, col, (), f"character U+{ord(m.group()):04X} is a line break in YAML 1.1 only; remove it")
        return _INVALID
    if refusal := prescan(text):  # bounds what the parser below may cost
        rep.add(refusal.line, refusal.col, (), refusal.reason)
        return _INVALID
    builder: _Builder | None = None
    try:
        builder = _Builder(text, rep)  # the reader checks every character here
        return builder.document()
    except LimitExceeded as exc:
        mark = exc.problem_mark
        rep.add(mark.line + 1 if mark else 1, mark.column + 1 if mark else 1, (), str(exc.problem))
        return _INVALID
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        detail = exc.problem or "invalid YAML"
        if exc.context and exc.problem:
            detail = f"{exc.problem} ({exc.context})"
        rep.add(line, col, (), f"YAML syntax error: {detail}")
        return _INVALID
    except yaml.reader.ReaderError as exc:
        line, col = _line_col_text(text, exc.position)
        rep.add(line, col, (), f"character {exc.character!r} is not allowed in YAML: {exc.reason}")
        return _INVALID
    finally:
        if builder is not None:
            builder.close()


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


def _checked_schema(doc: dict[str, Any], rep: _Reporter, repo_root: Path) -> None:
    """The schema's problems; a document that passed before (same content, schema and jsonschema) is not checked
    again: importing jsonschema and checking cost about 0.25 s of every command that loads the release. The
    verdict is kept beside the parameters' (:data:`smgitops.estimators.VERDICT_DIR`); problems never are."""
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
        kept: Path | None = repo_root / estimators.VERDICT_DIR / f"schema-{doc_hash}"
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
        if value is _INVALID:
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
    if isinstance(tz, str) and not _iana_zones():
        rep.at(("teardown", "timezone"), "no time zone database on this machine: install tzdata (OS or pip package)")
    elif isinstance(tz, str) and tz not in _iana_zones() and not rep.flagged(("teardown", "timezone")):
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
    kept = estimators.verdict_file(repo_root, estimator, params, shape)
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
    if not bad and all(v is not _INVALID for v in params.values()):
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


def _data_shape(path: Path) -> tuple[int, int, int] | None:
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


def _check_text(text: str, label: str, release_path: Path) -> ValidationResult:
    rep = _Reporter(label)
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_FILE_BYTES:
        rep.add(1, 1, (), f"the file is {size} bytes, over the {MAX_FILE_BYTES}-byte (1 MiB) limit of a release")
        return ValidationResult(label, rep.problems, [], None)
    return _check_parsed(_parse(text.removeprefix("\ufeff"), rep), rep, release_path)


def _check_parsed(doc: Any, rep: _Reporter, release_path: Path) -> ValidationResult:
    if doc is not _INVALID and not isinstance(doc, dict):
        rep.add(1, 1, (), f"the top level must be a mapping of release fields, got {describe(doc)}")
    if isinstance(doc, dict):
        repo_root = repo_root_for(release_path)
        _checked_schema(doc, rep, repo_root)
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
    text = _decode(data, rep)
    if text is None:
        return ValidationResult(label, rep.problems, [], None)
    return _check_parsed(_parse(text, rep), rep, p)


def validate_file(path: Path | str) -> list[Problem]:
    """Every problem of one release file (empty when it is valid)."""
    return validate_path(path).problems


def validate_text(text: str, path: Path | str) -> list[Problem]:
    """Every problem of release text read elsewhere; data files are checked against the repository of ``path``."""
    return _check_text(text, str(path), Path(path)).problems


def load_release(path: Path | str, *, digest_optional: bool = False) -> Release:
    """Load and validate a release file; raises errors.InvalidRelease with every located problem.
    ``digest_optional``: models may lack ``artifact_sha256`` (their :attr:`ModelSpec.artifact_sha256` is "")."""
    result = validate_path(path, digest_optional=digest_optional)
    if result.document is None:
        raise InvalidRelease(result.problems)
    return release_from_mapping(result.document, Path(path))


def load_release_text(text: str, path: Path | str) -> Release:
    """Same as load_release for text read elsewhere (e.g. ``git show REV:releases/dev.yaml``).

    Data files are checked against the repository root of ``path`` as it is now.
    """
    result = _check_text(text, str(path), Path(path))
    if result.document is None:
        raise InvalidRelease(result.problems)
    return release_from_mapping(result.document, Path(path))
