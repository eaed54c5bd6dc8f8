"""Pinning trained digests into a release file (``smgitops train RELEASE --write``), byte for byte.

A release file is written by hand and read by reviewers, so writing a digest into it must change nothing else:
not a comment, not the key order, not the quoting, not the spacing of an aligned comment, not the line endings.
A round-trip YAML library re-emits the whole document and normalises some of that (indentation of sequences,
spacing before comments, quoting of other values); this module splices instead. The file is composed with the
strict loader's bounded scanner (:class:`smgitops.yamlbounds.BoundedLoader`), whose nodes carry the exact start
and end of every value, and:

* a model that pins a digest has the text of that one value replaced; its quoting is kept (``"…"``, ``'…'``, or
  plain, unless a plain digest would read as a number: then it is double-quoted);
* an empty ``artifact_sha256:`` (or ``~``) gets ``"<digest>"``;
* a model without ``artifact_sha256`` gets one line, ``artifact_sha256: "<digest>"``, indented like the model's
  other keys, right after the line that ends the model's last value (a flow mapping, ``{…}``, gets
  ``, artifact_sha256: "<digest>"`` before its closing brace).

Every other byte stays as it was. The edited text is parsed again and must hold exactly the original document with
the new digests, or nothing is written. The file is replaced atomically, keeping its permissions.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .files import write_atomic
from .yamlbounds import BoundedLoader

FIELD = "artifact_sha256"
_UTF8_BOM = b"\xef\xbb\xbf"
# A plain scalar of hex digits that YAML 1.1 or 1.2 tools would read as a number (digits, or digits e digits).
_NUMERIC_HEX = re.compile(r"[0-9]+(?:e[0-9]+)?")
_NULLS = ("", "~", "null", "Null", "NULL")


@dataclass(frozen=True)
class Pinned:
    """One digest written (or already there) in the release file."""

    model_id: str
    digest: str
    previous: str | None  # the digest the file held, None when the field was missing
    line: int  # 1-based line of the value after the edit

    @property
    def changed(self) -> bool:
        return self.previous != self.digest


@dataclass(frozen=True)
class _Edit:
    start: int  # character index into the text
    end: int
    text: str
    model_id: str
    previous: str | None


def _compose(text: str, label: str) -> Any:
    loader = BoundedLoader(text)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        raise UserError(f"{label}: cannot be read to write digests: {exc}") from None
    finally:
        loader.dispose()


def _get(mapping: Any, key: str) -> tuple[Any, Any] | None:
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _models(root: Any, label: str) -> dict[str, Any]:
    found = _get(root, "models")
    if found is None or not isinstance(found[1], yaml.MappingNode):
        raise UserError(f"{label}: models: no mapping of models to write digests into")
    return {k.value: v for k, v in found[1].value if isinstance(k, yaml.ScalarNode)}


def _line_end(text: str, index: int) -> int:
    """Index just after the line break that ends the line holding ``index`` (the text's end if there is none)."""
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _last_end(node: Any) -> tuple[Any, Any]:
    """The end mark of the text a block collection's last value occupies (its own end mark lies at the next
    token, past any comment lines that follow it)."""
    while isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node.end_mark, node


def _quoted(digest: str, style: str | None) -> str:
    if style == "'":
        return f"'{digest}'"
    if style is None and not _NUMERIC_HEX.fullmatch(digest):
        return digest
    return f'"{digest}"'


def _edit_for(text: str, label: str, model_id: str, model: Any, digest: str) -> _Edit | None:
    where = f"{label}: models.{model_id}.{FIELD}"
    if not isinstance(model, yaml.MappingNode) or not model.value:
        raise UserError(f"{label}: models.{model_id}: not a mapping; cannot write {FIELD} into it")
    present = _get(model, FIELD)
    if present is not None:
        value = present[1]
        if not isinstance(value, yaml.ScalarNode) or value.style not in (None, '"', "'"):
            raise UserError(f"{where}: write the digest as a quoted string on one line, then run this again")
        if value.value == digest:
            return None
        start, end = value.start_mark.index, value.end_mark.index
        if value.style is None and value.value in _NULLS:  # `artifact_sha256:` left empty (or ~) for this command
            return _Edit(start, end, f'{" " if start == end else ""}"{digest}"', model_id, None)
        return _Edit(start, end, _quoted(digest, value.style), model_id, value.value)
    entry = f'{FIELD}: "{digest}"'
    if model.flow_style:  # {data: ..., seed: 7}: before the closing brace
        close = model.end_mark.index - 1
        if text[close] != "}":
            raise UserError(f"{where}: cannot find the end of the model's {{...}} mapping; add the field by hand")
        before = close
        while before > model.start_mark.index and text[before - 1] in " \t\r\n":
            before -= 1
        insert = f" {entry}" if text[before - 1] == "," else f", {entry}"
        return _Edit(before, before, insert, model_id, None)
    first_key = model.value[0][0]
    indent = first_key.start_mark.column
    line_start = first_key.start_mark.index - indent
    if text[line_start : first_key.start_mark.index].strip(" "):
        raise UserError(f"{where}: the model's first key does not start its line; add the field by hand")
    end_mark, last = _last_end(model)
    if isinstance(last, yaml.ScalarNode) and last.style in ("|", ">") and end_mark.column == 0:
        at = end_mark.index  # a block scalar ends at the start of the line after it
    else:
        at = _line_end(text, end_mark.index)
    previous_break = text.rfind("\n", 0, at)  # the line break style of the lines before (CRLF or LF)
    newline = "\r\n" if previous_break > 0 and text[previous_break - 1] == "\r" else "\n"
    prefix = "" if at == 0 or text[at - 1] == "\n" else newline  # the last line had no line break
    return _Edit(at, at, f"{prefix}{' ' * indent}{entry}{newline}", model_id, None)


def _load_plain(text: str, label: str) -> Any:
    try:
        return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - BoundedLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise UserError(f"{label}: the edited file does not parse ({exc}); nothing was written") from None


def pin_text(text: str, digests: Mapping[str, str], label: str = "release") -> tuple[str, list[Pinned]]:
    """``text`` with each model's ``artifact_sha256`` set to ``digests[model]``, and what was pinned where.

    Raises UserError (nothing changed) when a model is unknown, a value cannot be edited in place, or the edited
    text would mean anything else than the original with the new digests."""
    root = _compose(text, label)
    models = _models(root, label)
    unknown = [m for m in digests if m not in models]
    if unknown:
        raise UserError(
            f"{label}: no model {', '.join(map(repr, unknown))} under models (defined: {', '.join(models)})"
        )
    edits = [e for m, d in digests.items() if (e := _edit_for(text, label, m, models[m], d)) is not None]
    new = text
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        new = new[: e.start] + e.text + new[e.end :]
    if edits:
        expected = _load_plain(text, label)
        for model_id, digest in digests.items():
            expected["models"][model_id][FIELD] = digest
        if _load_plain(new, label) != expected:
            raise UserError(f"{label}: writing the digests would change other values; add them by hand")
    pinned_models = _models(_compose(new, label), label)
    previous = {e.model_id: e.previous for e in edits}
    result = []
    for model_id, digest in digests.items():
        found = _get(pinned_models[model_id], FIELD)
        line = found[1].start_mark.line + 1 if found is not None else 0
        result.append(Pinned(model_id, digest, previous.get(model_id, digest), line))
    return new, result


def locate(text: str, model_id: str, label: str = "release") -> int | None:
    """1-based line of ``models.<model_id>.artifact_sha256`` in ``text`` (None when absent)."""
    try:
        models = _models(_compose(text, label), label)
    except UserError:
        return None
    found = _get(models.get(model_id), FIELD)
    return found[1].start_mark.line + 1 if found is not None else None


def read_release_text(path: Path) -> tuple[bytes, str]:
    """(the file's bytes, its text without a UTF-8 byte order mark)."""
    data = path.read_bytes()
    try:
        return data, data.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 (byte {exc.start}); cannot write digests") from None


def pin_file(path: Path, digests: Mapping[str, str], *, expected_bytes: bytes | None = None) -> list[Pinned]:
    """Write ``digests`` into the release file at ``path`` (see the module docstring); atomic, permissions kept.

    ``expected_bytes``: the file as it was when the digests were computed; if it changed since (an editor saved
    it while training ran), nothing is written."""
    target = path.resolve()
    data, text = read_release_text(target)
    if expected_bytes is not None and data != expected_bytes:
        raise UserError(f"{path}: changed while training ran; nothing was written: run the command again")
    new, pinned = pin_text(text, digests, str(path))
    if new == text:
        return pinned
    encoded = (_UTF8_BOM if data.startswith(_UTF8_BOM) else b"") + new.encode("utf-8")
    mode = stat.S_IMODE(target.stat().st_mode)
    write_atomic(target, encoded, mode=mode)
    return pinned
