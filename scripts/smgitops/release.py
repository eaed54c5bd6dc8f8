"""Release files: loading and the typed model the rest of the pipeline reads.

SKELETON: the dataclasses below are the contract other modules code against (keep their field names and
types). The strict loader and the semantic validation (``smgitops validate``) are filled in by the
release/validation work; until then ``load_release`` is a plain ``yaml.safe_load`` mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .paths import repo_root_for


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
                artifact_sha256=m["artifact_sha256"],
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
    )


def load_release(path: Path | str) -> Release:
    """Load and validate a release file; raises errors.InvalidRelease with every located problem."""
    p = Path(path)
    doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    return release_from_mapping(doc, p)


def load_release_text(text: str, path: Path | str) -> Release:
    """Same as load_release for text read elsewhere (e.g. ``git show REV:releases/dev.yaml``)."""
    return release_from_mapping(yaml.safe_load(text), Path(path))
