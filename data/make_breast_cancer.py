"""Write ``data/breast_cancer.csv`` from the copy of the Wisconsin diagnostic breast-cancer data set that
scikit-learn ships (``sklearn.datasets.load_breast_cancer``; no download).

The output is byte-for-byte reproducible with the pinned scikit-learn and numpy: snake_case column names, the 30
features in scikit-learn's order, ``target`` last (0 malignant, 1 benign), every value in its shortest round-trip
positional decimal form (numpy's Dragon4, never scientific notation), LF line endings, UTF-8, no index column.

Usage: ``.venv/bin/python data/make_breast_cancer.py [OUTPUT]`` (default: ``breast_cancer.csv`` beside this file).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path


def snake_case(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def render() -> bytes:
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    header = [snake_case(str(n)) for n in bunch.feature_names] + ["target"]
    lines = [",".join(header)]
    for row, target in zip(bunch.data, bunch.target, strict=True):
        cells = [np.format_float_positional(float(v), unique=True, trim="-") for v in row]
        lines.append(",".join([*cells, str(int(target))]))
    return ("\n".join(lines) + "\n").encode("utf-8")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().with_name("breast_cancer.csv")
    data = render()
    out.write_bytes(data)
    print(f"{out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
