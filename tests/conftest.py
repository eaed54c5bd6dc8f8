"""Shared pytest fixtures. Each area keeps its fixtures in its own plugin module (tests/fixtures_<area>.py)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# pytest keeps its assertion-rewritten test modules in __pycache__ (git-ignored) only while bytecode may be written;
# with PYTHONDONTWRITEBYTECODE set every process rewrites all ~50 test modules again (about 4 s of CPU, paid by
# each xdist worker of every run). The test processes write it whatever the environment says.
sys.dont_write_bytecode = False

from smgitops.training import pin_blas_kernels  # noqa: E402 - after the bytecode switch, like the test modules

# Before any test imports numpy: in-process training refuses to package with unpinned OpenBLAS kernels.
pin_blas_kernels()

pytest_plugins = [
    "fixtures_emulator",
    "fixtures_terraform",
]

ROOT = Path(__file__).resolve().parents[1]


# What `make setup` provides and the suite runs for real. A missing one stops the run before the first test
# (exit 2) instead of skipping the tests that need it: a green run always means everything ran.
REQUIRED_TOOLS = {
    "terraform (>= 1.10) on PATH": lambda: shutil.which("terraform") is not None,
    "the Terraform provider mirror (.cache/terraform/terraformrc)": lambda: (
        ROOT / ".cache" / "terraform" / "terraformrc"
    ).exists(),
    "checkov (.venv-tools/bin/checkov)": lambda: (ROOT / ".venv-tools" / "bin" / "checkov").exists(),
    "zizmor (.venv-tools/bin/zizmor)": lambda: (ROOT / ".venv-tools" / "bin" / "zizmor").exists(),
    "actionlint (.venv-tools/bin/actionlint)": lambda: (ROOT / ".venv-tools" / "bin" / "actionlint").exists(),
    "node on PATH": lambda: shutil.which("node") is not None,
    "the IAM simulator (tests/iam/node_modules)": lambda: (ROOT / "tests" / "iam" / "node_modules").is_dir(),
}


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [name for name, present in REQUIRED_TOOLS.items() if not present()]
    if missing:
        pytest.exit(f"set-up incomplete, missing: {'; '.join(missing)}. Run `make setup` (make test does).", 2)


# A run whose -m leaves out the terraform marker (`make test-fast`) must not run Terraform all the same: a test that
# does and lacks the marker fails, naming it, instead of slowing the fast suite down unnoticed. The guard is a
# `terraform` first on PATH (every Terraform process, in-process or from a child smgitops, is found through PATH).
NO_TERRAFORM = """#!/bin/sh
echo "terraform run by a test without the terraform marker ($*): mark it @pytest.mark.terraform" >&2
exit 97
"""


# Every emulator of the run keeps its log here, and the run ends with what those logs say about lost answers: an
# SDK retrying a request the emulator had answered (Terraform then waits out its lock timeout for its own lock), a
# request served slowly enough for a client to give up, a TLS handshake that failed for another reason than a client
# refusing the emulator's certificate (a demo once stopped on one). The faults tests inject on purpose are left out.
EMULATOR_LOG_VAR = "SMGITOPS_EMULATOR_LOG_DIR"
_WATCHED = ("client retried", "slow answer", "TLS handshake failed")
# a client refusing the certificate (a test without the emulator's CA), plain HTTP sent to the TLS port
_INJECTED = ("dropped on purpose", "/smgitops-odd/", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN", "BAD_CERTIFICATE")
_INJECTED += ("HTTP_REQUEST",)
_OWN_LOG_DIR = pytest.StashKey[bool]()


def _emulator_logs_dir(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get(EMULATOR_LOG_VAR):
        return  # an xdist worker inherits the controller's directory; a given one is kept
    os.environ[EMULATOR_LOG_VAR] = tempfile.mkdtemp(prefix="smgitops-emulator-logs-")
    config.stash[_OWN_LOG_DIR] = True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if hasattr(terminalreporter.config, "workerinput"):
        return
    logs = Path(os.environ.get(EMULATOR_LOG_VAR, "") or os.devnull)
    found = []
    for path in sorted(logs.glob("emulator-*.log")) if logs.is_dir() else ():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if any(m in line for m in _WATCHED) and not any(m in line for m in _INJECTED):
                found.append(f"{path.name}: {line}")
    if not found:
        if terminalreporter.config.stash.get(_OWN_LOG_DIR, False):
            shutil.rmtree(logs, ignore_errors=True)  # nothing to read in them
        terminalreporter.write_line("emulator logs: no lost or slow answers, no failed handshakes a test did not cause")
        return
    terminalreporter.section("emulator: answers lost or slow, handshakes failed (not caused by a test)")
    for line in found:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"emulator logs: {logs} ({len(found)} such lines)")


# How long Terraform waits for the state lock in this suite (SMGITOPS_LOCK_TIMEOUT; the product's default is 120 s,
# for a pull request's plan meeting a merge's apply). No test waits that long for a lock another run holds. When an
# answer to a Terraform lock request is lost (the SDK retries a request the emulator answered 200 and the retry
# finds Terraform's own lock; it happened in about one suite run in two until the emulator wrote each answer in one
# piece, see smgitops.emulator.server), Terraform waits out the timeout before smgitops releases its own lock and
# runs again: 30 s bounds what that costs the run; the recovery itself is tested with 1 s (test_recovery.py).
SUITE_LOCK_TIMEOUT = "30s"


def pytest_configure(config: pytest.Config) -> None:
    _emulator_logs_dir(config)
    os.environ.setdefault("SMGITOPS_LOCK_TIMEOUT", SUITE_LOCK_TIMEOUT)
    expression = str(config.getoption("markexpr", "") or "")
    if "not terraform" not in expression:
        return
    guard = Path(tempfile.mkdtemp(prefix="smgitops-no-terraform-"))
    (guard / "terraform").write_text(NO_TERRAFORM)
    (guard / "terraform").chmod(0o755)
    os.environ["PATH"] = f"{guard}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The smgitops checkout under test (holds releases/, data/, terraform/, bootstrap/, .cache/)."""
    return ROOT


@pytest.fixture()
def git_identity(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """CI machines have no git identity: anything that commits sets author and committer through the env."""
    ident = {
        "GIT_AUTHOR_NAME": "smgitops tests",
        "GIT_AUTHOR_EMAIL": "tests@smgitops.invalid",
        "GIT_COMMITTER_NAME": "smgitops tests",
        "GIT_COMMITTER_EMAIL": "tests@smgitops.invalid",
    }
    for k, v in ident.items():
        monkeypatch.setenv(k, v)
    return ident


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach real AWS: dummy credentials, a fixed region, no shared config files."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


# The instant the evening teardown cut-off is judged at (deploy, rollback, teardown: smgitops.clock.cutoff_clock)
# unless a test sets its own: no test starts failing at 19:30 Berlin. Before every shipped release's cut-off.
SUITE_NOW = "2026-11-25T10:00:00Z"


@pytest.fixture(autouse=True)
def _daytime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMGITOPS_NOW", SUITE_NOW)


@pytest.fixture(scope="session")
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _own_cache_home(_cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with an empty user cache directory: validation verdicts (smgitops.paths.verdict_dir) kept by
    one test never shortcut another's checks, nor the developer's own. The directory is the same for all the tests
    of a process, emptied before each: its path is part of the environment local mode's shared AWS provider is kept
    for (smgitops.tfprovider), and a path of its own per test started a provider per test."""
    shutil.rmtree(_cache_home, ignore_errors=True)
    _cache_home.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(_cache_home))
    return _cache_home


# Files whose tests run real Terraform for minutes, longest first. `make test` spreads files over xdist workers
# (--dist loadfile: a file's tests share its module fixtures, such as the workflow story's emulator, and run in
# order) in collection order; starting these first keeps one long file from running alone at the end.
# (--dist loadgroup would let the short tests of a file go to any worker, but pytest-xdist 3.8 does not group under
# pytest 9: the group never reaches the test's node id.)
LONG_FILES_FIRST = (
    "test_workflows.py",
    "test_demo.py",
    "test_recovery.py",
    "test_rollout.py",
    "test_evening.py",
    "test_bringup.py",
    "test_plan_apply.py",
    "test_env_faults.py",
    "test_terraform_roots.py",
    "test_policy.py",
    "test_rollback_git.py",
    "test_checkov_launcher.py",
    "test_authoring.py",
    "test_emulator_terraform.py",
    "test_retire.py",
    "test_output.py",
)


# Fixtures that run Terraform (a bootstrapped emulator, the workflow story, a root with local state): a test that
# uses one runs Terraform and gets the marker from here.
TERRAFORM_FIXTURES = frozenset({"story", "account", "console_root", "journey"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TERRAFORM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.terraform)
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
