"""Human output: whole and plain without a terminal, values as people read them, and progress while Terraform and
the waits run.

A CI log is not a terminal: rich would cut tables at 80 columns there (``smgitop…``). The renderers of the main
commands run here on representative data (a 63-character endpoint name, a variant without a weight before, weights
from AWS as floats, booleans, missing values) and their output must hold no ``None``/``True``/``False``, no
``{'``/``[]``, no ``…`` and no ANSI code. Terraform's output must reach stderr while Terraform still runs (the real
CLI against the emulator, in the last test), and the waits must beat in the injected clock's time.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smgitops import console as out
from smgitops.aws import Aws
from smgitops.canary import VariantMetrics, analyse, judge, render
from smgitops.commands.deploy import print_step
from smgitops.commands.rollback import print_rollback
from smgitops.context import Context
from smgitops.deploy import VerifyResult, print_verify, verify_release
from smgitops.plan import print_summary
from smgitops.rollout import DeployResult, RollbackResult, Step
from smgitops.teardown import Entry, Outcome, TeardownReport
from smgitops.teardown import render as render_teardown
from smgitops.terraform import stderr_echo, subprocess_runner
from test_canary import FakeTime, ScriptedMetrics, _release
from test_verify import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
LONG = "smgitops-churn-classifier-gradient-boosting-candidate-canary-dev"  # 63 characters, SageMaker's maximum
LEAKS = ("None", "True", "False", "{'", "[]", "…", "\x1b[")


def assert_readable(text: str) -> None:
    found = [leak for leak in LEAKS if leak in text]
    assert not found, f"{found} in:\n{text}"


@pytest.fixture(autouse=True)
def _not_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(out.PROGRESS_ENV, raising=False)


def _teardown_report() -> TeardownReport:
    now = datetime(2026, 11, 30, 18, 5, tzinfo=UTC)
    entry = Entry(
        region="eu-central-1",
        endpoint=LONG,
        status="InService",
        release="dev",
        matched_by="release file releases/dev.yaml",
        cutoff="2026-11-30T19:00:00+01:00",
        cutoff_utc="2026-11-30T18:00:00+00:00",
        outcome=Outcome.DELETED,
        reason="alive past today's cut-off 19:00 Europe/Berlin (releases/dev.yaml)",
    )
    return TeardownReport(now=now, dry_run=False, max_deletions=None, regions=["eu-central-1"], entries=[entry])


# -- consoles ------------------------------------------------------------------------------------------------------


def test_without_a_terminal_a_table_is_neither_cut_nor_coloured() -> None:
    from rich.console import Console

    default = io.StringIO()
    render_teardown(_teardown_report(), Console(file=default))  # what rich does by itself in a log: 80 columns
    assert LONG not in default.getvalue() and "…" in default.getvalue()  # the failure this module exists for

    buf = io.StringIO()
    render_teardown(_teardown_report(), out.make_console(buf))
    text = buf.getvalue()
    assert LONG in text and "alive past today's cut-off 19:00 Europe/Berlin (releases/dev.yaml)" in text
    assert_readable(text)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_rich_output_unless_ci_says_it_is_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    assert out.is_interactive(_Terminal()) and not out.is_interactive(io.StringIO())
    term = _Terminal()
    out.make_console(term).print("[bold]weights[/]")
    assert "\x1b[" in term.getvalue()  # colour where a person looks at it

    monkeypatch.setenv("CI", "true")
    assert not out.is_interactive(_Terminal())
    term = _Terminal()
    out.make_console(term).print("[bold]weights[/]")
    assert term.getvalue() == "weights\n"


def test_values_are_written_as_people_read_them() -> None:
    assert out.human(None) == "—" and out.human(True) == "yes" and out.human(False) == "no"
    assert out.human(2.0) == "2" and out.human([]) == "—" and out.human(["a", "b"]) == "a, b"
    assert out.percent(None) == "—" and out.percent(100) == "100 %" and out.percent(0.0) == "0 %"
    assert out.weights_text({"primary": 0.0, "canary": 100.0}) == "primary 0 %, canary 100 %"
    assert out.weights_text({}) == "—"


# -- the main commands' human output -----------------------------------------------------------------------------


def test_human_output_of_the_main_commands_has_no_python_values(capsys: pytest.CaptureFixture[str]) -> None:
    from smgitops import cli

    # validate
    assert cli.main(["validate", str(ROOT / "releases" / "dev.yaml")]) == 0

    # plan summary: a first plan (nothing before), a model added
    summary: dict[str, Any] = {
        "release": "releases/dev.yaml",
        "environment": "dev",
        "endpoint": LONG,
        "endpoint_config": {"before": None, "after": f"{LONG[:54]}-1a2b3c4d"},
        "endpoint_change": None,
        "variants": [
            {"name": "primary", "model": "cancer-logreg", "model_name": "cancer-logreg-dev-0123456789ab",
             "weight_before": None, "weight_after": 100},
            {"name": "canary", "model": "cancer-forest", "model_name": "cancer-forest-dev-ba9876543210",
             "weight_before": 0, "weight_after": 10.0},
        ],
        "models_added": [{"id": "cancer-forest", "digest": "ba9876543210" + "0" * 52, "name": "x"}],
        "models_removed": [],
        "artifacts_to_publish": [],
        "resources": {"add": 3, "change": 0, "destroy": 0, "replace": 0,
                      "changes": [{"address": "aws_sagemaker_endpoint.this", "actions": ["create"]}]},
        "instance_type": "ml.t2.medium",
        "instance_count": 1,
        "no_changes": False,
        "plan_file": ".smgitops/work/dev/dev.tfplan",
    }  # fmt: skip
    print_summary(summary)

    # verify: a variant AWS describes without model or weight
    verify = VerifyResult(
        endpoint=LONG,
        ok=False,
        status="InService",
        failure_reason=None,
        config_name=None,
        expected_config_name=f"{LONG[:54]}-1a2b3c4d",
        variants=[
            {"name": "primary", "model_name": None, "weight": None, "instance_type": None, "instance_count": None}
        ],
        problems=["variant primary: weight —, release says 100"],
    )
    print_verify(verify)

    # canary: one variant without a latency datapoint, one not serving
    release = _release(
        [{"name": "primary", "model": "m1", "weight": 100}, {"name": "shadow", "model": "m2", "weight": 0}]
    )
    now = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    report = judge(release, {"primary": VariantMetrics(150.0, None, None)}, now - timedelta(minutes=10), now)
    render(report)

    # deploy: steps, the summary line, a rollback
    print_step(Step("apply", True, 3.2, f"{LONG[:54]}-1a2b3c4d, plan after apply empty"))
    print_step(Step("canary", False, 0.4, report.summary()))
    deployed = DeployResult(release="releases/dev.yaml", environment="dev", revision="abc", ok=True)
    deployed.endpoint_config = f"{LONG[:54]}-1a2b3c4d"
    print(deployed.summary())
    rolled = RollbackResult(
        release="releases/dev.yaml",
        revision="HEAD~1",
        sha="0123456789abcdef",
        ok=True,
        endpoint_config=None,
        plan_after_apply_empty=True,
        weights={"primary": 0.0, "canary": 100.0},
    )
    print_rollback(rolled, None)

    # teardown
    render_teardown(_teardown_report())

    captured = capsys.readouterr()
    text = captured.out
    assert_readable(text)
    assert LONG in text  # never cut, in any table
    assert "releases/dev.yaml: ok" in text  # validate
    assert "— → 100 %" in text and "0 % → 10 %" in text  # plan
    assert "weights primary 0 %, canary 100 %" in text and "plan after apply empty: yes" in text  # rollback
    assert "live configuration —" in text and "recorded good: no" in text


# -- heartbeats in the injected clock's time ---------------------------------------------------------------------


def test_the_canary_wait_beats_every_poll_with_invocations_and_time_left() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 90}, {"name": "b", "model": "m2", "weight": 10}])
    t = FakeTime()
    beats: list[str] = []
    report = analyse(
        release,
        ScriptedMetrics([10, 60, 150]),
        clock=t.clock,
        sleep=t.sleep,
        wait=True,
        timeout_seconds=900,
        poll_seconds=30,
        progress=beats.append,
    )
    assert report.polls == 3 and len(beats) == 2 and t.slept == [30, 30]  # one beat per poll that goes on waiting
    assert beats[0] == (
        "poll 1: a 10 invocations, b 10 invocations (min 100 each); 10.0 of 10 bake min observed; "
        "next poll in 30 s, 15.0 min left before giving up"
    )
    assert beats[1].startswith("poll 2: a 60 invocations, b 60 invocations") and "14.5 min left" in beats[1]


def test_canary_wait_on_the_command_line_beats_on_stderr_and_keeps_stdout_json(
    emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``smgitops canary --wait --json`` in local mode: the bake clock is virtual, and the beats say so in its time."""
    from smgitops import cli
    from test_canary import _valid_release_file

    variants = [{"name": "primary", "model": "m1", "weight": 100}]
    path = _valid_release_file(tmp_path, variants, _release(variants, min_invocations=5).raw["canary"])
    since = datetime.now(UTC).isoformat()
    code = cli.main(["canary", str(path), "--json", "--wait", "--timeout", "60", "--poll", "30", "--since", since])
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["polls"] == 3  # at 0, 30 and 60 s (virtual): nothing arrived
    beats = [ln for ln in captured.err.splitlines() if ln.startswith("[canary] ")]
    assert [b.split(";")[0] for b in beats] == [
        "[canary] poll 1: primary 0 invocations (min 5 each)",
        "[canary] poll 2: primary 0 invocations (min 5 each)",
    ]
    assert beats[0].endswith("next poll in 30 s, 60 s left before giving up") and beats[1].endswith(
        "30 s left before giving up"
    )


class _Updating:
    """A SageMaker client whose DescribeEndpoint answers ``Updating`` ``n`` times, then ``InService``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:  # noqa: N803 - boto3's keyword
        self.n -= 1
        return {"EndpointName": EndpointName, "EndpointStatus": "Updating" if self.n >= 0 else "InService"}


def _updating(release: Any, t: _Seconds, n: int) -> Context:
    """A context whose SageMaker answers Updating ``n`` times, waiting in ``t``'s virtual seconds."""
    aws = Aws(None, sleep=t.sleep, clients={"sagemaker": _Updating(n)})
    return Context.for_release(release, settings=SETTINGS, monotonic=t.clock, aws=aws)


class _Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_for_an_updating_endpoint_beats_every_30_s_of_the_injected_clock(
    capsys: pytest.CaptureFixture[str],
) -> None:
    t = _Seconds()
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    verify_release(release, _updating(release, t, 8), poll=10, timeout=600, expected_config="c")
    beats = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[verify] ")]
    assert t.now == 1080.0  # eight polls of 10 s (virtual)
    assert beats == [
        "[verify] endpoint smgitops-dev is Updating: waited 0 s, 600 s left",
        "[verify] endpoint smgitops-dev is Updating: waited 30 s, 570 s left",
        "[verify] endpoint smgitops-dev is Updating: waited 60 s, 540 s left",
    ]


def test_the_recovery_wait_beats_in_the_injected_clock(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from smgitops import recovery

    t = _Seconds()
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    recovery.wait_settled(release, _updating(release, t, 61), 600)
    beats = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[recovery] ")]
    assert t.now == 1061.0 and len(beats) == 3  # at 0, 30 and 60 s of 61 one-second polls
    assert "smgitops-dev is Updating" in beats[0] and "waited 30 s, 570 s left" in beats[1]


def test_quiet_progress_says_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(out.PROGRESS_ENV, "quiet")
    with out.progress("canary") as beat:
        beat("poll 1")
    assert capsys.readouterr().err == ""
    assert stderr_echo(["terraform", "apply"]) is None


# -- Terraform's output as it comes ------------------------------------------------------------------------------

_CHILD = """
import os, sys, time
print("first line", flush=True)
deadline = time.monotonic() + 20
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.02)
print("released" if os.path.exists(sys.argv[1]) else "held until the end", flush=True)
print("Error: a diagnostic", file=sys.stderr, flush=True)
sys.exit(1)
"""


def test_each_line_is_echoed_while_the_process_runs_and_still_captured(tmp_path: Path) -> None:
    """The child waits for proof that its first line was seen; output held until the end would never release it.
    Its stderr (Terraform's diagnostics) is captured for the error report, not echoed: a fault stays one line."""
    marker = tmp_path / "seen"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    echoed: list[str] = []

    def echo(line: str) -> None:
        echoed.append(line)
        if line == "first line":
            marker.touch()

    result = subprocess_runner([sys.executable, str(script), str(marker)], cwd=tmp_path, env=os.environ, echo=echo)
    assert echoed == ["first line", "released"]
    assert (result.returncode, result.stdout, result.stderr) == (1, "first line\nreleased\n", "Error: a diagnostic\n")


def test_only_the_long_sub_commands_are_echoed() -> None:
    assert stderr_echo(["terraform", "show", "-json"]) is None and stderr_echo(["terraform", "output"]) is None
    assert stderr_echo(["terraform", "init"]) is None  # "initialised", or an error reported once as one line
    assert stderr_echo(["terraform", "apply"]) is not None and stderr_echo(["terraform", "plan"]) is not None


class _Recorder(io.TextIOBase):
    """stderr that notes, for every line, whether a ``terraform apply`` of ``under`` was still running."""

    def __init__(self, under: Path) -> None:
        self.under = str(under)
        self.lines: list[tuple[str, bool]] = []
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            *done, self._partial = self._partial.split("\n")
            for line in done:
                self.lines.append((line, self._apply_running()))
        return len(text)

    def _apply_running(self) -> bool:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if len(argv) > 1 and argv[0].endswith(b"terraform") and argv[1] == b"apply" and cwd.startswith(self.under):
                return True
        return False


@pytest.fixture()
def v1(tmp_path: Path, git_identity: dict[str, str]) -> Iterator[Any]:
    """The shipped release's first model alone at 100 %, trained, published and committed; nothing applied."""
    from fixtures_terraform import local_stack, make_scratch_repo
    from test_rollout import Journey

    repo = make_scratch_repo(tmp_path / "repo")
    with local_stack(tmp_path, repo_root=repo) as stack:
        j = Journey(repo, stack, [])
        j.commit_v1()
        yield j


@pytest.mark.terraform
def test_an_apply_streams_terraform_lines_on_stderr_while_it_runs_and_stdout_stays_json(
    v1: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from smgitops import cli

    recorder = _Recorder(v1.repo)
    monkeypatch.setattr(sys, "stderr", recorder)
    started = time.monotonic()
    code = cli.main(["apply", str(v1.path), "--auto-approve", "--json"])
    print(f"\napply --auto-approve (v1): {time.monotonic() - started:.1f} s", file=sys.__stderr__)
    doc = json.loads(capsys.readouterr().out)  # stdout: one JSON document, nothing else
    assert code == 0 and doc["ok"] is True, doc

    lines = recorder.lines
    applied = [(line, running) for line, running in lines if line.startswith("[apply] ")]
    creating = [running for line, running in applied if "aws_sagemaker_endpoint.this: Creating..." in line]
    assert creating == [True], applied  # on stderr while Terraform was still applying
    assert any("Apply complete! Resources: " in line for line, _ in applied)
    assert any(line.startswith("[plan] ") for line, _ in lines)  # the plan before it, under its own name
    assert not any(line.startswith("[show] ") for line, _ in lines)  # `show -json` is data, not progress
