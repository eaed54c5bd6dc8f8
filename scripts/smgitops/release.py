"""Release files: the typed model the pipeline reads, and :func:`load_release`, which builds it from a file that
passed every check.

Reading is strict (:mod:`smgitops.yamlload`: UTF-8, one YAML 1.2 document within the bounds of
:mod:`smgitops.yamlbounds`, no anchors, aliases, custom tags or duplicate keys, no plain value YAML 1.1 tools read
differently); the checks (:mod:`smgitops.release_checks`: size, JSON Schema, semantics) report every problem with
the file, 1-based line and column, and a dotted field path such as ``variants[1].weight``. A file with any problem
raises :class:`~smgitops.errors.InvalidRelease` carrying them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidRelease
from .paths import repo_root_for
from .release_checks import check_text, validate_path

# ---------------------------------------------------------------------------------------------------------------
# Typed model (the contract other modules code against)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataRef:
    path: str  # relative to the repository root
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    id: str
    data: DataRef
    estimator: str  # dotted name on the allowlist, e.g. sklearn.linear_model.LogisticRegression
    params: dict[str, Any]
    seed: int
    artifact_sha256: str
    # promotion_override.reason: lets a promoted-to environment (prod) serve a digest that never passed a canary
    # in the environment it is promoted from (release policy RP005); shown in the pull-request comment
    promotion_override: str | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    model: str  # a key of Release.models
    weight: int  # integer percent; all variants sum to 100


@dataclass(frozen=True)
class DataCapture:
    enabled: bool
    sampling_percentage: int


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    instance_type: str
    instance_count: int
    data_capture: DataCapture


@dataclass(frozen=True)
class Teardown:
    at: str  # "HH:MM", local time in `timezone`
    timezone: str  # IANA name, e.g. Europe/Berlin


WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DEFAULT_DAYS: tuple[str, ...] = WEEKDAYS[:5]


@dataclass(frozen=True)
class ServiceSchedule:
    """``schedule``: working hours. The scheduled bring-up re-creates the endpoint at ``up`` on ``days``."""

    up: str  # "HH:MM", local time in the teardown's zone, before teardown.at
    days: tuple[str, ...] = DEFAULT_DAYS  # WEEKDAYS names, in the teardown's zone


@dataclass(frozen=True)
class Canary:
    bake_minutes: int
    min_invocations: int
    max_error_rate: float  # fraction, 0.01 = 1 %
    max_p99_latency_ms: float
    max_initial_weight: int = 10  # a model never served before may start at no more than this weight


@dataclass(frozen=True)
class Release:
    path: Path
    environment: str
    region: str
    image: str  # scikit-learn container tag, e.g. 1.2-1-cpu-py3
    endpoint: EndpointSpec
    teardown: Teardown
    models: dict[str, ModelSpec]
    variants: list[Variant]
    canary: Canary
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    schedule: ServiceSchedule | None = None  # None: the endpoint comes back only with the next deploy

    @property
    def repo_root(self) -> Path:
        return repo_root_for(self.path)

    def served_models(self) -> dict[str, ModelSpec]:
        """Models referenced by at least one variant, in variant order."""
        return {v.model: self.models[v.model] for v in self.variants}


def release_from_mapping(doc: dict[str, Any], path: Path) -> Release:
    """Build the typed release from an already validated mapping."""
    ep = doc["endpoint"]
    dc = ep.get("data_capture", {})
    canary = doc["canary"]
    schedule = doc.get("schedule")
    return Release(
        path=path,
        environment=doc["environment"],
        region=doc["region"],
        image=doc["image"],
        endpoint=EndpointSpec(
            name=ep["name"],
            instance_type=ep["instance_type"],
            instance_count=int(ep.get("instance_count", 1)),
            data_capture=DataCapture(
                enabled=bool(dc.get("enabled", True)), sampling_percentage=int(dc.get("sampling_percentage", 100))
            ),
        ),
        teardown=Teardown(at=doc["teardown"]["at"], timezone=doc["teardown"]["timezone"]),
        models={
            mid: ModelSpec(
                id=mid,
                data=DataRef(path=m["data"]["path"], sha256=m["data"]["sha256"]),
                estimator=m["estimator"],
                params=dict(m.get("params") or {}),
                seed=int(m["seed"]),
                artifact_sha256=m.get("artifact_sha256") or "",  # absent or empty only while `train --write` runs
                promotion_override=(m.get("promotion_override") or {}).get("reason"),
            )
            for mid, m in doc["models"].items()
        },
        variants=[Variant(name=v["name"], model=v["model"], weight=int(v["weight"])) for v in doc["variants"]],
        canary=Canary(
            bake_minutes=int(canary["bake_minutes"]),
            min_invocations=int(canary["min_invocations"]),
            max_error_rate=float(canary["max_error_rate"]),
            max_p99_latency_ms=float(canary["max_p99_latency_ms"]),
            max_initial_weight=int(canary.get("max_initial_weight", 10)),
        ),
        raw=doc,
        schedule=None
        if not isinstance(schedule, dict)
        else ServiceSchedule(
            up=schedule["up"],
            days=tuple(d for d in WEEKDAYS if d in (schedule.get("days") or DEFAULT_DAYS)),
        ),
    )


def load_release(path: Path | str, *, digest_optional: bool = False) -> Release:
    """Load and validate a release file; raises errors.InvalidRelease with every located problem.
    ``digest_optional``: models may lack ``artifact_sha256`` (their :attr:`ModelSpec.artifact_sha256` is "")."""
    result = validate_path(path, digest_optional=digest_optional)
    if result.document is None:
        raise InvalidRelease(result.problems)
    return release_from_mapping(result.document, Path(path))


def load_release_text(text: str, path: Path | str) -> Release:
    """Same as load_release for text read elsewhere (e.g. ``git show REV:releases/dev.yaml``).

    Data files are checked against the repository root of ``path`` as it is now.
    """
    result = check_text(text, str(path), Path(path))
    if result.document is None:
        raise InvalidRelease(result.problems)
    return release_from_mapping(result.document, Path(path))
