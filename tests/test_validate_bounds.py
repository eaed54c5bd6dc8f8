"""Hostile input costs little: files up to the 1 MiB size limit that would make a YAML parser crawl are refused
with one located message (exit 2), before the parser sees them.

Each input class below is about 1 MiB (or as large as the class gets) and is refused by the pre-scan of
``smgitops.yamlbounds``; the parser is replaced by a tripwire to prove it never ran. Text built to fool the
pre-scan is still stopped by the same bounds inside the scanner. How long each class takes is measured by
``bench/bench_validate.py``, never asserted here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smgitops import release_checks, yamlload
from smgitops.cli import main
from smgitops.release_checks import MAX_FILE_BYTES, MAX_PROBE_FITS
from smgitops.yamlbounds import (
    MAX_DEPTH,
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_SCALAR_CHARS,
    MAX_TEXT_CHARS,
    MAX_TOKENS,
    BoundedLoader,
    LimitExceeded,
    prescan,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "releases" / "dev.yaml"
MIB = 1 << 20


@pytest.fixture()
def release(tmp_path: Path) -> Path:
    (tmp_path / "releases").mkdir()
    (tmp_path / "data").mkdir()
    shutil.copyfile(ROOT / "data" / "breast_cancer.csv", tmp_path / "data" / "breast_cancer.csv")
    return tmp_path / "releases" / "dev.yaml"


@pytest.fixture()
def no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The YAML parser must not see the text: building one fails the test."""

    def tripwire(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the YAML parser saw a file the pre-scan should have refused")

    monkeypatch.setattr(yamlload, "_Builder", tripwire)


def refused(release: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, col: int, reason: str) -> None:
    """``smgitops validate`` exits 2 with exactly one problem at ``line:col`` whose reason contains ``reason``."""
    data = text.encode("utf-8")
    assert len(data) <= MAX_FILE_BYTES
    release.write_bytes(data)
    code = main(["validate", str(release)])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert lines[-1] == "smgitops validate: 1 problem found", err[:2000]
    assert lines[0].startswith(f"{release}:{line}:{col}: (document): "), lines[0][:500]
    assert reason in lines[0], lines[0][:500]
    assert len(lines) == 2
    assert "Traceback" not in err


NESTED = f"nested deeper than {MAX_DEPTH} levels"


def fill(unit: str, size: int = MIB - 64) -> str:
    """``unit`` repeated to about ``size`` characters."""
    return unit * (size // len(unit))


# ---------------------------------------------------------------------------------------------------------------
# each input class, refused by the pre-scan before the parser
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_parser")
def test_one_mebibyte_of_nested_brackets_on_one_line(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(release, capsys, "a: " + fill("["), 1, MAX_LINE_CHARS + 1, f"over the {MAX_LINE_CHARS}-character limit")


@pytest.mark.usefixtures("no_parser")
def test_nested_brackets_in_short_lines(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "a: " + fill("[" * 1000 + "\n")
    refused(release, capsys, text, 1, 3 + MAX_DEPTH + 1, f"{NESTED} (flow collections")


@pytest.mark.usefixtures("no_parser")
def test_nested_flow_mappings(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "a: " + fill("{a: " * 250 + "\n")
    refused(release, capsys, text, 1, 3 + 4 * MAX_DEPTH + 1, f"{NESTED} (flow collections")


@pytest.mark.usefixtures("no_parser")
def test_deeply_indented_block_mappings(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staircase = "".join(" " * i + "k:\n" for i in range(1000))  # about 500 KB; twice is about 1 MiB
    refused(release, capsys, staircase * 2, MAX_DEPTH + 1, MAX_DEPTH + 1, f"{NESTED} (block indentation)")


@pytest.mark.usefixtures("no_parser")
def test_compact_dashes(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = fill("- " * 500 + "\n")
    refused(release, capsys, text, 1, 2 * MAX_DEPTH + 1, f"{NESTED} (block indentation)")


@pytest.mark.usefixtures("no_parser")
def test_one_mebibyte_single_line(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(release, capsys, "a: " + fill("x"), 1, MAX_LINE_CHARS + 1, f"is {3 + MIB - 64} characters")


@pytest.mark.usefixtures("no_parser")
def test_one_mebibyte_of_line_breaks(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(release, capsys, "\n" * (MIB - 1), MAX_LINES + 1, 1, f"over the {MAX_LINES}-line limit")


@pytest.mark.usefixtures("no_parser")
def test_many_small_keys(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "".join(f"k{i}: {i}\n" for i in range(MAX_LINES - 1))  # two tokens a line
    refused(release, capsys, text, MAX_TOKENS // 2 + 1, 1, f"more than {MAX_TOKENS} YAML tokens")


@pytest.mark.usefixtures("no_parser")
def test_many_anchors(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "".join(f"k{i}: &x{i} 1\n" for i in range(MAX_LINES - 1))  # three tokens a line
    line, nth = divmod(MAX_TOKENS, 3)  # token MAX_TOKENS + 1 is token nth (0-based) of line line + 1
    words = f"k{line}: &x{line} 1".split(" ")
    col = 1 + sum(len(w) + 1 for w in words[:nth])
    refused(release, capsys, text, line + 1, col, f"more than {MAX_TOKENS} YAML tokens")


@pytest.mark.usefixtures("no_parser")
def test_big_flow_sequence_of_numbers(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = "  " + "0, " * 100 + "\n"  # 200 tokens a line: 100 numbers, 100 commas
    text = "a: [\n" + body * 3000 + "]\n"
    # tokens: "a:", "[" on line 1; token MAX_TOKENS + 1 is token MAX_TOKENS - 1 of the body
    full_lines, nth = divmod(MAX_TOKENS - 2, 200)  # nth (0-based) of the next line; numbers are the even ones
    refused(release, capsys, text, 2 + full_lines, 3 + (nth // 2) * 3 + (nth % 2), f"more than {MAX_TOKENS} YAML")


@pytest.mark.usefixtures("no_parser")
def test_long_quoted_string_over_many_lines(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = 'environment: "' + ("x" * 1000 + "\n") * 1000 + '"\n'
    refused(release, capsys, text, 1, 14, f"over the {MAX_SCALAR_CHARS}-character limit of a release value")


@pytest.mark.usefixtures("no_parser")
def test_long_block_scalar(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "environment: |\n" + ("  " + "x" * 1000 + "\n") * 1000
    refused(release, capsys, text, 1, 14, f"over the {MAX_SCALAR_CHARS}-character limit of a release value")


# ---------------------------------------------------------------------------------------------------------------
# the scanner enforces the same bounds on text that fools the pre-scan
# ---------------------------------------------------------------------------------------------------------------


def test_text_that_fools_the_prescan_is_bounded_by_the_scanner(
    release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A quote at the start of a plain scalar's continuation line is text to YAML, but the pre-scan's lexer reads
    # it as the start of a quoted string running to the quote on the last line: the brackets hide inside.
    text = "a: x\n 'y\nb: " + "[" * 100 + "\nc: '\n"
    assert prescan(text) is None
    refused(release, capsys, text, 3, 3 + MAX_DEPTH + 1, f"{NESTED} (flow collections")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: " + "[" * (MAX_DEPTH + 1), "flow collections"),
        ("".join(" " * i + "k:\n" for i in range(MAX_DEPTH + 1)), "block indentation"),
        ("- " * (MAX_DEPTH + 1) + "x", "block indentation"),
        ("a: [" + ", ".join("0" for _ in range(3 * MAX_TOKENS)) + "]", "YAML tokens"),
    ],
    ids=["flow", "indentation", "dashes", "tokens"],
)
def test_scanner_bounds(text: str, reason: str) -> None:
    with pytest.raises(LimitExceeded, match=reason):
        for _ in yaml.parse(text, Loader=BoundedLoader):
            pass


def test_scanner_allows_the_deepest_accepted_nesting() -> None:
    text = "".join(" " * i + "k:\n" for i in range(MAX_DEPTH - 1)) + " " * (MAX_DEPTH - 1) + "k: 1\n"
    text += " " * (MAX_DEPTH - 1) + "j: 2\n"  # a second key at the deepest level pushes no new level
    assert prescan(text) is None
    assert yaml.load(text, Loader=BoundedLoader) is not None


# ---------------------------------------------------------------------------------------------------------------
# what a release may hold is not refused
# ---------------------------------------------------------------------------------------------------------------


def test_shipped_releases_pass_the_prescan() -> None:
    for path in sorted((ROOT / "releases").glob("*.yaml")):
        assert prescan(path.read_text(encoding="utf-8")) is None, path


def test_block_scalar_content_is_text_not_structure() -> None:
    text = "a: |\n  don't [[[[" + "[" * 40 + "\n  - - - - - " * 10 + "\nb: 1\n"
    assert prescan(text) is None
    nested = "- k: |\n  x: " + "[" * (MAX_DEPTH + 1) + "\n"  # "x:" is at the mapping's indentation: structure
    refusal = prescan(nested)
    assert refusal is not None and NESTED in refusal.reason


def test_brackets_inside_quoted_strings_are_text() -> None:
    text = 'a: "[[[[' + "[" * 40 + "\"\nb: '{{{{" + "{" * 40 + '\'\nc: ["]]]]]]]]", 1]\n'
    assert prescan(text) is None


def test_integer_too_long_for_python_is_a_problem(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace("seed: 7", "seed: " + "9" * 200, 1)
    release.write_text(text, encoding="utf-8")
    code = main(["validate", str(release)])
    _out, err = capsys.readouterr()
    assert code == 2
    line = next(i for i, t in enumerate(text.split("\n"), 1) if "seed: 999" in t)
    assert f"{release}:{line}:11: models.cancer-logreg.seed: an integer of 200 characters is too long" in err
    assert "Traceback" not in err


def test_did_you_mean_hints_stop_when_the_files_budget_is_spent(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every variant names an unknown model; each hint compares the name with every model id
    budget, n = 1000, 60
    monkeypatch.setattr(release_checks, "SUGGESTION_BUDGET", budget)
    text = SHIPPED.read_text(encoding="utf-8")
    text = text.replace("models:", "models:\n" + "".join(f"  m{i}: 1\n" for i in range(n)), 1)
    variants = "".join(f"  - {{name: v{i}, model: m{i}x, weight: 0}}\n" for i in range(n))
    text = text.replace("variants:", "variants:\n" + variants + "unused:", 1)
    release.write_text(text, encoding="utf-8")
    code = main(["validate", str(release)])
    _out, err = capsys.readouterr()
    assert code == 2
    unknown = [line for line in err.splitlines() if "is not defined under models" in line]
    hinted = [line for line in unknown if "did you mean" in line]
    assert unknown and all(line.startswith(f"{release}:") for line in unknown)
    assert 0 < len(hinted) <= budget // (n + 1) + 1 < len(unknown) == n
    assert "Traceback" not in err


def mutated_release(data: st.DataObject) -> str:
    text = list(SHIPPED.read_text(encoding="utf-8"))
    alphabet = list(" \t\n\r#:-[]{},'\"|>&*!?%@`abc01\ufeff\u00e9")
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        at = data.draw(st.integers(min_value=0, max_value=len(text)))
        text[at:at] = data.draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=4))
    return "".join(text)


def events(text: str, loader: type[yaml.SafeLoader]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    try:
        for e in yaml.parse(text, Loader=loader):
            start, end = e.start_mark, e.end_mark
            out.append((type(e).__name__, getattr(e, "value", None), start.index, start.line, start.column, end.index))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        out.append(("error", exc.problem, mark.index if mark else None, mark.line if mark else None))
    return out


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.data())
def test_bounded_loader_reads_as_pyyaml_does(data: st.DataObject) -> None:
    """The scanner's fast paths (spaces, comments, forward over text) give PyYAML's events, marks and errors."""
    text = mutated_release(data)
    assert events(text, BoundedLoader) == events(text, yaml.SafeLoader)


def test_teardowns_lenient_reading_of_a_failing_release_is_bounded_too(
    release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Teardown still sweeps the region of a release that fails validation, without paying for hostile text."""
    from smgitops import teardown, yamlbounds

    release.write_text(SHIPPED.read_text(encoding="utf-8").replace("weight: 100", "weight: 50"), encoding="utf-8")
    assert teardown._region_named(release) == "us-east-1"

    def tripwire(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the YAML parser saw a file the pre-scan should have refused")

    monkeypatch.setattr(yamlbounds, "BoundedLoader", tripwire)
    release.write_text("region: us-east-1\nx: " + fill("[" * 1000 + "\n"), encoding="utf-8")
    assert teardown._region_named(release) is None


@pytest.mark.usefixtures("no_parser")
def test_long_plain_values_in_many_lines(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "".join(f"k{i}: " + "x" * 1000 + "\n" for i in range(1000))  # about 1 MiB, 2,000 tokens
    line = MAX_TEXT_CHARS // (len("k00: ") - 1 + 1000) + 1  # keys "kNN:" of 3-4 characters; values of 1000
    refused(release, capsys, text, line, len(f"k{line - 1}: ") + 1, f"more than {MAX_TEXT_CHARS} characters")


def test_parameters_of_at_most_ten_models_are_test_fitted(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many models at the training budget cannot make validate fit for seconds: the probes stop, with a note."""
    from smgitops import estimators

    fitted: list[str] = []
    real_probe = estimators.probe_fit

    def counting_probe(dotted: str, *args: Any, **kwargs: Any) -> None:
        fitted.append(dotted)
        real_probe(dotted, *args, **kwargs)

    monkeypatch.setattr(estimators, "probe_fit", counting_probe)
    digest = "432ff316e7bfb60b70a275064b4401315cc39f09c9099d031013a23647e98687"
    model = (
        "{data: {path: data/breast_cancer.csv, sha256: " + digest + "}, estimator: "
        "sklearn.tree.DecisionTreeClassifier, params: {max_depth: 3}, seed: 7, artifact_sha256: " + digest + "}"
    )
    text = SHIPPED.read_text(encoding="utf-8")
    text = text.replace("models:", "models:\n" + "".join(f"  m{i}: {model}\n" for i in range(2 * MAX_PROBE_FITS)), 1)
    release.write_text(text, encoding="utf-8")
    code = main(["validate", str(release)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert len(fitted) == MAX_PROBE_FITS
    notes = [line for line in out.splitlines() if "test-fitted" in line]
    assert notes == [
        f"{release}: note: only the first {MAX_PROBE_FITS} models' parameters were test-fitted on a "
        "synthetic sample; training checks the others'"
    ]
