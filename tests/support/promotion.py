"""A scratch repository with dev and prod releases, and dev canaries recorded the way the deploy workflow does.

``record_dev_canary`` runs the real pieces: the canary verdict (:func:`smgitops.canary.judge` on per-variant
metrics), the deploy record (:func:`smgitops.record.write_record`) and the record job
(:func:`smgitops.record.record`, from its own clone, pushing the good tag and the canary evidence to ``origin``).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CANARY_ID = "cancer-forest"
FOREST = {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 20, "max_depth": 4}}


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def edit(path: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def add_canary(doc: dict[str, Any], digest: str, weight: int = 10, **model: Any) -> None:
    """A second model (a random forest on the same data) at ``weight`` %, the first model keeping the rest."""
    first = next(iter(doc["models"].values()))
    new = dict(copy.deepcopy(first), **copy.deepcopy(FOREST), artifact_sha256=digest)
    new.update(model)
    doc["models"][CANARY_ID] = new
    doc["variants"][0]["weight"] = 100 - weight
    doc["variants"].append({"name": "canary", "model": CANARY_ID, "weight": weight})


@dataclass
class PromotionRepo:
    repo: Path  # the developer's clone
    origin: Path  # bare
    tmp: Path

    @property
    def dev(self) -> Path:
        return self.repo / "releases" / "dev.yaml"

    @property
    def prod(self) -> Path:
        return self.repo / "releases" / "prod.yaml"

    def commit(self, message: str) -> str:
        sh(self.repo, "add", "releases")
        sh(self.repo, "commit", "-q", "-m", message)
        sh(self.repo, "push", "-q", "origin", "HEAD:main")
        return sh(self.repo, "rev-parse", "HEAD")

    def record_dev_canary(self, revision: str, invocations: int = 200, errors: int = 0) -> list[str]:
        """The dev deploy of ``revision`` passed its canary: what the deploy and record jobs leave in ``origin``."""
        from smgitops.canary import VariantMetrics, judge
        from smgitops.record import canary_evidence, record, write_record
        from smgitops.release import load_release_text
        from smgitops.rollout import DeployResult, Git, good_tag

        release = load_release_text(sh(self.repo, "show", f"{revision}:releases/dev.yaml"), self.dev)
        end = datetime(2026, 11, 25, 9, 40, tzinfo=UTC)
        metrics = {v.name: VariantMetrics(float(invocations), float(errors), 42.0) for v in release.variants}
        report = judge(release, metrics, end - timedelta(minutes=release.canary.bake_minutes), end)
        assert report.ok, report.summary()
        result = DeployResult(
            release="releases/dev.yaml", environment="dev", revision=revision, ok=True, canary=report.to_dict()
        )
        result.recorded_good = good_tag("dev", revision)
        result.evidence = canary_evidence(release, revision, report.to_dict())
        out = self.tmp / f"record-{revision[:8]}"
        write_record(Git(self.repo), result, out)
        job = self.tmp / f"record-job-{revision[:8]}"
        sh(self.tmp, "clone", "-q", str(self.origin), str(job))
        sh(job, "checkout", "-q", "--detach", revision)
        return record(out, Git(job), env={})

    def pull_request_checkout(self, name: str) -> Path:
        """A fresh clone of ``origin`` with its tags, as the pull-request workflow checks it out."""
        dest = self.tmp / name
        sh(self.tmp, "clone", "-q", str(self.origin), str(dest))
        return dest


def make_promotion_repo(tmp: Path) -> PromotionRepo:
    repo = tmp / "repo"
    (repo / "releases").mkdir(parents=True)
    for name in ("release.schema.json", "dev.yaml", "prod.yaml"):
        shutil.copy(ROOT / "releases" / name, repo / "releases" / name)
    shutil.copytree(ROOT / "data", repo / "data")
    (repo / ".gitignore").write_text("/out/\n/.smgitops/\n", encoding="utf-8")
    sh(repo, "init", "-q", "-b", "main")
    sh(repo, "add", ".")
    sh(repo, "commit", "-q", "-m", "base")
    origin = tmp / "origin.git"
    sh(tmp, "clone", "-q", "--bare", str(repo), str(origin))
    sh(repo, "remote", "add", "origin", str(origin))
    return PromotionRepo(repo, origin, tmp)
