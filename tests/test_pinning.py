"""Writing digests into release files (``smgitops.pinning``, used by ``smgitops train --write``): one value or one
line changes, every other byte of the file stays as it was (comments, aligned comments, blank lines, quoting, key
order, line endings, a byte order mark), and the result is a valid release that pins the new digest."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from smgitops import pinning
from smgitops.errors import UserError
from smgitops.release_checks import validate_text

ROOT = Path(__file__).resolve().parents[1]
NEW = "ab" * 32
OTHER = "cd" * 32

# A second model without a digest, written the way people write: comments above, beside and below its keys, a
# blank line, a nested mapping last but one, a comment line after its last key.
CANDIDATE = """\
  # candidate: stronger regularisation; no digest yet, `train --write` pins it
  cancer-logreg-c05:          # model id
    data:
      path: data/breast_cancer.csv   # same data
      sha256: '432ff316e7bfb60b70a275064b4401315cc39f09c9099d031013a23647e98687'

    estimator: sklearn.linear_model.LogisticRegression
    params: {C: 0.5, max_iter: 5000}   # flow style, kept as written
    seed: 7                   # the same split as the primary
    # (a comment after the model's last key stays after it)

"""


def _with_candidate() -> str:
    text = (ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8")
    return text.replace("\nvariants:", "\n" + CANDIDATE + "variants:", 1)


def _only_inserted(before: str, after: str) -> list[str]:
    """The lines ``after`` has beyond ``before``, asserting that every line of ``before`` is still there, in order
    and byte for byte (nothing else changed, moved or was reformatted)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    inserted, i = [], 0
    for line in new:
        if i < len(old) and line == old[i]:
            i += 1
        else:
            inserted.append(line)
    assert i == len(old), f"line {i + 1} of the original changed or went missing: {old[i]!r}"
    return inserted


def test_a_missing_digest_is_one_new_line_after_the_models_last_value() -> None:
    before = _with_candidate()
    after, [pinned] = pinning.pin_text(before, {"cancer-logreg-c05": NEW})
    assert _only_inserted(before, after) == [f'    artifact_sha256: "{NEW}"\n']
    lines = after.splitlines()
    assert lines[pinned.line - 1] == f'    artifact_sha256: "{NEW}"'
    assert lines[pinned.line - 2].startswith("    seed: 7 ")  # right after the last value's line
    assert lines[pinned.line] == "    # (a comment after the model's last key stays after it)"
    assert (pinned.previous, pinned.changed) == (None, True)
    doc = yaml.safe_load(after)
    assert doc["models"]["cancer-logreg-c05"]["artifact_sha256"] == NEW
    assert list(doc["models"]["cancer-logreg-c05"]) == ["data", "estimator", "params", "seed", "artifact_sha256"]
    assert validate_text(after, ROOT / "releases" / "dev.yaml") == []


@pytest.mark.parametrize(
    ("written", "expected"),
    [(f'"{OTHER}"', f'"{NEW}"'), (f"'{OTHER}'", f"'{NEW}'"), (OTHER, NEW)],
    ids=["double-quoted", "single-quoted", "plain"],
)
def test_a_pinned_digest_is_replaced_in_place_keeping_its_quoting(written: str, expected: str) -> None:
    original = (ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8")
    old_digest = yaml.safe_load(original)["models"]["cancer-logreg"]["artifact_sha256"]
    before = original.replace(f'"{old_digest}"', written)
    after, [pinned] = pinning.pin_text(before, {"cancer-logreg": NEW})
    assert after == before.replace(written, expected)
    assert pinned.previous == OTHER and pinned.line == before.splitlines().index(f"    artifact_sha256: {written}") + 1


def test_a_plain_digest_that_would_read_as_a_number_is_quoted() -> None:
    numeric = "1" * 60 + "e123"
    before = (ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8")
    old_digest = yaml.safe_load(before)["models"]["cancer-logreg"]["artifact_sha256"]
    before = before.replace(f'"{old_digest}"', OTHER)
    after, _ = pinning.pin_text(before, {"cancer-logreg": numeric})
    assert after == before.replace(OTHER, f'"{numeric}"')
    assert yaml.safe_load(after)["models"]["cancer-logreg"]["artifact_sha256"] == numeric


def test_the_same_digest_changes_nothing() -> None:
    before = (ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8")
    digest = yaml.safe_load(before)["models"]["cancer-logreg"]["artifact_sha256"]
    after, [pinned] = pinning.pin_text(before, {"cancer-logreg": digest})
    assert after == before and not pinned.changed


@pytest.mark.parametrize(
    ("written", "rest"),
    [("", ""), ("   # train --write fills it", "   # train --write fills it"), (" ~", ""), (' ""', "")],
    ids=["empty", "empty-with-comment", "tilde", "empty-string"],
)
def test_an_empty_digest_is_filled_in_place(written: str, rest: str) -> None:
    shipped = (ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8")
    old_digest = yaml.safe_load(shipped)["models"]["cancer-logreg"]["artifact_sha256"]
    before = shipped.replace(f' "{old_digest}"', written)
    [problem] = validate_text(before, ROOT / "releases" / "dev.yaml")
    assert (problem.field, problem.line) == ("models.cancer-logreg.artifact_sha256", 35)
    assert "`smgitops train" in problem.reason and "--write` trains the model and writes it" in problem.reason

    after, [pinned] = pinning.pin_text(before, {"cancer-logreg": NEW})
    assert after == before.replace(f"    artifact_sha256:{written}\n", f'    artifact_sha256: "{NEW}"{rest}\n')
    assert pinned.line == 35 and pinned.changed
    assert validate_text(after, ROOT / "releases" / "dev.yaml") == []


def test_crlf_line_endings_and_a_last_line_without_a_break_are_kept() -> None:
    before = "environment: dev\r\nmodels:\r\n  m:\r\n    seed: 1  # s\r\n    params: {}"
    after, _ = pinning.pin_text(before, {"m": NEW})
    assert after == before + f'\r\n    artifact_sha256: "{NEW}"\r\n'


def test_a_flow_mapping_gains_the_field_before_its_closing_brace() -> None:
    before = "models:\n  m: {seed: 1, params: {}}   # one line\n  n: {seed: 2,\n      params: {},\n  }\nx: 1\n"
    after, _ = pinning.pin_text(before, {"m": NEW, "n": OTHER})
    assert after == (
        f'models:\n  m: {{seed: 1, params: {{}}, artifact_sha256: "{NEW}"}}   # one line\n'
        f'  n: {{seed: 2,\n      params: {{}}, artifact_sha256: "{OTHER}"\n  }}\nx: 1\n'
    )


def test_a_nested_block_mapping_last_is_followed_not_split() -> None:
    before = "models:\n  m:\n    seed: 1\n    params:\n      C: 1.0  # c\n      # about C\n\n  n:\n    seed: 2\n"
    after, _ = pinning.pin_text(before, {"m": NEW})
    assert after == before.replace("      C: 1.0  # c\n", f'      C: 1.0  # c\n    artifact_sha256: "{NEW}"\n')


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("models:\n  m:\n    artifact_sha256: |\n      abc\n", "quoted string on one line"),
        ("models:\n  m: 3\n", "not a mapping"),
        ("models: []\n", "no mapping of models"),
    ],
)
def test_values_that_cannot_be_edited_in_place_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        pinning.pin_text(text, {"m": NEW}, "releases/dev.yaml")


def test_an_unknown_model_is_refused_naming_the_defined_ones() -> None:
    with pytest.raises(UserError, match=r"no model 'x'.*defined: cancer-logreg"):
        pinning.pin_text((ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8"), {"x": NEW})


def test_pin_file_keeps_permissions_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    text = _with_candidate()
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    os.chmod(path, 0o640)
    [pinned] = pinning.pin_file(path, {"cancer-logreg-c05": NEW})
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert _only_inserted(text, data[3:].decode("utf-8")) == [f'    artifact_sha256: "{NEW}"\n']
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and pinned.changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.yaml"]  # no temporary file left


def test_pin_file_refuses_a_file_that_changed_since_training_started(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(_with_candidate(), encoding="utf-8")
    seen = path.read_bytes()
    path.write_text(_with_candidate().replace("C: 0.5", "C: 0.25"), encoding="utf-8")
    edited = path.read_bytes()
    with pytest.raises(UserError, match="changed while training ran; nothing was written"):
        pinning.pin_file(path, {"cancer-logreg-c05": NEW}, expected_bytes=seen)
    assert path.read_bytes() == edited
