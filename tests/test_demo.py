"""``smgitops demo`` once, as a user runs it (its own process, its own emulator), asserting on its JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.terraform,
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str]:
    report = tmp_path_factory.mktemp("demo") / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "SMGITOPS_", "GIT_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.run(
        [sys.executable, "-m", "smgitops.cli", "demo", "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    doc = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, doc, proc.stdout + proc.stderr


def steps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in doc["steps"]}


def test_demo_exits_0_and_every_expectation_held(demo: tuple[int, dict[str, Any], str]) -> None:
    code, doc, output = demo
    assert code == 0, output[-4000:]
    assert doc["ok"] is True and doc["error"] is None
    failed = [(s["name"], e["what"]) for s in doc["steps"] for e in s["expectations"] if not e["ok"]]
    assert failed == []
    assert sum(len(s["expectations"]) for s in doc["steps"]) >= 35
    assert "all expectations held" in output  # the timeline table's title


def test_the_story_in_order_with_live_state(demo: tuple[int, dict[str, Any], str]) -> None:
    _, doc, _ = demo
    s = steps(doc)
    assert list(s) == [
        "bootstrap (terraform apply bootstrap/)",
        "v1: train + commit",
        "v1: plan + policy (pull request)",
        "v1: deploy (merge)",
        "canary PR: train candidate",
        "canary PR: plan + policy",
        "canary: deploy + canary analysis",
        "promote: plan + deploy",
        "bad canary: deploy → auto-rollback",
        "merge the rollback PR: Git = live",
        "git revert promotion → deploy",
        "evening teardown (--now after cut-off)",
        "morning drift before up",
        "bring-up at up (no training)",
        "morning drift after bring-up",
    ]
    assert "smgitops policy: exit 0, checkov" in s["v1: plan + policy (pull request)"]["detail"]
    assert s["v1: deploy (merge)"]["weights"] == {"primary": 100.0}
    assert s["canary: deploy + canary analysis"]["weights"] == {"primary": 90.0, "candidate": 10.0}
    assert s["promote: plan + deploy"]["weights"] == {"primary": 0.0, "candidate": 100.0}
    # every apply re-planned empty
    applied = [x for x in doc["steps"] if x["plan_after_apply_empty"] is not None]
    assert len(applied) == 6 and all(x["plan_after_apply_empty"] is True for x in applied)


def test_rollback_and_revert_train_nothing_and_land_on_configurations_served_before(
    demo: tuple[int, dict[str, Any], str],
) -> None:
    _, doc, _ = demo
    s = steps(doc)
    assert s["v1: train + commit"]["trainings"] == 1
    assert s["canary PR: train candidate"]["trainings"] == 1
    assert sum(x["trainings"] for x in doc["steps"]) == 2
    bad, revert = s["bad canary: deploy → auto-rollback"], s["git revert promotion → deploy"]
    assert bad["trainings"] == 0 and revert["trainings"] == 0
    assert bad["endpoint_config"] == s["promote: plan + deploy"]["endpoint_config"]
    assert "canary FAILED" in bad["detail"] and "revert branch smgitops/rollback-dev-" in bad["detail"]
    assert revert["endpoint_config"] == s["canary: deploy + canary analysis"]["endpoint_config"]
    configs = [s[n]["endpoint_config"] for n in ("v1: deploy (merge)", "canary: deploy + canary analysis",
                                                  "promote: plan + deploy")]  # fmt: skip
    assert len(set(configs)) == 3  # each release has its own content-addressed configuration


def test_nothing_is_left_after_the_evening_teardown(demo: tuple[int, dict[str, Any], str]) -> None:
    _, doc, _ = demo
    assert doc["endpoints_alive_after_teardown"] == 0
    teardown = steps(doc)["evening teardown (--now after cut-off)"]
    assert teardown["endpoint_config"] is None and teardown["weights"] == {}
    assert "deleted: smgitops-dev" in teardown["detail"]
    assert not Path(doc["scratch_repository"]).exists()  # removed without --keep


def test_the_next_morning_drift_says_down_until_and_the_bring_up_trains_nothing(
    demo: tuple[int, dict[str, Any], str],
) -> None:
    _, doc, _ = demo
    s = steps(doc)
    early, up, later = (s[n] for n in ("morning drift before up", "bring-up at up (no training)",
                                       "morning drift after bring-up"))  # fmt: skip
    assert early["ok"] and early["endpoint_config"] is None  # nothing up before 08:00, and that is not drift
    assert "down until 08:00 (schedule)" in early["detail"]
    assert up["ok"] and up["trainings"] == 0 and up["plan_after_apply_empty"] is True
    assert "brought up" in up["detail"]
    # the configuration served before the evening teardown, with its weights
    assert up["endpoint_config"] == s["git revert promotion → deploy"]["endpoint_config"]
    assert up["weights"] == {"primary": 90.0, "candidate": 10.0}
    assert later["ok"] and "live = release file" in later["detail"]


class _FailingSageMaker:
    """A SageMaker client whose DescribeEndpoint is throttled: the live state cannot be read."""

    def describe_endpoint(self, **_: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeEndpoint")


class _Session:
    def client(self, service: str, **_: Any) -> Any:
        assert service == "sagemaker"
        return _FailingSageMaker()


def test_live_state_that_cannot_be_read_fails_the_step_instead_of_reading_as_gone(
    project_root: Path, tmp_path: Path
) -> None:
    import io

    from rich.console import Console

    from smgitops.aws import Aws
    from smgitops.context import Context
    from smgitops.demo import Demo

    demo = Demo(tmp_path, Console(file=io.StringIO()), emulator=None)
    demo.release_path = project_root / "releases" / "dev.yaml"
    demo.ctx = Context(region="us-east-1", given_aws=Aws(_Session()))  # type: ignore[arg-type]
    with demo.step("evening teardown") as record:
        pass
    # "no endpoint" is what the teardown step expects: an unreadable endpoint must not pass for a deleted one
    assert record.ok is False
    assert any("Rate exceeded" in e.what for e in record.expectations if not e.ok)


def test_a_story_that_stops_shows_what_the_emulator_logged(emulator: Any) -> None:
    """A demo that stops on a failed call shows the server's side of it: the emulator's log, whose errors (a TLS
    handshake that failed, an answer that could not be sent) are otherwise deleted with the emulator."""
    import io
    import socket

    from rich.console import Console

    from smgitops.demo import _show_emulator_log

    with socket.create_connection(("127.0.0.1", emulator.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP on the TLS port: the handshake fails
        sock.recv(1024)
    out = io.StringIO()
    _show_emulator_log(Console(file=out, width=120), emulator)
    assert out.getvalue().startswith("emulator log (last lines):\n")
    assert "TLS handshake failed" in out.getvalue()
