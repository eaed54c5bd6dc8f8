"""Bounds on what a release file may cost to read, checked before and while PyYAML reads it.

PyYAML's pure-Python scanner is slow per token (tens of microseconds once the document is built and checked) and
quadratic in flow nesting: it re-examines one possible simple key per open ``[``/``{`` for every token, so 1 MiB of
``[`` runs for many minutes. A shipped release is 58 tokens in 46 short lines, so a file far outside that shape is
refused with one located message before the parser sees it:

* :func:`prescan`: a linear pass over the text (line count and length with string methods, then a regex lexer that
  stops at the first bound crossed) that bounds lines, line length, tokens, the length of quoted and block scalars,
  the characters of all keys and values together (PyYAML reads those one character at a time), and nesting by flow
  brackets and by block indentation (including compact ``- - -`` and ``- key:`` on one line). It knows quoted
  scalars, comments and block scalars (``|``, ``>``) well enough for release files; it never needs to be exact,
  because
* :class:`BoundedLoader` enforces the nesting and token bounds inside PyYAML's scanner, on the scanner's own view
  of the text (flow level, indentation stack, tokens produced). Text that fools the lexer (a quote inside a
  multi-line plain scalar, say) still costs at most those bounds on a file within the size limit.

Both raise or return the position as 1-based line and column (in characters, as editors and PyYAML count them).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import yaml

MAX_DEPTH = 32  # nesting levels; the schema needs 5
MAX_LINES = 10_000  # a release is about 50 lines; 200 times that is no longer a hand-edited file
MAX_LINE_CHARS = 1024  # the longest line of a shipped release is 133 characters; a data path is at most 255
MAX_TOKENS = 2_000  # keys, values, brackets, commas, dashes: a shipped release has 58, ten models about 400
MAX_SCALAR_CHARS = 4096  # a quoted or block scalar; the longest value of a release is a 255-character data path
MAX_TEXT_CHARS = 64 * 1024  # all keys and values together: a shipped release has about 630 characters of them
# PyYAML also counts KEY, VALUE, BLOCK-MAPPING-START and BLOCK-END tokens (about 2 per key/value pair); the scanner
# bound is a backstop for text the pre-scan misreads, so it sits above what the pre-scan lets through.
MAX_SCANNER_TOKENS = 3 * MAX_TOKENS


class Refusal(NamedTuple):
    line: int  # 1-based
    col: int  # 1-based, in characters
    reason: str


def _nested(kind: str) -> str:
    return f"nested deeper than {MAX_DEPTH} levels ({kind}); a release needs 5"


def _too_many_tokens(limit: int = MAX_TOKENS, what: str = "keys, values, brackets, dashes") -> str:
    return f"more than {limit} YAML tokens ({what}); a release has a few hundred, so this is not a release file"


def _too_long(chars: int) -> str:
    return (
        f"a string of {chars} characters, over the {MAX_SCALAR_CHARS}-character limit of a release value "
        "(the longest, a data path, is at most 255)"
    )


def _too_much_text() -> str:
    return (
        f"more than {MAX_TEXT_CHARS} characters of keys and values; a release has about a thousand, "
        "so this is not a release file"
    )


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


# One token of the pre-scan per match. Quoted scalars may span lines (DOTALL) and run to the end of the text when
# unterminated; a word is anything else up to white space or a flow indicator (plain scalars, "key:", "-", "&a").
_LEX = re.compile(
    r"""
      (?P<nl>\n)
    | (?P<ws>[ \t\r]+)
    | (?P<comment>\#[^\n]*)
    | (?P<open>[\[{])
    | (?P<close>[\]}])
    | (?P<comma>,)
    | (?P<dq>"[^"\\]*(?:\\.[^"\\]*)*"?)
    | (?P<sq>'[^']*(?:''[^']*)*'?)
    | (?P<word>[^\s\[\]{},]+)
    """,
    re.VERBOSE | re.DOTALL,
)
_BLOCK_SCALAR = re.compile(r"[|>](?:[1-9][-+]?|[-+][1-9]?)?")
_BLOCK_REST = re.compile(r"[ \t]*(?:#[^\n]*)?(?:\n|\Z)")


def _block_scalar_end(text: str, pos: int, min_indent: int) -> int:
    """Index of the first line after a block scalar whose header line ends at ``pos`` (just after its newline).

    ``min_indent`` is the smallest indentation of the content. The content's indentation is that of its first
    non-blank line (or of a longer all-space line before it), as PyYAML reads it.
    """
    block_indent: int | None = None
    widest_blank = 0
    n = len(text)
    while pos < n:
        end = text.find("\n", pos)
        end = n if end < 0 else end
        line = text[pos:end]
        indent = len(line) - len(line.lstrip(" "))
        if indent == len(line):  # empty or spaces only: content of any block scalar
            widest_blank = max(widest_blank, indent)
        else:
            if block_indent is None:
                block_indent = max(min_indent, widest_blank, indent)
            if indent < block_indent:
                return pos
        pos = end + 1
    return n


def prescan(text: str) -> Refusal | None:
    """The first bound ``text`` crosses, or None. Linear in the text; stops at the first bound crossed."""
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if lines > MAX_LINES:
        return Refusal(MAX_LINES + 1, 1, f"the file has {lines} lines, over the {MAX_LINES}-line limit of a release")
    if len(max(text.split("\n"), key=len)) > MAX_LINE_CHARS:
        for number, line in enumerate(text.split("\n"), 1):
            if len(line) > MAX_LINE_CHARS:
                return Refusal(
                    number,
                    MAX_LINE_CHARS + 1,
                    f"line {number} is {len(line)} characters long, over the {MAX_LINE_CHARS}-character limit "
                    "of a release line",
                )
    return _lex(text)


def _lex(text: str) -> Refusal | None:
    tokens = 0
    chars = 0  # of keys and values (words, quoted and block scalars)
    flow = 0  # open flow collections
    indents: list[int] = []  # block indentation levels of the enclosing lines (outside flow collections)
    line_level = 0  # block nesting reached on the current line
    line_first = True  # the next token is the first of its line
    prev_col = 0  # column (0-based) of the previous token on the line
    pos, n = 0, len(text)
    while pos < n:
        m = _LEX.match(text, pos)
        if m is None:  # pragma: no cover - the alternatives cover every character
            break
        kind, start, pos = m.lastgroup, m.start(), m.end()
        if kind == "nl":
            line_first = True
            continue
        if kind in ("ws", "comment"):
            continue
        tokens += 1
        if tokens > MAX_TOKENS:
            return Refusal(*_line_col(text, start), _too_many_tokens())
        col = start - (text.rfind("\n", 0, start) + 1)
        if kind in ("dq", "sq") and pos - start > MAX_SCALAR_CHARS:
            return Refusal(*_line_col(text, start), _too_long(pos - start))
        if kind in ("word", "dq", "sq"):
            chars += pos - start
            if chars > MAX_TEXT_CHARS:
                return Refusal(*_line_col(text, start), _too_much_text())
        if kind == "open":
            flow += 1
            if flow > MAX_DEPTH:
                return Refusal(*_line_col(text, start), _nested("flow collections '[' and '{'"))
        elif kind == "close":
            flow = max(0, flow - 1)  # a bracket inside a block plain scalar is text; never go below zero
        if flow == 0 and kind != "close":
            if line_first:
                while indents and indents[-1] > col:
                    indents.pop()
                if not indents or indents[-1] < col:
                    indents.append(col)
                line_level = len(indents)
            elif kind == "word" and (m.group() in ("-", "?") or m.group().endswith(":")):
                line_level += 1  # compact nesting on one line: "- - key: value"
            if line_level > MAX_DEPTH:
                return Refusal(*_line_col(text, start), _nested("block indentation"))
            if kind == "word" and _BLOCK_SCALAR.fullmatch(m.group()):
                rest = _BLOCK_REST.match(text, pos)
                if rest is not None:  # a block scalar header: its content lines are text, not structure
                    parent = col if line_first else prev_col
                    pos = _block_scalar_end(text, rest.end(), parent + 1)
                    if pos - rest.end() > MAX_SCALAR_CHARS:
                        return Refusal(*_line_col(text, start), _too_long(pos - rest.end()))
                    chars += pos - rest.end()
                    if chars > MAX_TEXT_CHARS:
                        return Refusal(*_line_col(text, start), _too_much_text())
                    line_first = True
                    continue
        line_first = False
        prev_col = col
    return None


# ---------------------------------------------------------------------------------------------------------------
# The same bounds inside PyYAML's scanner
# ---------------------------------------------------------------------------------------------------------------


class LimitExceeded(yaml.MarkedYAMLError):
    """A bound crossed while scanning; ``problem_mark`` is where."""


_BREAK_OR_BOM = re.compile("[\n\r\x85\u2028\u2029\ufeff]")
_SPACES_AND_COMMENT = re.compile("[ ]*(?:#[^\0\r\n\x85\u2028\u2029]*)?")


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader whose scanner stops at the bounds above (flow level, indentation stack, tokens).

    It also skips runs of spaces and comments, and moves over text without line breaks, with string methods
    instead of PyYAML's loop per character (a megabyte of comments or indentation took over a second). Both
    fast paths apply to text input only, where PyYAML holds the whole text in its buffer.
    """

    def forward(self, length: int = 1) -> None:
        end = self.pointer + length
        if length > 1 and self.raw_buffer is None and end < len(self.buffer):
            if _BREAK_OR_BOM.search(self.buffer, self.pointer, end) is None:
                self.pointer, self.index, self.column = end, self.index + length, self.column + length
                return
        super().forward(length)

    def scan_to_next_token(self) -> None:
        if self.raw_buffer is not None:
            super().scan_to_next_token()
            return
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            skip = _SPACES_AND_COMMENT.match(self.buffer, self.pointer)
            if skip is not None and skip.end() > self.pointer:
                self.forward(skip.end() - self.pointer)
            if not self.scan_line_break():  # type: ignore[no-untyped-call]
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def _refuse(self, reason: str) -> None:
        raise LimitExceeded(problem=reason, problem_mark=self.get_mark())

    def fetch_more_tokens(self) -> None:
        super().fetch_more_tokens()
        taken: int = self.tokens_taken + len(self.tokens)
        if taken > MAX_SCANNER_TOKENS:
            self._refuse(_too_many_tokens(MAX_SCANNER_TOKENS, "as the YAML scanner counts them"))

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 - PyYAML's signature
        if self.flow_level >= MAX_DEPTH:
            self._refuse(_nested("flow collections '[' and '{'"))
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if column > self.indent and len(self.indents) >= MAX_DEPTH:
            self._refuse(_nested("block indentation"))
        added: bool = super().add_indent(column)
        return added
