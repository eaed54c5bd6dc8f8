"""The held-out rows a deploy's smoke test and traffic send, read in a thread while Terraform applies."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path

import pytest
import yaml

from smgitops.errors import SmgitopsError
from smgitops.release import load_release
from smgitops.rollout import SMOKE_ROWS, TRAFFIC_ROWS, HeldOut, held_out_rows

PROJECT = Path(__file__).resolve().parents[1]


def _release(root: Path, weights: dict[str, int]) -> Path:
    """The shipped dev release with one model per variant (seeds differ, so the splits differ)."""
    shutil.copytree(PROJECT / "data", root / "data")
    doc = yaml.safe_load((PROJECT / "releases" / "dev.yaml").read_text())
    model = next(iter(doc["models"].values()))
    doc["models"] = {f"m-{name}": {**model, "seed": model["seed"] + i} for i, name in enumerate(weights)}
    doc["variants"] = [{"name": name, "model": f"m-{name}", "weight": w} for name, w in weights.items()]
    path = root / "releases" / "dev.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False))  # no shared nodes: no anchors
    return path


def test_held_out_rows_are_read_in_a_thread_and_are_the_splits_rows(tmp_path: Path) -> None:
    release = load_release(_release(tmp_path, {"primary": 90, "candidate": 10, "idle": 0}))
    held = HeldOut(release)
    # started when Terraform's apply starts (deploy passes start as apply_plan's while_applying), in its own thread
    assert not held.reading.started and "held-out" not in " ".join(t.name for t in threading.enumerate())
    held.start()
    assert held.reading.thread.name == "held-out-rows" and held.reading.thread is not threading.current_thread()
    for model_id in ("m-primary", "m-candidate"):
        assert held.rows(model_id, SMOKE_ROWS) == held_out_rows(release, model_id, SMOKE_ROWS)
        assert held.rows(model_id, TRAFFIC_ROWS) == held_out_rows(release, model_id, TRAFFIC_ROWS)
    assert held.rows("m-primary", SMOKE_ROWS) != held.rows("m-candidate", SMOKE_ROWS)  # each model's own split
    # only the serving models are read ahead; another one, or more rows, are read when asked
    assert set(held._rows) == {"m-primary", "m-candidate"}
    assert held.rows("m-idle", SMOKE_ROWS) == held_out_rows(release, "m-idle", SMOKE_ROWS)
    more = held.count + 5
    assert held.rows("m-primary", more) == held_out_rows(release, "m-primary", more)
    assert "sklearn" in sys.modules  # the split is scikit-learn's, as training made it


def test_a_model_whose_rows_cannot_be_read_fails_in_the_step_that_asks(tmp_path: Path) -> None:
    release = load_release(_release(tmp_path, {"primary": 100}))
    data = release.repo_root / release.models["m-primary"].data.path
    data.unlink()
    with pytest.raises(SmgitopsError) as direct:
        held_out_rows(release, "m-primary", SMOKE_ROWS)
    never_started = HeldOut(release)
    with pytest.raises(type(direct.value), match=str(data.name)):  # an apply refused: read when asked, here
        never_started.rows("m-primary", SMOKE_ROWS)
    held = HeldOut(release)
    held.start()
    held.reading.wait()
    assert held._rows == {}  # the thread kept nothing and raised nothing
    with pytest.raises(type(direct.value), match=str(data.name)):  # raised where the rows are needed
        held.rows("m-primary", SMOKE_ROWS)
