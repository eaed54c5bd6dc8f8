"""The context a command builds once: settings resolved at most once, one AWS adapter, one workspace per release
file, and binding to the release a command only learns further down (deploy, rollback)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smgitops.context import Context
from smgitops.errors import UserError
from smgitops.release import load_release
from smgitops.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[1]
NAMES = {
    "state_bucket": "smgitops-tfstate-123456789012",
    "lock_table": "smgitops-tflock",
    "artifact_bucket": "smgitops-artifacts-123456789012",
    "execution_role_arn": "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution",
    "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-0000-4000-8000-000000000000",
}


def _env() -> dict[str, str]:
    return {ENV_VARS[name]: value for name, value in NAMES.items()}


def test_settings_are_resolved_once_and_the_adapter_made_once() -> None:
    release = load_release(ROOT / "releases" / "dev.yaml")
    env = _env()
    ctx = Context.for_release(release, env=env)
    settings = ctx.settings
    assert settings.artifact_bucket == NAMES["artifact_bucket"] and settings.region == release.region
    env[ENV_VARS["artifact_bucket"]] = "changed-after-the-command-resolved-its-settings"
    assert ctx.settings is settings  # not resolved again
    assert ctx.aws is ctx.aws and ctx.aws.session is not None
    assert ctx.aws.session.region_name == release.region


def test_missing_settings_fail_on_first_use_not_at_construction() -> None:
    release = load_release(ROOT / "releases" / "dev.yaml")
    ctx = Context.for_release(release, env={})  # not local mode, no SMGITOPS_* variables
    with pytest.raises(UserError, match="SMGITOPS_"):
        _ = ctx.settings


def test_one_workspace_per_release_file_on_the_context_settings() -> None:
    release = load_release(ROOT / "releases" / "dev.yaml")
    ctx = Context.for_release(release, env=_env())
    ws = ctx.workspace(release)
    assert ctx.workspace(load_release(release.path)) is ws  # the same file: the same workspace
    assert ws.settings is ctx.settings and ws.aws is ctx.aws
    assert ws.directory == release.repo_root / ".smgitops" / "work" / "dev"


def test_an_unbound_context_binds_to_the_release_it_meets_first(tmp_path: Path) -> None:
    dev = load_release(ROOT / "releases" / "dev.yaml")
    ctx = Context(env=_env())
    with pytest.raises(RuntimeError, match="not bound"):
        _ = ctx.aws
    assert ctx.bound_to(dev) is ctx and ctx.region == dev.region and ctx.repo_root == dev.repo_root
    assert ctx.bound_to(dev) is ctx  # same region and repository: the very same context (one session)
    # another repository (a release of another checkout): a context of its own, with the same injected parts
    for name in ("releases", "data"):
        shutil.copytree(ROOT / name, tmp_path / name)
    other = load_release(tmp_path / "releases" / "dev.yaml")
    elsewhere = ctx.bound_to(other)
    assert elsewhere is not ctx and elsewhere.repo_root == tmp_path.resolve() and elsewhere.env is ctx.env
    assert elsewhere.aws is not ctx.aws and ctx.repo_root == dev.repo_root


def test_settings_and_a_workspace_alone_never_import_botocore() -> None:
    """``smgitops policy --plan-file`` shows a saved plan in the workspace and needs no AWS client: the adapter (and
    botocore, about 0.2 s to import) is made on first use only; boto3 (and its s3transfer) never."""
    # The release's validation verdicts, kept here first (this process has scikit-learn imported): the probe's
    # load_release finds them and does not import scikit-learn, which has nothing to do with boto3 (about 0.9 s).
    load_release(ROOT / "releases" / "dev.yaml")
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from smgitops.context import Context\n"
        "from smgitops.release import load_release\n"
        f"release = load_release(Path({str(ROOT / 'releases' / 'dev.yaml')!r}))\n"
        f"ctx = Context.for_release(release, env={_env()!r})\n"
        "ws = ctx.workspace(release)\n"
        "assert ws.settings is ctx.settings\n"
        "assert 'botocore' not in sys.modules, 'botocore imported'\n"
        "ws.aws.sagemaker\n"
        "assert 'botocore' in sys.modules\n"
        "assert 'boto3' not in sys.modules, 'boto3 imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
