"""What validate's fit probe costs: per allowlisted estimator, and for a whole ``smgitops validate`` process.

1. ``estimators.probe_fit`` on the shipped data's shape (30 features, the training split's 426 rows, 2 classes),
   each estimator with its size parameters at the training budget's maximums (the probe caps them): median of 7
   runs, CPU milliseconds, after a warm-up.
2. A cold ``smgitops validate`` process (imports included), CPU seconds, median of 3: the shipped
   ``releases/dev.yaml`` (its params need scikit-learn: value checks and the probe) and the same release with
   ``params: {}`` (nothing for scikit-learn to refuse, so it is not imported).

Usage: ``.venv/bin/python bench/bench_validate_probe.py``
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from smgitops import estimators  # noqa: E402
from smgitops.release_checks import _data_shape  # noqa: E402

AT_BUDGET = {
    "sklearn.linear_model.LogisticRegression": {"max_iter": 10000},
    "sklearn.tree.DecisionTreeClassifier": {"max_depth": 32},
    "sklearn.ensemble.RandomForestClassifier": {"n_estimators": 1000, "max_depth": 32},
    "sklearn.ensemble.GradientBoostingClassifier": {"n_estimators": 1000, "max_depth": 32},
}
PARAMS_BLOCK = (
    "    params:                   # keyword arguments the estimator accepts ({} for its defaults)\n"
    "      C: 1.0\n      max_iter: 5000"
)


def probe_costs() -> None:
    shape = _data_shape(ROOT / "data" / "breast_cancer.csv")
    assert shape is not None
    print(f"data shape (features, training rows, classes): {shape}")
    for dotted, params in AT_BUDGET.items():
        estimators.probe_fit(dotted, params, *shape)  # warm-up
        runs = []
        for _ in range(7):
            t0 = time.process_time()
            estimators.probe_fit(dotted, params, *shape)
            runs.append(time.process_time() - t0)
        print(f"  probe {dotted.rsplit('.', 1)[1]:<28} {params}: {statistics.median(runs) * 1000:6.1f} ms CPU")


def process_cpu(release: Path) -> float:
    code = "import sys; from smgitops.cli import main; sys.exit(main(['validate', sys.argv[1]]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    runs = []
    for _ in range(3):
        before = os.times()
        subprocess.run([sys.executable, "-c", code, str(release)], env=env, check=True, capture_output=True)
        after = os.times()
        runs.append((after.children_user - before.children_user) + (after.children_system - before.children_system))
    return statistics.median(runs)


def main() -> int:
    probe_costs()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        shutil.copytree(ROOT / "data", repo / "data")
        (repo / "releases").mkdir()
        shipped = repo / "releases" / "dev.yaml"
        shipped.write_text((ROOT / "releases" / "dev.yaml").read_text())
        print(f"validate process, shipped dev.yaml:   {process_cpu(shipped):.2f} s CPU (median of 3)")
        text = shipped.read_text()
        assert PARAMS_BLOCK in text, "the shipped release's params block changed: update the bench"
        shipped.write_text(text.replace(PARAMS_BLOCK, "    params: {}\n"))
        print(f"validate process, params: {{}}:        {process_cpu(shipped):.2f} s CPU (median of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
