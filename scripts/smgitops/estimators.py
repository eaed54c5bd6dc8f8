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

import importlib
from functools import cache
from typing import Any

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
