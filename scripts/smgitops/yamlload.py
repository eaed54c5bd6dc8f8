"""Strict reading of a release file: bytes to text to plain values, each value's position recorded, every refusal a
located problem (file, 1-based line and column, dotted field path such as ``variants[1].weight``).

A release file is small, hand-edited YAML that decides what runs in an AWS account, so it is read strictly:

* UTF-8 (a UTF-8 byte order mark is accepted and ignored; UTF-16/32 and invalid bytes are refused with the byte
  offset and its line): :func:`decode`;
* within the bounds of :mod:`smgitops.yamlbounds`, checked before the parser sees the text (and again inside its
  scanner): at most 10,000 lines of at most 1,024 characters, 2,000 tokens, strings of 4,096 characters, 64 KiB
  of keys and values in all and 32 levels of nesting, so any file up to the size limit is judged in well under
  two seconds;
* exactly one YAML document;
* no anchors or aliases (refused outright: they enable "billion laughs" expansion and hide sharing between
  fields a reviewer reads as independent), no tags beyond the core schema (``!!str``, ``!!int``, ``!!float``,
  ``!!bool``, ``!!null``, ``!!seq``, ``!!map``; so no ``!!python/...`` and no custom tags), no directives;
* no duplicate keys (PyYAML silently keeps the last one);
* plain scalars are read with the YAML 1.2 core schema (as Terraform's ``yamldecode`` and editors read them), and
  a plain scalar that YAML 1.1 tools (PyYAML, many scripts) would read differently is refused: ``yes``/``on``
  (booleans in 1.1), ``19:30`` (a base-60 integer in 1.1), ``010`` (octal in 1.1), ``1_000``, ``1e3``, dates. The
  file then means the same thing to every reader; quoting the value always fixes it;
* no ``.inf``/``.nan`` numbers.

:func:`parse` returns the document as plain values (dicts, lists, str, int, float, bool, None), with
:data:`INVALID` standing for each value it refused; the problems and positions go to a :class:`Reporter`, which
the checks of :mod:`smgitops.release_checks` go on filling. The size limit and what a release must contain are
theirs.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import Problem
from .yamlbounds import MAX_DEPTH, BoundedLoader, LimitExceeded, prescan

# ---------------------------------------------------------------------------------------------------------------
# Field paths and positions
# ---------------------------------------------------------------------------------------------------------------

MAX_PROBLEMS_PER_FILE = 200

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
class Pos:
    line: int  # 1-based position of the value
    col: int
    key_line: int | None  # 1-based position of the key that holds the value (None for the root and list items)
    key_col: int | None
    collection: bool


class Reporter:
    """Collects the located problems (and notes) of one file; ``pos`` is where the parser found each value."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.pos: dict[FieldPath, Pos] = {}
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self._seen: set[tuple[int, int, str, str]] = set()

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


def decode(data: bytes, rep: Reporter) -> str | None:
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
INVALID = object()  # stands for a value that was refused (alias, bad tag); never reaches the schema as such


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

    def __init__(self, text: str, rep: Reporter) -> None:
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
            return INVALID
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
        self.rep.pos.setdefault(path, Pos(mark.line + 1, mark.column + 1, key_line, key_col, collection))

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
            return INVALID
        self._check_anchor(event, path)
        if isinstance(event, yaml.ScalarEvent):
            ld.get_event()
            self._record(path, event.start_mark, key_mark, False)
            return self.scalar(event, path)
        if depth >= MAX_DEPTH:
            self._record(path, event.start_mark, key_mark, True)
            self.problem(event.start_mark, path, f"nested deeper than {MAX_DEPTH} levels")
            self._skip()
            return INVALID
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
                if key is not INVALID:
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
            return INVALID
        if tag is None and not plain:  # quoted or block scalar
            return value
        try:
            result = _core12(tag, value)
        except _Refused as exc:
            self.problem(event.start_mark, path, str(exc))
            return INVALID
        if tag is None:
            yaml11 = self._yaml11(value, event)
            if not _same(yaml11, result):
                shown = "read differently" if yaml11 is INVALID else f"read as {describe(yaml11)}"
                self.problem(
                    event.start_mark,
                    path,
                    f"plain value {value!r} is {shown} by YAML 1.1 tools (PyYAML) but as {describe(result)} "
                    "by YAML 1.2 (Terraform, editors); quote it or write it unambiguously",
                )
                return INVALID
        if isinstance(result, float) and not math.isfinite(result):
            self.problem(event.start_mark, path, f"{value!r} is not a finite number")
            return INVALID
        return result

    def _yaml11(self, value: str, event: Any) -> Any:
        tag = self.loader.resolve(yaml.ScalarNode, value, (True, False))
        ctor: Callable[..., Any] | None = yaml.SafeLoader.yaml_constructors.get(tag)
        if ctor is None:
            return INVALID
        try:
            return ctor(self.loader, yaml.ScalarNode(tag, value, event.start_mark, event.end_mark))
        except Exception:  # noqa: BLE001 - any failure means "not the same value"
            return INVALID


def _tag_reason(tag: str) -> str:
    shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    return (
        f"tag {shown!r} refused: only the YAML core schema is accepted "
        "(!!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"
    )


def parse(text: str, rep: Reporter) -> Any:
    """The document as plain values (or INVALID); positions and problems go to ``rep``."""
    if m := _ODD_BREAKS.search(text):
        line, col = _line_col_text(text, m.start())
        rep.add(line, col, (), f"character U+{ord(m.group()):04X} is a line break in YAML 1.1 only; remove it")
        return INVALID
    if refusal := prescan(text):  # bounds what the parser below may cost
        rep.add(refusal.line, refusal.col, (), refusal.reason)
        return INVALID
    builder: _Builder | None = None
    try:
        builder = _Builder(text, rep)  # the reader checks every character here
        return builder.document()
    except LimitExceeded as exc:
        mark = exc.problem_mark
        rep.add(mark.line + 1 if mark else 1, mark.column + 1 if mark else 1, (), str(exc.problem))
        return INVALID
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        detail = exc.problem or "invalid YAML"
        if exc.context and exc.problem:
            detail = f"{exc.problem} ({exc.context})"
        rep.add(line, col, (), f"YAML syntax error: {detail}")
        return INVALID
    except yaml.reader.ReaderError as exc:
        line, col = _line_col_text(text, exc.position)
        rep.add(line, col, (), f"character {exc.character!r} is not allowed in YAML: {exc.reason}")
        return INVALID
    finally:
        if builder is not None:
            builder.close()
