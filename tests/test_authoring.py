"""Authoring a release without copying a digest by hand, with the real CLI, real Terraform and the emulator.

From a fresh repository: a model is added to ``releases/dev.yaml`` (by editing the text, comments and all) with no
``artifact_sha256``; ``validate`` names the missing field and the fix; ``train --write`` pins the digest; then
``validate``, ``train --check``, ``publish`` and ``plan`` pass, and the file differs from what was written by hand
in the inserted line only. Then the slip the digest used to allow: a parameter changes and only ``train`` runs.
``train`` exits 1 naming the fix, and ``publish`` and ``plan`` refuse (exit 2) with the model and both digests,
where they used to pass and deploy the old model; ``train --write`` puts it right.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_terraform import git, local_stack, make_scratch_repo

SMGITOPS = [sys.executable, "-m", "smgitops.cli"]
REL = "releases/dev.yaml"
CANDIDATE = "cancer-logreg-c05"

# What a person adds: a model with comments above, beside and below its keys, and no digest; 10 % of the traffic.
MODEL_BLOCK = f"""\
  # candidate: stronger regularisation (C = 0.5); `smgitops train {REL} --write` pins its digest
  {CANDIDATE}:
    data:
      path: data/breast_cancer.csv   # the same data as the primary
      sha256: "432ff316e7bfb60b70a275064b4401315cc39f09c9099d031013a23647e98687"
    estimator: sklearn.linear_model.LogisticRegression
    params:
      C: 0.5                  # half the primary's
      max_iter: 5000
    seed: 7                   # the same split, so the metrics compare

"""
PRIMARY_ONLY = """\
  - name: primary             # unique, names the per-variant CloudWatch metrics
    model: cancer-logreg      # a key under `models`
    weight: 100               # percent of the traffic
"""
CANARY = f"""\
  - name: primary             # unique, names the per-variant CloudWatch metrics
    model: cancer-logreg      # a key under `models`
    weight: 90                # percent of the traffic
  - name: canary              # the candidate's share
    model: {CANDIDATE}
    weight: 10
"""


def smgitops(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SMGITOPS, *args], cwd=repo, capture_output=True, text=True, timeout=600, check=False)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def without_line(text: str, line: int) -> str:
    lines = text.splitlines(keepends=True)
    del lines[line - 1]
    return "".join(lines)


@pytest.mark.terraform
def test_a_new_model_is_pinned_by_train_write_and_a_stale_digest_stops_publish_and_plan(
    tmp_path: Path, git_identity: dict[str, str]
) -> None:
    repo = make_scratch_repo(tmp_path / "repo")
    release = repo / REL
    shipped = release.read_text(encoding="utf-8")
    assert shipped.count(PRIMARY_ONLY) == 1
    edited = shipped.replace("\nvariants:", "\n" + MODEL_BLOCK + "variants:", 1).replace(PRIMARY_ONLY, CANARY)
    release.write_text(edited, encoding="utf-8")
    model_line = edited.splitlines().index(f"  {CANDIDATE}:") + 1

    with local_stack(tmp_path, repo_root=repo):
        # -- without a digest: validate says where and what to run --------------------------------------------------
        missing = smgitops(repo, "validate", REL)
        assert missing.returncode == 2
        assert f"{REL}:{model_line}:3: models.{CANDIDATE}.artifact_sha256: required field missing" in missing.stderr
        assert f"smgitops train {REL} --write" in missing.stderr

        # -- train --write: one line inserted, every other byte as written ------------------------------------------
        written = json.loads(ok(smgitops(repo, "train", REL, "--write", "--json")).stdout)
        digests = {m["model"]: m["digest"] for m in written["models"]}
        [entry] = written["written"]
        assert (entry["model"], entry["previous"]) == (CANDIDATE, None)
        after = release.read_text(encoding="utf-8")
        assert after.splitlines()[entry["line"] - 1] == f'    artifact_sha256: "{digests[CANDIDATE]}"'
        assert without_line(after, entry["line"]) == edited  # comments, alignment, order: unchanged
        git(repo, "commit", "-qam", f"dev: canary {CANDIDATE} at 10 %")

        # -- and everything downstream passes ------------------------------------------------------------------------
        ok(smgitops(repo, "validate", REL))
        ok(smgitops(repo, "train", REL, "--check"))
        published = json.loads(ok(smgitops(repo, "publish", REL, "--json")).stdout)
        assert (published["published"], published["already_present"]) == (2, 0)
        plan = json.loads(ok(smgitops(repo, "plan", REL, "--json")).stdout)
        added = {m["id"]: m["digest"] for m in plan["models_added"]}
        assert added == {"cancer-logreg": digests["cancer-logreg"], CANDIDATE: digests[CANDIDATE]}
        assert [(v["name"], v["weight_after"]) for v in plan["variants"]] == [("primary", 90), ("canary", 10)]

        # -- a parameter changes, only `train` runs: nothing downstream passes any more ---------------------------
        release.write_text(after.replace("      C: 0.5   ", "      C: 0.25  ", 1), encoding="utf-8")
        stale = digests[CANDIDATE]
        retrained = smgitops(repo, "train", REL)
        assert retrained.returncode == 1
        archive = repo / "out" / "artifacts" / CANDIDATE / "model.tar.gz"
        fresh = hashlib.sha256(archive.read_bytes()).hexdigest()
        assert fresh != stale
        assert f"{REL}:{entry['line']}: models.{CANDIDATE}.artifact_sha256" in retrained.stderr
        assert f"run: smgitops train {REL} --write" in retrained.stderr
        for command in (["publish", REL], ["plan", REL]):
            refused = smgitops(repo, *command)
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert f"{CANDIDATE}: " in refused.stderr and fresh in refused.stderr and stale in refused.stderr
            assert f"run smgitops train {REL} --write" in refused.stderr
            assert "Traceback" not in refused.stderr

        # -- the fix it names ---------------------------------------------------------------------------------------
        ok(smgitops(repo, "train", REL, "--write"))
        ok(smgitops(repo, "train", REL, "--check"))
        assert json.loads(ok(smgitops(repo, "publish", REL, "--json")).stdout)["published"] == 1
        plan = json.loads(ok(smgitops(repo, "plan", REL, "--json")).stdout)
        assert {m["id"]: m["digest"] for m in plan["models_added"]}[CANDIDATE] == fresh
