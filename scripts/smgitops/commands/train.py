"""``smgitops train``: train deterministically and package byte-identical ``model.tar.gz`` artifacts.

Stages: :mod:`smgitops.training` (the release's data checked, fitted, packaged), :mod:`smgitops.pinning` (with
``--write``, the digests written into the release file). Exit 1 when a digest differs from the release's
``artifact_sha256``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..training import TrainResult

HELP = "train deterministically and package byte-identical model.tar.gz artifacts"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", type=Path, help="release file, e.g. releases/dev.yaml")
    parser.add_argument(
        "--model", action="append", metavar="ID", dest="models", help="train only this model (repeatable)"
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="artifact directory (default: <repo>/out/artifacts)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--write",
        action="store_true",
        help="write each trained model's digest into the release file's artifact_sha256 (a model may lack the "
        "field); nothing else in the file changes, comments and formatting included",
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="never write (CI): exit 1 when a digest differs from the release's artifact_sha256, as without --write",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.epilog = (
        "Without --write, a digest that differs from the release's artifact_sha256 exits 1 and names the fix "
        "(smgitops train RELEASE --write). Exit codes: 0 every digest matches (or was written), 1 a digest "
        "differs, 2 bad input."
    )


def run(args: argparse.Namespace) -> int:
    from .. import pinning
    from ..training import pin_blas_kernels, read_release, train_and_write, train_release

    pin_blas_kernels()
    written: list[pinning.Pinned] = []
    if args.write:
        results, written = train_and_write(args.release, args.models, args.out)
    else:
        results = train_release(read_release(args.release), args.models, args.out)
    mismatched = [r for r in results if not r.matches]
    failed = bool(mismatched)
    if args.json:
        doc = {
            "release": str(args.release),
            "check": bool(args.check),
            "write": bool(args.write),
            "written": [{"model": p.model_id, "previous": p.previous, "line": p.line} for p in written],
            "ok": not failed,
            "models": [r.as_dict() for r in results],
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        _print_results(results)
    for r in results:
        for message in r.warnings:
            print(f"smgitops train: {r.model_id}: warning: {message}", file=sys.stderr)
    for p in written:
        print(
            f"smgitops train: {p.model_id}: wrote artifact_sha256 {p.digest} ({args.release}:{p.line}; "
            f"was {p.previous or 'missing'})",
            file=sys.stderr,
        )
    if failed:
        text = args.release.read_text(encoding="utf-8", errors="replace")
        for r in mismatched:
            line = pinning.locate(text, r.model_id, str(args.release))
            where = f"{args.release}:{line}" if line else str(args.release)
            print(
                f"smgitops train: {r.model_id}: digest {r.digest} differs from the release's artifact_sha256 "
                f"{r.expected or '(none)'} ({where}: models.{r.model_id}.artifact_sha256); "
                f"to pin what training produces, run: smgitops train {args.release} --write",
                file=sys.stderr,
            )
    return 1 if failed else 0


def _print_results(results: list[TrainResult]) -> None:
    from ..console import is_interactive, make_console

    if is_interactive():
        from rich.table import Table

        table = Table(title="smgitops train")
        for column in ("model", "sha256", "release", "accuracy", "f1", "roc_auc", "artifact"):
            table.add_column(column)
        for r in results:
            table.add_row(
                r.model_id,
                r.digest,
                "matches" if r.matches else "differs",
                _fmt(r.metrics.get("accuracy")),
                _fmt(r.metrics.get("f1")),
                _fmt(r.metrics.get("roc_auc")),
                str(r.path),
            )
        make_console().print(table)
        return
    for r in results:
        metrics = " ".join(f"{k}={_fmt(v)}" for k, v in r.metrics.items())
        state = "matches" if r.matches else "differs from release"
        print(f"{r.model_id} sha256={r.digest} ({state}) {metrics} {r.path}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
