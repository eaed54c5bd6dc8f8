"""smgitops.files: the one file digest and the one atomic writer every module uses."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from smgitops.files import sha256_file, write_atomic


def test_sha256_file_streams_files_larger_than_a_chunk(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "model.tar.gz"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_write_atomic_creates_directories_and_writes_text_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "out" / "deep" / "plan.json"
    write_atomic(path, "weights → 90 %\n")
    assert path.read_bytes() == "weights → 90 %\n".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["plan.json"]  # no temporary file left


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        new_file = tmp_path / "new.json"
        write_atomic(new_file, b"{}")
        assert stat.S_IMODE(new_file.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    kept = tmp_path / "releases.yaml"
    kept.write_text("a: 1\n")
    kept.chmod(0o600)
    write_atomic(kept, "a: 2\n")
    assert kept.read_text() == "a: 2\n" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    write_atomic(kept, "a: 3\n", mode=0o644)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o644


def test_a_failed_replace_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.mkdir()  # a directory where the file should go: the final rename fails
    (target / "keep").write_text("x")
    with pytest.raises(OSError) as caught:
        write_atomic(target, "{}\n")
    assert caught.value.filename is not None
    assert (target / "keep").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model.tar.gz"
    target.write_bytes(b"old archive")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as caught:
        write_atomic(target, b"new archive")
    assert caught.value.filename == str(target)
    assert target.read_bytes() == b"old archive"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tar.gz"]
