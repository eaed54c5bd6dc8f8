"""Benchmark: ``smgitops plan`` / ``smgitops apply`` against bare ``terraform plan`` / ``terraform apply``.

On the local emulator with real Terraform, in a scratch copy of the repository, the same change is made five
times by each tool: from release A (one variant at 100 %) to release B (a second model at 10 %), which replaces the
endpoint configuration, adds a model and updates the endpoint. ``smgitops`` runs as the CLI (its own process, as
in a workflow step); ``smgitops apply`` includes what bare Terraform does not: the stale-plan checks, ``verify`` of
the live endpoint and the plan-after-apply check. Between measurements the state is put back to A (not timed).

Prints each round and the medians; the ratio is the median of the per-round ratios.

    .venv/bin/python bench/bench_apply.py [--rounds N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from smgitops.context import Context  # noqa: E402
from smgitops.emulator.server import Emulator  # noqa: E402
from smgitops.release import load_release  # noqa: E402


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _scratch_repo(dest: Path) -> tuple[Path, Path]:
    """A copy of the repository's roots with two stand-in archives; returns (release A, release B)."""
    ignore = shutil.ignore_patterns(".terraform", "*_override.tf", "*.tfstate*", "*.tfplan")
    for name in ("releases", "data", "terraform", "bootstrap"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    archives = {"cancer-logreg": b"bench archive A", "cancer-logreg-b": b"bench archive B"}
    digests = {}
    for model_id, data in archives.items():
        path = dest / "out" / "artifacts" / model_id / "model.tar.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests[model_id] = hashlib.sha256(data).hexdigest()
    doc = yaml.safe_load((dest / "releases" / "dev.yaml").read_text())
    base = doc["models"]["cancer-logreg"]
    doc["models"] = {mid: {**base, "artifact_sha256": d} for mid, d in digests.items()}
    doc["variants"] = [{"name": "primary", "model": "cancer-logreg", "weight": 100}]
    text_a = yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False)
    doc["variants"] = [
        {"name": "primary", "model": "cancer-logreg", "weight": 90},
        {"name": "canary", "model": "cancer-logreg-b", "weight": 10},
    ]
    text_b = yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False)
    a, b = dest / "variants" / "a.yaml", dest / "variants" / "b.yaml"
    a.parent.mkdir()
    a.write_text(text_a)
    b.write_text(text_b)
    return a, b


def _cli(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "smgitops.cli", *args], capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"smgitops {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="smgitops-bench-apply-") as tmp, Emulator().start() as emulator:
        os.environ.update(emulator.env())
        os.environ["SMGITOPS_LOCAL_DIR"] = str(Path(tmp) / "local")
        os.environ["PYTHONPATH"] = str(ROOT / "scripts") + os.pathsep + os.environ.get("PYTHONPATH", "")
        emulator.admin.set_update_delay(0)  # Terraform's provider polls Creating/Updating endpoints every 30 s
        repo = Path(tmp) / "repo"
        text_a, text_b = (p.read_text() for p in _scratch_repo(repo))
        release_file = repo / "releases" / "dev.yaml"

        started = time.monotonic()
        release_file.write_text(text_a)
        _cli("publish", str(release_file))  # local mode: bootstraps the emulator on first use
        release_file.write_text(text_b)
        _cli("publish", str(release_file))
        print(f"bootstrap + publish: {time.monotonic() - started:.1f} s")

        def reset_to_a() -> None:
            release_file.write_text(text_a)
            ws = Context.for_release(release := load_release(release_file)).workspace(release)
            ws.prepare()
            ws.terraform.apply(variables=ws.variables())

        reset_to_a()
        rows = []
        for n in range(1, args.rounds + 1):
            # smgitops: plan A -> B, then apply the saved plan (+ verify + plan after apply)
            release_file.write_text(text_b)
            plan_s, _ = _cli("plan", str(release_file))
            apply_s, out = _cli("apply", str(release_file), "--json")
            parts = json.loads(out)["seconds"]
            reset_to_a()

            # bare Terraform: the same change in the same working copy
            release_file.write_text(text_b)
            ws = Context.for_release(release := load_release(release_file)).workspace(release)
            ws.prepare()
            planfile = ws.directory / "bare.tfplan"
            t0 = time.monotonic()
            ws.terraform.plan(out=planfile, variables=ws.variables())
            tf_plan_s = time.monotonic() - t0
            t0 = time.monotonic()
            ws.terraform.apply(planfile)
            tf_apply_s = time.monotonic() - t0
            reset_to_a()

            rows.append((plan_s, tf_plan_s, apply_s, tf_apply_s))
            print(
                f"round {n}: smgitops plan {plan_s:5.2f} s  terraform plan {tf_plan_s:5.2f} s  |  "
                f"smgitops apply {apply_s:5.2f} s (terraform apply {parts['apply']:.2f}, verify {parts['verify']:.2f}, "
                f"plan after apply {parts['plan_after_apply']:.2f})  bare terraform apply {tf_apply_s:5.2f} s  "
                f"ratio {apply_s / tf_apply_s:4.2f}"
            )

    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    plan_ratio = statistics.median(r[0] / r[1] for r in rows)
    apply_ratio = statistics.median(r[2] / r[3] for r in rows)
    print()
    print(
        f"median of {len(rows)}: smgitops plan {med[0]:.2f} s vs terraform plan {med[1]:.2f} s (ratio {plan_ratio:.2f})"
    )
    print(
        f"median of {len(rows)}: smgitops apply {med[2]:.2f} s vs terraform apply {med[3]:.2f} s "
        f"(ratio {apply_ratio:.2f}; smgitops apply also verifies and re-plans)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
