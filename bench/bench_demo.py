"""Benchmark: ``smgitops demo`` end to end, as ``make demo`` runs it (after set-up).

Each round is one ``smgitops demo --report FILE`` in its own process: a private emulator, ``bootstrap/`` applied
with real Terraform, and the whole story (v1, canary, promotion, a bad canary rolled back, the rollback PR merged,
the revert, the evening teardown). Prints per round the wall time, the time the demo reports for itself and the
slowest steps, then the medians. The target on the project's 2-core machine is a median of at most 30 s.

    .venv/bin/python bench/bench_demo.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0  # the structure-and-speed target (make demo after set-up)


def run_demo(report: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    """One ``smgitops demo --report REPORT`` in its own process: its wall time and its report."""
    started = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "smgitops"), "demo", "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"smgitops demo exited {proc.returncode}")
    doc: dict[str, object] = json.loads(report.read_text(encoding="utf-8"))
    return wall, doc


def one_round(report: Path) -> tuple[float, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "SMGITOPS_"))}
    return run_demo(report, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    walls: list[float] = []
    reported: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        for i in range(args.rounds):
            wall, doc = one_round(Path(tmp) / f"report-{i}.json")
            steps = sorted(doc["steps"], key=lambda s: -float(s["seconds"]))  # type: ignore[attr-defined,index]
            slowest = ", ".join(f"{s['name']} {s['seconds']:.1f} s" for s in steps[:3])
            print(f"round {i + 1}: wall {wall:5.1f} s, demo {doc['seconds']:5.1f} s; slowest: {slowest}", flush=True)
            walls.append(wall)
            reported.append(float(doc["seconds"]))  # type: ignore[arg-type]
    median = statistics.median(walls)
    load = os.getloadavg()[0]
    print(
        f"median of {args.rounds}: wall {median:.1f} s (demo {statistics.median(reported):.1f} s); "
        f"target <= {TARGET_SECONDS:.0f} s: {'met' if median <= TARGET_SECONDS else 'NOT met'} "
        f"(load average now {load:.1f} on {os.cpu_count()} cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
