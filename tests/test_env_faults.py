"""Failures of the environment through the real CLI: one line on stderr saying what failed and what to do, exit 2,
no traceback (``--debug`` shows it), and a bounded wait.

* unreachable AWS: a closed port, and a port that accepts connections but never answers (a socket server here);
  both through a boto3 call and through the check that runs before Terraform;
* credentials missing, expired, rejected; AccessDenied; throttling after the retries (a small HTTP server here
  answers every request with AWS's JSON error for it, so botocore parses a real response);
* bootstrap resources missing: the state bucket and the lock table named by the settings (real Terraform against
  the emulator); in local mode an emulator that lost them is bootstrapped again, never by deleting the local state;
* a full or read-only file system under ``--out`` (a small tmpfs in a private mount namespace; ``/dev/full``).

The timing cases run the CLI in a subprocess with ``timeout=60`` and print the seconds they took (``pytest -s``);
the cases that end at once run the CLI's ``main()`` in this process with exactly the same environment variables
(boto3 and the service models are then loaded once, not once per case).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMGITOPS = Path(sys.executable).with_name("smgitops")
RELEASE = ROOT / "releases" / "dev.yaml"
TIMEOUT = 60  # seconds: a command that has not ended by then hangs
# The silent-endpoint cases wait 1 s for each answer instead of the product's 5 s (and the check before Terraform's
# 4 s): the attempts, the retries and the line are the same; tests/test_aws.py holds the defaults.
SHORT_READ = {"SMGITOPS_AWS_READ_TIMEOUT": "1"}

EXPLICIT_SETTINGS = {
    "SMGITOPS_STATE_BUCKET": "smgitops-tfstate-123456789012",
    "SMGITOPS_LOCK_TABLE": "smgitops-tflock",
    "SMGITOPS_ARTIFACT_BUCKET": "smgitops-artifacts-123456789012",
    "SMGITOPS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution",
    "SMGITOPS_KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


# -- helpers ------------------------------------------------------------------------------------------------------


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any AWS or smgitops setting, dummy credentials, no metadata service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMGITOPS_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SMGITOPS_LOCAL_DIR": str(tmp / "local"),
        }
    )
    env.update(extra)
    return env


class Run:
    """One CLI run: its process result and how long it took."""

    def __init__(self, proc: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.proc, self.seconds = proc, seconds

    @property
    def lines(self) -> list[str]:
        """stderr's lines but Terraform's notices of a slow state lock (see :data:`_SLOW_LOCK_NOTICE`)."""
        return [line for line in self.proc.stderr.splitlines() if line.strip() and not _SLOW_LOCK_NOTICE.match(line)]


# Terraform says "Acquiring state lock. This may take a few moments..." (or "Releasing") on its stdout when taking or
# releasing the lock is slow, which depends on the machine's load: streamed as progress under the sub-command's name,
# it comes before an environment fault's one line on a loaded machine and not on an idle one.
_SLOW_LOCK_NOTICE = re.compile(r"\[[a-z]+\] (Acquiring|Releasing) state lock\. This may take a few moments\.\.\.$")


def keep_release_verdicts() -> None:
    """The shipped release's validation verdicts, kept in this test's cache directory (which :func:`base_env` hands
    down): a child that loads the release then skips scikit-learn's check of its parameters, an import of about
    0.9 s that the timing cases are not about."""
    from smgitops.release import load_release

    load_release(RELEASE)


def cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = TIMEOUT) -> Run:
    started = time.monotonic()
    proc = subprocess.run(
        [str(SMGITOPS), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(proc, time.monotonic() - started)


def cli_here(*args: str, env: dict[str, str], cwd: Path) -> Run:
    """The CLI's ``main()`` in this process, run from ``cwd`` with ``env``'s AWS and smgitops variables in place of
    this process's own (as :func:`cli` gives them to its subprocess); its exit code, stdout and stderr."""
    from smgitops.cli import main

    saved = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "SMGITOPS_"))}
    previous = Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "SMGITOPS_"))})
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(previous)
        for key in [k for k in os.environ if k.startswith(("AWS_", "SMGITOPS_"))]:
            del os.environ[key]
        os.environ.update(saved)
    proc = subprocess.CompletedProcess(["smgitops", *args], code, out.getvalue(), err.getvalue())
    return Run(proc, time.monotonic() - started)


def assert_one_line(run: Run, *needles: str) -> str:
    """Exit 2, exactly one line on stderr containing every needle, no traceback; returns the line."""
    assert "Traceback" not in run.proc.stderr, run.proc.stderr
    assert run.proc.returncode == 2, run.proc.stderr
    assert len(run.lines) == 1, run.proc.stderr
    line = run.lines[0]
    for needle in needles:
        assert needle in line, line
    return line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], held
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@contextmanager
def erroring_aws(status: int, error_type: str, message: str) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server answering every request as an AWS JSON-protocol service (SageMaker) does with an error;
    yields its URL and the ``X-Amz-Target`` of each request it received."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.headers.get("X-Amz-Target", ""))
            body = json.dumps({"__type": error_type, "message": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- AWS unreachable ----------------------------------------------------------------------------------------------


def test_closed_port_fails_fast_with_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = base_env(tmp_path, AWS_ENDPOINT_URL=url, **EXPLICIT_SETTINGS)
    run = cli_here("verify", str(RELEASE), env=env, cwd=tmp_path)  # a boto3 call (DescribeEndpoint)
    line = assert_one_line(run, f"cannot reach {url}", "smgitops emulator", "AWS_ENDPOINT_URL")
    print(f"\nclosed port, boto3 call: {run.seconds:.1f} s: {line}")

    debug = cli_here("--debug", "verify", str(RELEASE), env=env, cwd=tmp_path)
    assert debug.proc.returncode == 2
    assert "Traceback" in debug.proc.stderr and "EndpointConnectionError" in debug.proc.stderr
    assert debug.lines[-1] == line

    # An S3 call (plan's artifact check): the line names the endpoint, not the object's URL.
    plan = cli_here("plan", str(RELEASE), env=env, cwd=tmp_path)
    assert_one_line(plan, f"cannot reach {url} (connection failed")


def test_closed_port_fails_before_terraform_starts(tmp_path: Path) -> None:
    """Local mode without settings bootstraps the emulator with Terraform first: the reachability check runs
    before it (Terraform's provider would retry for minutes)."""
    url = f"http://127.0.0.1:{free_port()}"
    env = base_env(tmp_path, AWS_ENDPOINT_URL=url)
    run = cli_here("verify", str(RELEASE), env=env, cwd=tmp_path)
    line = assert_one_line(run, f"cannot reach {url}")
    assert not list((tmp_path / "local").rglob("*.tf")), "Terraform's working copy was made: it was about to run"
    print(f"\nclosed port, before Terraform: {run.seconds:.1f} s: {line}")


def test_never_answering_endpoint_is_bounded(tmp_path: Path) -> None:
    with silent_server() as (port, held):
        url = f"http://127.0.0.1:{port}"
        env = base_env(tmp_path, AWS_ENDPOINT_URL=url, **EXPLICIT_SETTINGS, **SHORT_READ)
        keep_release_verdicts()
        run = cli("verify", str(RELEASE), env=env, cwd=tmp_path)  # subprocess timeout 60 s: it must end
        line = assert_one_line(run, url, "did not answer", "AWS_ENDPOINT_URL")
        assert len(held) == 3  # MAX_ATTEMPTS connections, each waited on for READ_TIMEOUT, then given up
    print(f"\nnever-answering port, boto3 call: {run.seconds:.1f} s: {line}")


def test_never_answering_endpoint_before_terraform_is_bounded(tmp_path: Path) -> None:
    with silent_server() as (port, held):
        url = f"http://127.0.0.1:{port}"
        env = base_env(tmp_path, AWS_ENDPOINT_URL=url, **SHORT_READ)
        keep_release_verdicts()
        run = cli("verify", str(RELEASE), env=env, cwd=tmp_path)
        line = assert_one_line(run, url, "did not answer")
        assert len(held) == 2  # the pre-Terraform check's two tries
        assert not list((tmp_path / "local").rglob("*.tf"))
    print(f"\nnever-answering port, before Terraform: {run.seconds:.1f} s: {line}")


# -- credentials, permissions, throttling -------------------------------------------------------------------------


def test_missing_credentials(tmp_path: Path, emulator: Any) -> None:
    env = base_env(tmp_path, **emulator.env(), **EXPLICIT_SETTINGS)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(key)
    run = cli_here("verify", str(RELEASE), env=env, cwd=tmp_path)
    assert_one_line(run, "no AWS credentials found", "AWS_PROFILE", "configure-aws-credentials")


def test_expired_credentials(tmp_path: Path) -> None:
    message = "The security token included in the request is expired"
    with erroring_aws(400, "ExpiredTokenException", message) as (url, seen):
        env = base_env(tmp_path, AWS_ENDPOINT_URL=url, AWS_SESSION_TOKEN="session", **EXPLICIT_SETTINGS)
        run = cli_here("verify", str(RELEASE), env=env, cwd=tmp_path)
    assert_one_line(run, "AWS credentials have expired", "ExpiredTokenException", "DescribeEndpoint", "fresh")
    assert seen == ["SageMaker.DescribeEndpoint"]  # not retried: new credentials are needed


def test_rejected_credentials(tmp_path: Path) -> None:
    message = "The security token included in the request is invalid."
    with erroring_aws(400, "UnrecognizedClientException", message) as (url, _):
        env = base_env(tmp_path, AWS_ENDPOINT_URL=url, **EXPLICIT_SETTINGS)
        run = cli_here("verify", str(RELEASE), env=env, cwd=tmp_path)
    assert_one_line(run, "AWS rejected the credentials", "access key ...ting from AWS_ACCESS_KEY_ID")


def test_access_denied_names_action_resource_and_credentials(tmp_path: Path) -> None:
    principal = "arn:aws:sts::123456789012:assumed-role/smgitops-github-drift/run-1"
    resource = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/smgitops-dev"
    message = (
        f"User: {principal} is not authorized to perform: sagemaker:DescribeEndpoint on resource: {resource} "
        "because no identity-based policy allows the sagemaker:DescribeEndpoint action"
    )
    with erroring_aws(400, "AccessDeniedException", message) as (url, seen):
        env = base_env(
            tmp_path,
            AWS_ENDPOINT_URL=url,
            AWS_ROLE_ARN="arn:aws:iam::123456789012:role/smgitops-github-drift",
            AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
            **EXPLICIT_SETTINGS,
        )
        run = cli_here("verify", str(RELEASE), env=env, cwd=tmp_path)
    assert_one_line(
        run,
        "access denied",
        principal,
        "sagemaker:DescribeEndpoint",
        resource,
        "role arn:aws:iam::123456789012:role/smgitops-github-drift",
        "bootstrap/",
    )
    assert len(seen) == 1


def test_throttling_after_the_retry_budget(tmp_path: Path) -> None:
    with erroring_aws(400, "ThrottlingException", "Rate exceeded") as (url, seen):
        env = base_env(tmp_path, AWS_ENDPOINT_URL=url, **EXPLICIT_SETTINGS)
        run = cli_here("verify", str(RELEASE), env=env, cwd=tmp_path)
    assert_one_line(run, "AWS throttled DescribeEndpoint", "after 3 attempts", "run again")
    assert seen == ["SageMaker.DescribeEndpoint"] * 3


# -- a full or read-only disk -------------------------------------------------------------------------------------


def _can_mount_privately() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _train_in_tmpfs(tmp_path: Path, options: str, fill: bool = False) -> Run:
    """``smgitops train`` writing into a tmpfs mounted (``options``) in a private mount namespace; ``fill``: the
    file system is filled up first (a filler file takes every free block)."""
    out = tmp_path / "out"
    out.mkdir()
    filler = f'cat /dev/zero > "{out}/filler" 2>/dev/null; ' if fill else ""
    script = f'mount -t tmpfs -o {options} tmpfs "{out}" && {filler}exec "$0" "$@"'
    started = time.monotonic()
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, str(SMGITOPS), "train", str(RELEASE), "--out", str(out / "artifacts")],
        cwd=tmp_path,
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(proc, time.monotonic() - started)


@pytest.mark.skipif(not _can_mount_privately(), reason="no private mount namespace (unshare -rm) on this machine")
def test_disk_full_under_out(tmp_path: Path) -> None:
    run = _train_in_tmpfs(tmp_path, "size=64k", fill=True)
    line = assert_one_line(run, "no space left on the device", "model.tar.gz", "df -h", "--out DIR")
    assert f"cannot write {tmp_path / 'out' / 'artifacts'}" in line


@pytest.mark.skipif(not _can_mount_privately(), reason="no private mount namespace (unshare -rm) on this machine")
def test_read_only_out(tmp_path: Path) -> None:
    run = _train_in_tmpfs(tmp_path, "ro")
    assert_one_line(run, "read-only", str(tmp_path / "out" / "artifacts"), "--out DIR")


def test_disk_full_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same through ``main()`` where no mount namespace is available: the archive's temporary file is
    ``/dev/full``, so the kernel's ENOSPC reaches the writer (smgitops.files.write_atomic) as on a full disk."""
    from smgitops.cli import main

    out = tmp_path / "out"
    real_open = os.open

    def full_device(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if str(path).startswith(str(out)) and str(path).endswith(".tmp"):
            return real_open("/dev/full", os.O_WRONLY)
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", full_device)
    assert main(["train", str(RELEASE), "--out", str(out)]) == 2
    monkeypatch.undo()
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "no space left on the device" in err[0], err
    assert str(out / "cancer-logreg" / "model.tar.gz") in err[0]
    assert not (out / "cancer-logreg" / "model.tar.gz").exists()  # nothing partial left behind
    assert not list(out.rglob("*.tmp"))


# -- bootstrap resources missing ----------------------------------------------------------------------------------


def _emulator_client(emulator: Any, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=emulator.url, verify=str(emulator.ca_bundle), region_name="us-east-1")


def _settings_with_key(emulator: Any) -> dict[str, str]:
    """The explicit settings with a KMS key that exists (the S3 backend checks the key's ARN)."""
    key = _emulator_client(emulator, "kms").create_key()["KeyMetadata"]["Arn"]
    return {**EXPLICIT_SETTINGS, "SMGITOPS_KMS_KEY_ARN": key}


@pytest.mark.terraform
def test_missing_state_bucket_points_to_bootstrap(tmp_path: Path, scratch_repo: Path, emulator: Any) -> None:
    """The settings name a state bucket that does not exist: Terraform's backend fails, translated to one line."""
    env = base_env(tmp_path, **emulator.env(), **_settings_with_key(emulator))
    run = cli("plan", "releases/dev.yaml", env=env, cwd=scratch_repo, timeout=180)
    bucket = EXPLICIT_SETTINGS["SMGITOPS_STATE_BUCKET"]
    line = assert_one_line(run, f"state bucket {bucket} (SMGITOPS_STATE_BUCKET) does not exist", "run bootstrap/")
    print(f"\nstate bucket missing: {run.seconds:.1f} s: {line}")


@pytest.mark.terraform
def test_missing_lock_table_points_to_bootstrap(tmp_path: Path, scratch_repo: Path, emulator: Any) -> None:
    env = base_env(tmp_path, **emulator.env(), **_settings_with_key(emulator))
    _emulator_client(emulator, "s3").create_bucket(Bucket=EXPLICIT_SETTINGS["SMGITOPS_STATE_BUCKET"])
    run = cli("plan", "releases/dev.yaml", env=env, cwd=scratch_repo, timeout=180)
    table = EXPLICIT_SETTINGS["SMGITOPS_LOCK_TABLE"]
    line = assert_one_line(run, f"lock table {table} (DynamoDB) does not exist", "run bootstrap/")
    print(f"\nlock table missing: {run.seconds:.1f} s: {line}")


def _lineage(state_file: Path) -> str:
    lineage: str = json.loads(state_file.read_text(encoding="utf-8"))["lineage"]
    return lineage


def _empty_and_delete_bucket(s3: Any, bucket: str) -> None:
    versions = s3.list_object_versions(Bucket=bucket)
    for item in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=bucket)


@pytest.mark.terraform
def test_local_mode_bootstraps_an_emulator_that_lost_its_resources(tmp_path: Path, scratch_repo: Path) -> None:
    """The state bucket deleted, then the emulator restarted on the same port: every next command bootstraps it
    again over the same local bootstrap state (never deleted: that used to leave "AlreadyExists" forever)."""
    from smgitops.emulator.server import Emulator

    port = free_port()
    server = Emulator(port=port).start()
    try:
        server.admin.set_update_delay(0)
        env = base_env(tmp_path, **server.env())
        first = cli("plan", "releases/dev.yaml", env=env, cwd=scratch_repo, timeout=300)
        assert first.proc.returncode == 0, first.proc.stderr
        state_file = tmp_path / "local" / f"127.0.0.1-{port}" / "bootstrap" / "terraform.tfstate"
        lineage = _lineage(state_file)
        outputs = json.loads(state_file.read_text(encoding="utf-8"))["outputs"]
        s3 = _emulator_client(server, "s3")
        _empty_and_delete_bucket(s3, outputs["state_bucket"]["value"])

        again = cli("plan", "releases/dev.yaml", env=env, cwd=scratch_repo, timeout=300)
        assert again.proc.returncode == 0, again.proc.stderr
        s3.head_bucket(Bucket=outputs["state_bucket"]["value"])  # recreated
        assert _lineage(state_file) == lineage  # the same local state, applied again

        server.stop()
        server = Emulator(port=port).start()  # a fresh emulator on the same port: everything is gone
        server.admin.set_update_delay(0)
        restarted = cli("plan", "releases/dev.yaml", env=env, cwd=scratch_repo, timeout=300)
        assert restarted.proc.returncode == 0, restarted.proc.stderr
        # It held none of the resources: the old state is kept under another name, a new one describes the new
        # emulator's resources.
        kept_files = list(state_file.parent.parent.glob("bootstrap-*.emulator-lost.tfstate"))
        assert len(kept_files) == 1, restarted.proc.stderr
        kept = kept_files[0]
        assert _lineage(kept) == lineage and _lineage(state_file) != lineage
        assert str(kept) in restarted.proc.stderr
        s3 = _emulator_client(server, "s3")
        s3.head_bucket(Bucket=outputs["state_bucket"]["value"])
        print(f"\nre-bootstrap after a lost bucket: {again.seconds:.1f} s; after a restart: {restarted.seconds:.1f} s")
    finally:
        server.stop()


@pytest.mark.terraform
def test_terraform_backend_unreachable_is_translated_and_bounded(tmp_path: Path, scratch_repo: Path) -> None:
    """Terraform itself meeting a closed port (the check before it is bypassed here): its runner raises the one
    line, and the S3 backend gave up after local mode's ``max_retries``."""
    from smgitops.context import Context
    from smgitops.envfaults import TerraformFault
    from smgitops.localmode import LOCAL_MAX_RETRIES
    from smgitops.release import load_release
    from smgitops.settings import settings_from_env

    url = f"http://127.0.0.1:{free_port()}"
    key = "arn:aws:kms:us-east-1:123456789012:key/b5276034-98a6-4a37-9df1-62e8ea97a04b"
    env = base_env(tmp_path, AWS_ENDPOINT_URL=url, **{**EXPLICIT_SETTINGS, "SMGITOPS_KMS_KEY_ARN": key})
    release = load_release(scratch_repo / "releases" / "dev.yaml")
    ws = Context.for_release(release, env=env, settings=settings_from_env("us-east-1", env)).workspace(release)
    ws.directory.mkdir(parents=True, exist_ok=True)
    ws.copy.sync(override=ws.local_override)
    ws.backend_file.write_text(ws.backend_config(), encoding="utf-8")
    with pytest.raises(TerraformFault) as raised:
        ws.terraform.init(backend_config=[str(ws.backend_file)])
    assert raised.value.fault.kind == "unreachable"
    assert str(raised.value).startswith(f"terraform: cannot reach {url}: is the emulator running")
    assert "\n" not in str(raised.value)
    assert raised.value.exit_code == 2
    assert f"exceeded maximum number of attempts, {LOCAL_MAX_RETRIES}" in raised.value.result.stderr
