"""The estimators a release may train, the parameters each accepts, and the scikit-learn version behind each image.

This module is deliberately light: ``smgitops validate`` imports it, so scikit-learn is imported only when a
function needs an estimator class, never at module level.

Parameters a release may NOT set, although the estimators accept them (:data:`EXCLUDED_PARAMS`):

* ``random_state``: always the model's ``seed`` (one source of randomness per model, so the split and the
  estimator cannot silently disagree).
* ``n_jobs``: parallel fitting changes nothing in the result for these estimators, but it lets a release take
  every core of a shared CI runner; training runs single-threaded (see :mod:`smgitops.training`).
* ``warm_start``: makes ``fit`` depend on state left by an earlier ``fit``; every artifact is trained from scratch.
* ``verbose``: prints to stdout during training (noise in CI logs and in ``--json`` output).
* ``init`` (gradient boosting): takes an estimator object, which a YAML release cannot express safely.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from .paths import verdict_dir

# numpy's first import sets these two in os.environ and deletes them again when it was the one to add them. Done in
# one thread while another iterates os.environ (botocore does when it makes a client, reading the proxy variables),
# the deletion fails that iteration: "KeyError: 'OPENBLAS_MAIN_FREE'". Set beforehand, to the value numpy would
# set, they make the import leave os.environ alone.
NUMPY_IMPORT_VARIABLES = ("OPENBLAS_MAIN_FREE", "GOTOBLAS_MAIN_FREE")


def steady_environ_for_numpy() -> None:
    """Make numpy's first import leave ``os.environ`` unchanged; call it before numpy (scikit-learn) may be imported
    in one thread while another makes AWS clients or reads the environment. Only adds keys, which is safe for a
    concurrent reader; it does not change what numpy does (it sets these variables for its own import anyway)."""
    for key in NUMPY_IMPORT_VARIABLES:
        os.environ.setdefault(key, "1")


# scikit-learn version training pins (requirements/dev.txt). A release's image must serve the same version:
# a pickled estimator is only guaranteed to load and predict identically with the version that wrote it.
TRAINING_SKLEARN_VERSION = "1.2.1"

# SageMaker scikit-learn container tags (``<framework>-<build>-cpu-py3``, as the SageMaker Python SDK's
# ``image_uri_config/sklearn.json`` lists them) and the scikit-learn each image installs. Only tags whose version
# equals TRAINING_SKLEARN_VERSION can serve what ``smgitops train`` produces; see :func:`image_matches_training`.
IMAGE_SKLEARN_VERSIONS: dict[str, str] = {
    "0.20.0-cpu-py3": "0.20.0",
    "0.23-1-cpu-py3": "0.23.2",
    "1.0-1-cpu-py3": "1.0.2",
    "1.2-1-cpu-py3": "1.2.1",
}

# Python of the serving image for the tag training targets (docker/1.2-1/base/Dockerfile.cpu: PYTHON_VERSION=3.9).
# ``code/inference.py`` must run there; model.joblib is written with a pickle protocol that Python reads.
SERVING_PYTHON: tuple[int, int] = (3, 9)

ALLOWED_ESTIMATORS: tuple[str, ...] = (
    "sklearn.linear_model.LogisticRegression",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
)

EXCLUDED_PARAMS: frozenset[str] = frozenset({"random_state", "n_jobs", "warm_start", "verbose", "init"})


def is_allowed(dotted: str) -> bool:
    return dotted in ALLOWED_ESTIMATORS


def image_matches_training(image: str) -> bool:
    """True when the serving image ``image`` has the scikit-learn version training uses."""
    return IMAGE_SKLEARN_VERSIONS.get(image) == TRAINING_SKLEARN_VERSION


def estimator_class(dotted: str) -> type[Any]:
    """Import an allowlisted estimator class. Raises ValueError for a name not on the allowlist."""
    if not is_allowed(dotted):
        raise ValueError(f"estimator {dotted!r} is not on the allowlist ({', '.join(ALLOWED_ESTIMATORS)})")
    module_name, _, class_name = dotted.rpartition(".")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


@cache
def _constructor_params(dotted: str) -> frozenset[str]:
    return frozenset(estimator_class(dotted)().get_params(deep=False))


def accepted_params(dotted: str) -> frozenset[str]:
    """Names a release may set under ``params`` for the allowlisted estimator ``dotted``.

    The estimator's own constructor parameters (``get_params``) minus :data:`EXCLUDED_PARAMS`.
    Raises ValueError for a name not on the allowlist.
    """
    return _constructor_params(dotted) - EXCLUDED_PARAMS


def has_random_state(dotted: str) -> bool:
    """Whether the estimator takes ``random_state`` (training sets it to the model's seed)."""
    return "random_state" in _constructor_params(dotted)


# --------------------------------------------------------------------------------------------------------------
# The fit probe: does scikit-learn accept these parameters together?
# --------------------------------------------------------------------------------------------------------------

# Some parameter combinations pass the estimator's own value checks and fail only in ``fit`` (LogisticRegression's
# penalty "l1" with the default solver "lbfgs", "elasticnet" without ``l1_ratio``, ``dual`` with a solver that has
# no dual form, ``max_samples`` without ``bootstrap``...). ``smgitops validate`` fits the estimator on a synthetic
# sample of the training data's shape to find them before a runner spends minutes training. Size parameters are
# capped for the probe (what is refused does not depend on them; the schema bounds them for training), so a probe
# costs milliseconds whatever the release asks for.
PROBE_CAPS: dict[str, int] = {"n_estimators": 3, "max_iter": 10}
PROBE_MAX_ROWS = 20_000


def probe_fit(dotted: str, params: dict[str, Any], n_features: int, n_rows: int, n_classes: int) -> None:
    """Fit ``dotted(**params)`` on ``n_rows`` synthetic rows of ``n_features`` features and ``n_classes`` classes
    (balanced, separable, seeded); raises what scikit-learn raises. Warnings (convergence under the capped
    iterations) are silenced; size parameters are capped by :data:`PROBE_CAPS`."""
    import warnings

    import numpy as np

    cls = estimator_class(dotted)
    defaults = _constructor_params(dotted)
    probe = dict(params)
    for name, cap in PROBE_CAPS.items():
        if name in defaults:
            value = probe.get(name, cls().get_params(deep=False)[name])
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                probe[name] = cap
    if "random_state" in defaults:
        probe["random_state"] = 0
    rows = max(min(n_rows, PROBE_MAX_ROWS), 2 * n_classes)
    rng = np.random.default_rng(0)
    y = np.arange(rows) % n_classes
    x = rng.normal(size=(rows, max(n_features, 1))) + y[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls(**probe).fit(x, y)


# --------------------------------------------------------------------------------------------------------------
# Verdicts kept: parameters scikit-learn accepted need not be checked again by the same installation
# --------------------------------------------------------------------------------------------------------------

# Checking a model's parameters imports scikit-learn (about 1 s on the project's 2-core machine) and fits the probe.
# Every command that loads a release checks them, so a workflow's validate, plan, apply and deploy would pay that
# each. What scikit-learn accepted depends only on the estimator, the parameters, the data's shape and the installed
# numeric stack, and is the same every time: a passing verdict is kept (an empty file named by the hash of all of
# them) in the user's cache directory (:func:`smgitops.paths.verdict_dir`: never in the checkout, where a commit could
# bring a verdict along) and found there next time. A refusal is never kept: its message comes from scikit-learn, so
# it is checked afresh.
_STACK = ("sklearn", "numpy", "scipy")


@cache
def _stack_identity() -> str:
    """Which scikit-learn, numpy and scipy are installed (path, size and mtime of each package's ``__init__``),
    found without importing them."""
    return "\n".join(installed(name) for name in _STACK)


def installed(package: str) -> str:
    """Which ``package`` is installed (path, size and mtime of its ``__init__``), found without importing it."""
    spec = importlib.util.find_spec(package)
    origin = spec.origin if spec is not None else None
    if origin is None:
        return f"{package}:absent"
    st = os.stat(origin)
    return f"{package}:{origin}:{st.st_size}:{st.st_mtime_ns}"


def verdict_file(dotted: str, params: dict[str, Any], shape: tuple[int, ...] | None) -> Path | None:
    """Where a passing verdict for these parameters (probe-fitted on ``shape``, or not fitted when None) is kept;
    None when the parameters cannot be named reliably (a value JSON cannot hold)."""
    try:
        doc = json.dumps([dotted, params, list(shape) if shape else None, _stack_identity()], sort_keys=True)
    except (TypeError, ValueError, OSError):
        return None
    return verdict_dir() / hashlib.sha256(doc.encode()).hexdigest()


def passed_before(path: Path | None) -> bool:
    return path is not None and path.is_file()


def remember_passed(path: Path | None) -> None:
    """Keep a passing verdict; a repository that cannot be written to only loses the shortcut."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass
