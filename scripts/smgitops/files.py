"""The package's one file digest and its one atomic writer.

:func:`write_atomic` never leaves a half-written file where a reader looks: the bytes go to a temporary file in the
same directory, are flushed to disk, and replace the target in one rename (a crash or a full disk leaves the old
file or none, and no temporary file behind). Archives, release files rewritten by ``train --write``, plan
summaries, reports, the emulator's certificate and the local bootstrap's cached outputs all go through it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (archives can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically, creating its directory. ``mode`` (say 0o600 for a
    key: the temporary file has it from the start) defaults to the replaced file's, or the umask's for a new one."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = None  # a new file: 0o666 less the umask, as open() would make it
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # exactly, whatever the umask
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write() names no file; the user needs to know which (disk full)
        raise
