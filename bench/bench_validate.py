"""Worst-case ``smgitops validate`` time per class of hostile input, files of at most 1 MiB: median of 3 runs.

Each class is generated as large as the 1 MiB size limit allows (or as close to a bound as it gets without crossing
it, where that is the costlier side) and validated in-process through ``smgitops.cli.main``, the console script's
function, in a scratch repository holding the data file. The first run of the process pays for imports
(jsonschema, scikit-learn for the parameter check); a warm-up run of the shipped release absorbs that, so the
figures are the validation itself. The target is at most 2 s for every class. CPU seconds are printed beside the
wall-clock ones: on a shared machine they show the cost without the neighbours' load.

Classes marked "(scanner only)" run with the pre-scan switched off: the bounds inside PyYAML's scanner, which
stop text that fools the pre-scan, then carry the whole load.

Usage: ``.venv/bin/python bench/bench_validate.py [--runs N] [CLASS-SUBSTRING...]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from smgitops import yamlbounds, yamlload  # noqa: E402
from smgitops.cli import main  # noqa: E402
from smgitops.release_checks import MAX_FILE_BYTES  # noqa: E402
from smgitops.yamlbounds import (  # noqa: E402
    MAX_DEPTH,
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_SCALAR_CHARS,
    MAX_TEXT_CHARS,
    MAX_TOKENS,
)

LIMIT = MAX_FILE_BYTES - 64
DEV = (ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8")


def fill(unit: str, size: int = LIMIT) -> str:
    return unit * (size // len(unit))


def lines_of(unit: Callable[[int], str], size: int = LIMIT, max_lines: int = MAX_LINES - 1) -> str:
    out: list[str] = []
    total = 0
    for i in range(max_lines):
        line = unit(i)
        if total + len(line) > size:
            break
        out.append(line)
        total += len(line)
    return "".join(out)


def many_models_and_variants() -> str:
    """Just under the token bound: unknown model references, each compared with every model id for a suggestion."""
    n = (MAX_TOKENS - 200) // 7
    models = "".join(f"  m{i}: 1\n" for i in range(n))
    variants = "".join(f"  - {{model: m{i}x}}\n" for i in range(n))
    text = DEV.replace("models:", "models:\n" + models, 1)
    return text.replace("variants:", "variants:\n" + variants + "unused:", 1)


def many_models_at_the_training_budget() -> str:
    """A valid release (exit 0) with as many gradient-boosting models at the schema's training budget as fit the
    token bound: each model's parameters are test-fitted on a synthetic sample, up to a per-file number of models."""
    digest = "432ff316e7bfb60b70a275064b4401315cc39f09c9099d031013a23647e98687"
    model = (
        "{data: {path: data/breast_cancer.csv, sha256: " + digest + "}, "
        "estimator: sklearn.ensemble.GradientBoostingClassifier, "
        "params: {n_estimators: 1000, max_depth: 32, max_leaf_nodes: 4096}, seed: 7, artifact_sha256: " + digest + "}"
    )
    n = (MAX_TOKENS - 100) // 32
    return DEV.replace("models:", "models:\n" + "".join(f"  m{i}: {model}\n" for i in range(n)), 1)


def many_unknown_params() -> str:
    n = (MAX_TOKENS - 200) // 2
    params = "".join(f"      max_ite{i}: 1\n" for i in range(n))
    return DEV.replace("      C: 1.0\n", params, 1)


def many_unknown_fields() -> str:
    """Just under the token and text bounds: each unknown field gets a did-you-mean hint while the budget lasts."""
    n = (MAX_TOKENS - 10) // 2
    width = (MAX_TEXT_CHARS - 100) // n - len(f"environmen{n}:")
    return "".join(f"environmen{i}: {'x' * width}\n" for i in range(n))


def fool_the_prescan() -> str:
    """A quote starting a plain scalar's continuation line: the pre-scan reads a quoted string, YAML reads text."""
    return "a: x\n 'y\nb: " + "[" * 100 + "\nc: '\n" + "".join(f"k{i}: {i}\n" for i in range(MAX_TOKENS // 2 - 60))


CLASSES: dict[str, Callable[[], str]] = {
    "nested [ (1 MiB, one line)": lambda: "a: " + fill("["),
    "nested [ (1 MiB, 1000 a line)": lambda: "a: " + fill("[" * 1000 + "\n"),
    "nested {a: (1 MiB)": lambda: "a: " + fill("{a: " * 250 + "\n"),
    "indented block mappings (1 MiB)": lambda: fill("".join(" " * i + "k:\n" for i in range(1000))),
    "indented block mappings, 32 deep": lambda: lines_of(lambda i: " " * (i % MAX_DEPTH) + f"k{i}:\n"),
    "single line (1 MiB)": lambda: "a: " + fill("x"),
    "- - - - (1 MiB)": lambda: fill("- " * 500 + "\n"),
    "many small keys (1 MiB)": lambda: fill("k: 1\n"),
    "many small keys (under the line bound)": lambda: lines_of(lambda i: f"key{i}: {i}\n"),
    "a: &x anchors": lambda: lines_of(lambda i: f"a{i}: &x{i} 1\n"),
    "a: *x aliases": lambda: "a: &x 1\n" + lines_of(lambda i: f"b{i}: *x\n"),
    "flow sequence of numbers (1 MiB)": lambda: "a: [" + fill("1234567, ") + "]",
    "flow sequence of numbers (short lines)": lambda: "a: [\n" + lines_of(lambda i: "  " + "1, " * 300 + "\n"),
    "comments (1 MiB, under the line bound)": lambda: lines_of(lambda i: "#" + "x" * 103 + "\n"),
    "blank lines (1 MiB)": lambda: "\n" * LIMIT,
    "spaces-only lines (under the line bound)": lambda: lines_of(lambda i: " " * 103 + "\n"),
    "long lines at the line bound": lambda: lines_of(lambda i: f"k{i}: " + "x" * (MAX_LINE_CHARS - 12) + "\n"),
    "block scalars at the string bound": lambda: lines_of(
        lambda i: f"k{i}: |\n" + ("  " + "x" * 400 + "\n") * (MAX_SCALAR_CHARS // 403), max_lines=10**6
    ),
    "quoted strings at the string bound": lambda: lines_of(
        lambda i: f'k{i}: "' + ("x" * 1000 + "\\\n") * (MAX_SCALAR_CHARS // 1003) + '"\n', max_lines=10**6
    ),
    "long string in a pattern field": lambda: DEV.replace(
        "environment: dev", 'environment: "' + ("a-" * 450 + "\\\n") * 4 + '"', 1
    ),
    "long strings in every pattern field": lambda: (
        "".join(f'{k}: "' + ("a-" * 450 + "\\\n") * 4 + '"\n' for k in ("environment", "region", "image"))
        + 'teardown:\n  at: "'
        + "1" * 1000
        + '"\n  timezone: "'
        + ("Ab/" * 300 + "\\\n") * 4
        + '"\n'
    ),
    "nested [ in short lines (scanner only)": lambda: "a: " + fill("[" * 1000 + "\n"),
    "many small keys (scanner only)": lambda: lines_of(lambda i: f"key{i}: {i}\n"),
    "comments (scanner only)": lambda: lines_of(lambda i: "#" + "x" * 103 + "\n"),
    "long values just under the text bound": lambda: "".join(
        f"k{i}: " + "x" * 1000 + "\n" for i in range(MAX_TEXT_CHARS // 1010)
    ),
    "integers of 100+ digits": lambda: lines_of(lambda i: f"k{i}: " + "9" * 1000 + "\n"),
    "YAML 1.1 base-60 look-alikes": lambda: lines_of(lambda i: f"k{i}: 1" + ":59" * 330 + "x\n"),
    "YAML 1.1 float look-alikes": lambda: lines_of(lambda i: f"k{i}: 1" + "_0" * 330 + ".0e+" + "1" * 300 + "\n"),
    "unknown fields near token and text bounds": many_unknown_fields,
    "unknown params near the token bound": many_unknown_params,
    "variants x models near the token bound": many_models_and_variants,
    "models at the training budget (valid)": many_models_at_the_training_budget,
    "text that fools the pre-scan": fool_the_prescan,
}


def measure(release: Path, text: str, runs: int, prescan: bool = True) -> tuple[float, float, float, int, str]:
    """Median and longest wall time, median CPU time, exit code and the first message of validating ``text``.

    With ``prescan`` False the pre-scan is switched off, to measure what the bounds inside the scanner cost alone.
    """
    yamlload.prescan = yamlbounds.prescan if prescan else (lambda _text: None)
    data = text.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise SystemExit(f"generated {len(data)} bytes, over the size limit")
    release.write_bytes(data)
    times: list[float] = []
    cpu: list[float] = []
    code, first = 0, ""
    for _ in range(runs):
        out, err = io.StringIO(), io.StringIO()
        start, start_cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", str(release)])
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        lines = err.getvalue().splitlines() or out.getvalue().splitlines()
        first = lines[0].split(": ", 1)[-1] if lines else ""
    return statistics.median(times), max(times), statistics.median(cpu), code, first


def main_bench(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("only", nargs="*", help="run only classes whose name contains one of these")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        (repo / "releases").mkdir()
        (repo / "data").mkdir()
        shutil.copyfile(ROOT / "data" / "breast_cancer.csv", repo / "data" / "breast_cancer.csv")
        release = repo / "releases" / "dev.yaml"
        warm = measure(release, DEV, 1)
        assert warm[3] == 0, f"the shipped release does not validate: {warm[4]}"
        print(f"{'input class':42} {'bytes':>8} {'median s':>9} {'max s':>7} {'cpu s':>6} exit  first message")
        worst, worst_cpu = 0.0, 0.0
        for name, make in CLASSES.items():
            if args.only and not any(o in name for o in args.only):
                continue
            text = make()
            median, longest, cpu, code, first = measure(release, text, args.runs, "(scanner only)" not in name)
            worst, worst_cpu = max(worst, median), max(worst_cpu, cpu)
            size = len(text.encode("utf-8"))
            print(f"{name:42} {size:8d} {median:9.3f} {longest:7.3f} {cpu:6.3f} {code:4d}  {first[:80]}", flush=True)
        print(
            f"worst median: {worst:.3f} s wall, {worst_cpu:.3f} s CPU "
            f"(target: at most 2 s for any file up to {MAX_FILE_BYTES} bytes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main_bench(sys.argv[1:]))
