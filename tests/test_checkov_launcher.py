"""checkov through the launcher (PLY's tables built once per grammar, a process started ahead of its scan) judges
exactly as checkov's own console script does."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from smgitops import paths, policy

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"

pytestmark = [pytest.mark.checkov]


def _verdicts(result: policy.CheckovResult) -> dict[str, Any]:
    def ordered(items: list[Any]) -> list[str]:
        return sorted(json.dumps(x, sort_keys=True, default=str) for x in items)

    return {
        "results": ordered(result.results),
        "skipped": ordered(result.skipped),
        "findings": ordered(result.findings),
        "evaluated": result.evaluated,
        "counts": (result.passed, result.failed),
    }


def test_the_launcher_started_ahead_judges_the_roots_as_checkov_s_console_script_does() -> None:
    roots = {name: ROOT / name for name in policy.ROOTS}
    used = policy.PREWARMED.used
    assert policy.prewarm_checkov()  # checkov is part of the set-up, in a virtual environment of its own
    launched = policy.run_checkov(roots, policies_dir=POLICIES)
    assert policy.PREWARMED.used == used + 1  # the scan went to the process started ahead
    plain = policy.run_checkov(roots, policies_dir=POLICIES, runner=subprocess.run)  # the console script itself
    assert plain.passed > 0 and plain.evaluated  # it judged the roots, custom checks included
    assert _verdicts(launched) == _verdicts(plain)


def test_a_process_started_ahead_serves_only_a_scan_with_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    exe = paths.tools_bin("checkov")
    assert policy.prewarm_checkov()
    monkeypatch.setenv("SMGITOPS_TEST_OTHER_ENVIRONMENT", "1")
    assert policy.PREWARMED.take(exe, policy.checkov_env()) is None  # another environment: not this process
    monkeypatch.delenv("SMGITOPS_TEST_OTHER_ENVIRONMENT")
    waiting = policy.PREWARMED.take(exe, policy.checkov_env())
    assert waiting is not None
    out, _ = waiting.communicate(input="")  # end of input: it exits without scanning
    assert waiting.returncode == 0 and out == ""


def test_the_launcher_ends_with_checkovs_exit_code_and_all_of_its_output() -> None:
    """checkov ends a scan with sys.exit; the launcher ends the process itself (no interpreter teardown) with that
    code, after flushing everything checkov printed."""
    python = paths.tools_bin("python")
    failing = ROOT / "tests" / "policy_fixtures" / "bucket_policy_attached"
    args = ["-d", str(failing), "--framework", "terraform", "--skip-download", "-o", "json", "--quiet"]
    done = subprocess.run([str(python), "-c", policy.CHECKOV_LAUNCHER, *args], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["summary"]["failed"] > 0
