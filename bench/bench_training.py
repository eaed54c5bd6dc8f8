"""Training + packaging time per model: median of 5 runs, printed as a table.

Measures ``smgitops.training.build_artifact`` (data check, parse, split, fit, metrics, pickle, tar.gz) for every model
of the shipped releases, plus one model per allowlisted estimator on the same data so that the slower estimators
show up even when no release uses them yet. The process pins OpenBLAS's kernels first, as ``smgitops train`` does.

Usage: ``.venv/bin/python bench/bench_training.py [RELEASE...]`` (default: releases/dev.yaml and releases/prod.yaml).
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from smgitops import training  # noqa: E402

training.pin_blas_kernels()  # before anything imports numpy

from smgitops import estimators  # noqa: E402
from smgitops.release import ModelSpec, Release, load_release  # noqa: E402

RUNS = 5
EXTRA_PARAMS = {
    "sklearn.linear_model.LogisticRegression": {"max_iter": 5000},
    "sklearn.tree.DecisionTreeClassifier": {"max_depth": 5},
    "sklearn.ensemble.RandomForestClassifier": {"n_estimators": 100, "max_depth": 8},
    "sklearn.ensemble.GradientBoostingClassifier": {"n_estimators": 100, "max_depth": 3},
}


def with_estimator_models(release: Release) -> Release:
    """The release plus one model per allowlisted estimator (same data and seed as its first model)."""
    first = next(iter(release.models.values()))
    models = dict(release.models)
    for dotted, params in EXTRA_PARAMS.items():
        model_id = "bench-" + dotted.rsplit(".", 1)[1].lower()
        models[model_id] = ModelSpec(model_id, first.data, dotted, copy.deepcopy(params), first.seed, "")
    return dataclasses.replace(release, models=models)


def measure(release: Release, model_id: str) -> tuple[float, float, int, str]:
    times = []
    digests = set()
    size = 0
    for _ in range(RUNS):
        start = time.perf_counter()
        artifact = training.build_artifact(release, model_id)
        times.append(time.perf_counter() - start)
        digests.add(training.sha256_bytes(artifact.archive))
        size = len(artifact.archive)
    if len(digests) != 1:
        raise SystemExit(f"{model_id}: {len(digests)} different digests in {RUNS} runs in one process")
    return statistics.median(times), max(times), size, digests.pop()


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [ROOT / "releases" / "dev.yaml", ROOT / "releases" / "prod.yaml"]
    assert estimators.ALLOWED_ESTIMATORS  # the extra models cover the whole allowlist
    print(f"training + packaging, median of {RUNS} runs (seconds); digest stable across the runs")
    header = f"{'release':<10} {'model':<34} {'estimator':<28} {'median':>8} {'max':>8} {'bytes':>9}  sha256"
    print(header)
    print("-" * len(header))
    seen: set[tuple[str, str]] = set()
    for i, path in enumerate(paths):
        release = load_release(path)
        if i == 0:
            release = with_estimator_models(release)
        for model_id, spec in release.models.items():
            key = (spec.estimator, repr(sorted(spec.params.items())) + str(spec.seed) + spec.data.sha256)
            if key in seen:
                continue  # prod usually trains what dev trained: same inputs, same numbers
            seen.add(key)
            median, worst, size, digest = measure(release, model_id)
            estimator = spec.estimator.rsplit(".", 1)[1]
            print(
                f"{release.environment:<10} {model_id:<34} {estimator:<28} {median:8.3f} {worst:8.3f} {size:9d}"
                f"  {digest[:16]}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
