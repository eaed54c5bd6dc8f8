"""Generated bad input: hundreds of mutated releases through the real ``smgitops validate``, none reaching AWS.

Each case starts from a shipped release (``releases/dev.yaml`` or ``releases/prod.yaml``) in a scratch repository
and mutates it either at the YAML level (change a value's type, delete or duplicate a key, add an unknown field,
out-of-range numbers, bad strings, reordered keys, wrong nesting) or at the byte level (flip, insert or delete
bytes, invalid UTF-8, control characters, byte order marks, tabs, truncation). Every case runs through
``smgitops.cli.main`` in this process, the function the console script calls (argument parsing, the command table
and the error printer included), and must end in exactly one of two ways:

* exit 0, ``<file>: ok`` on stdout (after any ``<file>: note: ...``) and nothing on stderr (the mutation left a
  valid release), or
* exit 2, every stderr line but the last ``<file>:<line>:<col>: `` followed by a field and a reason, the last
  ``smgitops validate: N problem(s) found``, and no traceback.

Mutations whose outcome is known (a reordering is valid, a deleted required field is not) assert that outcome too.
The whole run points ``AWS_ENDPOINT_URL`` at an emulator and asserts that its AWS request counter did not move.
Hypothesis runs derandomized without an example database, so every run (and CI) checks the same cases.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smgitops.cli import main
from smgitops.emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {env: ROOT / "releases" / f"{env}.yaml" for env in ("dev", "prod")}
DATA = ROOT / "data" / "breast_cancer.csv"

# 520 cases a run (at least 500, and at least 250 of each kind, are asserted below).
YAML_CASES = 260
BYTE_CASES = 260
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>[1-9][0-9]*):(?P<col>[1-9][0-9]*): \S.*: .+$")
SUMMARY = re.compile(r"^smgitops validate: [1-9][0-9]* problems? found$")


# ---------------------------------------------------------------------------------------------------------------
# running one case through the CLI
# ---------------------------------------------------------------------------------------------------------------


def run_validate(release: Path, data: bytes) -> tuple[int, str, str]:
    release.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(release)])
    return code, out.getvalue(), err.getvalue()


def check_outcome(release: Path, data: bytes, expect: str) -> str:
    """Run one case; assert it is valid (exit 0) or refused with located problems (exit 2). Returns which."""
    code, out, err = run_validate(release, data)
    shown = data[:400].decode("utf-8", errors="backslashreplace")
    assert "Traceback" not in out + err, f"traceback for:\n{shown}\n{err}"
    notes = [line for line in out.splitlines() if line.startswith(f"{release}: note: ")]
    if code == 0:
        assert out.splitlines() == [*notes, f"{release}: ok"], f"exit 0 but output for:\n{shown}\n{out}"
        assert err == "", f"exit 0 with errors for:\n{shown}\n{err}"
        outcome = "valid"
    else:
        assert code == 2, f"exit {code} for:\n{shown}\n{err}"
        assert out.splitlines() == notes, out
        lines = err.splitlines()
        assert len(lines) >= 2 and SUMMARY.match(lines[-1]), f"no summary line for:\n{shown}\n{err}"
        for line in lines[:-1]:
            m = PROBLEM.match(line)
            assert m and m.group("file") == str(release), f"not file:line:col: field: reason: {line!r}\n{shown}"
        outcome = "invalid"
    assert expect in ("either", outcome), f"expected {expect}, got {outcome} for:\n{shown}\n{err}"
    return outcome


# ---------------------------------------------------------------------------------------------------------------
# YAML-level mutations (of the parsed document, dumped back to YAML)
# ---------------------------------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def leaf_paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path of the document (mappings' keys and lists' indexes), parents before children."""
    out: list[Path_] = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += leaf_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += leaf_paths(value, (*prefix, i))
    return out


def parent_of(doc: Any, path: Path_) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


BAD_STRINGS = [
    "",
    " ",
    "yes",
    "no",
    "on",
    "~",
    "null",
    "19:30",
    "25:00",
    "0o17",
    "010",
    "1_000",
    "1e3",
    ".inf",
    ".nan",
    "2024-01-01",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\data.csv",
    "data",
    "data/../data/breast_cancer.csv",
    "ml.t3.medium",
    "ml.p4d.24xlarge",
    "eu-west-1",
    "Mars/Olympus",
    "sklearn.svm.SVC",
    "os.system",
    "DEV",
    "-dev",
    "a" * 300,
    "x\x00y",
    "tab\there",
    "new\nline",
    "é" * 20,
    "\u202e",
    "\ufeff",
    "1.2-0-cpu-py3",
    "0" * 64,
    "F" * 64,
]
NUMBERS = st.one_of(
    st.sampled_from([-1, 0, 1, 99, 100, 101, 4294967296, 10**30, -(10**30), 2**63]),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(
    NUMBERS,
    st.booleans(),
    st.none(),
    st.sampled_from(BAD_STRINGS),
    st.text(max_size=40),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), SCALARS, max_size=3),
)
KEYS = st.one_of(
    st.sampled_from(["enviroment", "Environment", "weights", "extra", "name", "123", "true", "a.b", "<<"]),
    st.text(min_size=1, max_size=12),
)


@functools.cache
def shipped_document(env: str) -> Any:
    """The shipped release of ``env``, parsed once (each case mutates a deep copy)."""
    return yaml.safe_load(SHIPPED[env].read_text(encoding="utf-8"))


@st.composite
def yaml_mutation(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(environment, mutated file bytes, expected outcome: 'valid', 'invalid' or 'either')."""
    env = draw(st.sampled_from(sorted(SHIPPED)))
    doc = copy.deepcopy(shipped_document(env))
    paths = leaf_paths(doc)
    kind = draw(
        st.sampled_from(
            ["retype", "delete", "duplicate", "unknown", "numbers", "strings", "reorder", "nest", "move", "several"]
        )
    )
    expect = "either"
    steps = draw(st.integers(min_value=2, max_value=4)) if kind == "several" else 1
    for _ in range(steps):
        step = kind if kind != "several" else draw(st.sampled_from(["retype", "delete", "unknown", "strings", "nest"]))
        paths = leaf_paths(doc)
        path = draw(st.sampled_from(paths))
        parent = parent_of(doc, path)
        last = path[-1]
        if step == "retype":
            parent[last] = draw(VALUES)
        elif step == "delete":
            if isinstance(parent, dict):
                del parent[last]
                required_top = len(path) == 1  # every top-level field of a release is required
                expect = "invalid" if required_top and kind != "several" else expect
            else:
                parent.pop(last)
        elif step == "unknown":
            target = parent[last] if isinstance(parent[last], dict) else parent
            if isinstance(target, dict):
                key = draw(KEYS)
                if key not in target and kind != "several" and target is not doc.get("models"):
                    is_params = path[:1] == ("models",) and "params" in path
                    expect = "either" if is_params else "invalid"
                target[key] = draw(VALUES)
        elif step == "numbers":
            numeric = [p for p in paths if isinstance(parent_of(doc, p)[p[-1]], int | float)]
            path = draw(st.sampled_from(numeric))
            parent_of(doc, path)[path[-1]] = draw(NUMBERS)
        elif step == "strings":
            texts = [p for p in paths if isinstance(parent_of(doc, p)[p[-1]], str)]
            path = draw(st.sampled_from(texts))
            parent_of(doc, path)[path[-1]] = draw(st.one_of(st.sampled_from(BAD_STRINGS), st.text(max_size=80)))
        elif step == "reorder":
            mappings = [doc] + [parent_of(doc, p)[p[-1]] for p in paths if isinstance(parent_of(doc, p)[p[-1]], dict)]
            target = draw(st.sampled_from(mappings))
            items = list(target.items())
            order = draw(st.permutations(range(len(items))))
            target.clear()
            target.update(items[i] for i in order)
            expect = "valid"
        elif step == "nest":
            wrap = draw(st.sampled_from(["list", "dict", "unwrap"]))
            value = parent[last]
            if wrap == "list":
                parent[last] = [value]
            elif wrap == "dict":
                parent[last] = {draw(KEYS): value}
            elif isinstance(value, dict | list) and value:
                parent[last] = next(iter(value.values())) if isinstance(value, dict) else value[0]
        elif step == "move":
            other = draw(st.sampled_from([p for p in paths if isinstance(parent_of(doc, p)[p[-1]], dict)]))
            target = parent_of(doc, other)[other[-1]]
            if target is not parent and isinstance(parent, dict) and isinstance(target, dict):
                target[last] = parent.pop(last)
    # LibYAML's emitter (the same safe representation of the document, about ten times faster than PyYAML's own)
    text = yaml.dump(
        doc,
        Dumper=yaml.CSafeDumper,
        sort_keys=False,
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([80, 4096])),
    )
    if kind == "duplicate":
        lines = text.split("\n")
        keyed = [i for i, line in enumerate(lines) if re.match(r"^ *[A-Za-z_][\w.-]*:", line)]
        i = draw(st.sampled_from(keyed))
        lines.insert(i + 1, lines[i])
        text = "\n".join(lines)
        expect = "invalid"
    return env, text.encode("utf-8"), expect


# ---------------------------------------------------------------------------------------------------------------
# byte-level mutations (of the shipped file's bytes, comments and all)
# ---------------------------------------------------------------------------------------------------------------

INVALID_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xed\xa0\x80",
    b"\xf0\x28\x8c\x28",
    b"\xc0\xaf",
]
CONTROL = [bytes([c]) for c in [*range(0, 9), 11, 12, *range(14, 32), 127]] + ["\u0085".encode(), "\u2028".encode()]
BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"]
HOSTILE = [b"[" * 40, b"{a: " * 40, b"- " * 40, b"&a ", b"*a ", b"!!python/object:os.system ", b"%YAML 1.1\n", b"---\n"]


@st.composite
def byte_mutation(draw: st.DrawFn) -> tuple[str, bytes, str]:
    env = draw(st.sampled_from(sorted(SHIPPED)))
    data = bytearray(SHIPPED[env].read_bytes())
    kind = draw(
        st.sampled_from(["flip", "insert", "delete", "utf8", "control", "bom", "tab", "truncate", "crlf", "hostile"])
    )
    steps = draw(st.integers(min_value=1, max_value=3))
    expect = "either"
    for _ in range(steps):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        if kind == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= draw(st.integers(min_value=1, max_value=255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            data[at : at + draw(st.integers(min_value=1, max_value=64))] = b""
        elif kind == "utf8":
            data[at:at] = draw(st.sampled_from(INVALID_UTF8))
            expect = "invalid"
        elif kind == "control":
            data[at:at] = draw(st.sampled_from(CONTROL))
        elif kind == "bom":
            bom = draw(st.sampled_from(BOMS))
            data[draw(st.sampled_from([0, at])) : draw(st.sampled_from([0, at]))] = bom
        elif kind == "tab":
            starts = [m.start() for m in re.finditer(rb"\n( +)", bytes(data))]
            if starts:
                i = draw(st.sampled_from(starts)) + 1
                data[i : i + draw(st.integers(min_value=1, max_value=2))] = b"\t"
        elif kind == "truncate":
            del data[at:]
        elif kind == "crlf":
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
        elif kind == "hostile":
            data[at:at] = draw(st.sampled_from(HOSTILE)) * draw(st.integers(min_value=1, max_value=30))
    return env, bytes(data), expect


# ---------------------------------------------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def fuzz_repo(tmp_path: Path) -> dict[str, Path]:
    """A scratch repository with both shipped releases and their data file; release paths by environment."""
    (tmp_path / "releases").mkdir()
    (tmp_path / "data").mkdir()
    shutil.copyfile(DATA, tmp_path / "data" / DATA.name)
    return {env: tmp_path / "releases" / f"{env}.yaml" for env in SHIPPED}


# Two halves, one per kind of mutation, so that two workers of the fast suite share the cases.
@pytest.mark.parametrize("kind", ["yaml", "bytes"])
def test_generated_bad_releases_are_refused_with_a_location_and_no_aws_request(
    kind: str, emulator: Emulator, fuzz_repo: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    stats = emulator.admin.stats()
    outcomes: Counter[str] = Counter()

    def case(generated: tuple[str, bytes, str]) -> None:
        env, data, expect = generated
        outcomes[check_outcome(fuzz_repo[env], data, expect)] += 1

    strategy, count = (yaml_mutation(), YAML_CASES) if kind == "yaml" else (byte_mutation(), BYTE_CASES)
    run: Callable[[], None] = settings(FUZZ, max_examples=count)(given(strategy)(case))
    run()

    total = sum(outcomes.values())
    assert total >= 250, outcomes  # with the other kind's half: at least 500 cases a run
    assert outcomes["invalid"] >= total // 2, outcomes  # the mutations mostly break the release, as intended
    assert outcomes["valid"] >= 5, outcomes  # and the valid ones were judged valid, not refused wholesale
    assert emulator.admin.stats()["aws_requests"] == stats["aws_requests"], "validate sent a request to AWS"

    # The counter is live: one real AWS request through the same endpoint moves it.
    import boto3

    boto3.client("sts").get_caller_identity()
    assert emulator.admin.stats()["aws_requests"] == stats["aws_requests"] + 1
    with capsys.disabled():
        refused, valid = outcomes["invalid"], outcomes["valid"]
        print(f"\nvalidate fuzz ({kind}): {total} cases ({refused} refused, {valid} still valid)")
