"""The watch on a running Terraform command's state lock (``smgitops.terraform._LostLockWatch``), look by look.

The lost answer itself, with real Terraform and the emulator cutting the connection, is in ``test_recovery.py``;
here the watch meets each shape of lock a look can find, from a scripted reader, and must release only the half its
own command left."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from smgitops import terraform
from smgitops.terraform import LockInfo, local_lock_owner

BEGAN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _lock(lock_id: str = "a1", *, who: str | None = None, created: datetime | None = None) -> LockInfo:
    when = created or BEGAN + timedelta(seconds=1)
    return LockInfo(
        id=lock_id,
        operation="plan",
        who=who if who is not None else local_lock_owner(),
        created=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )


class Script:
    """A HalfLock answering each look from a list (then None), recording releases; ``done`` is set after the
    last scripted look."""

    readable = True

    def __init__(self, looks: list[tuple[str, LockInfo] | None | Exception]) -> None:
        self.looks = list(looks)
        self.asked = 0
        self.released: list[tuple[str, str]] = []
        self.done = threading.Event()

    def read(self) -> tuple[str, LockInfo] | None:
        self.asked += 1
        if not self.looks:
            self.done.set()
            return None
        look = self.looks.pop(0)
        if isinstance(look, Exception):
            self.done.set()
            raise look
        return look

    def release(self, half: str, lock: LockInfo) -> bool:
        self.released.append((half, lock.id))
        return True


def _watch(script: Script) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    watch = terraform._LostLockWatch(script, BEGAN, notes.append, "plan")
    assert script.done.wait(10)
    watch.stop()
    return watch.released, notes


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terraform, "HALF_LOCK_SECONDS", 0.001)


@pytest.mark.parametrize(("half", "where"), [("dynamodb", "DynamoDB item"), ("s3", "S3 lock file")])
def test_its_own_half_seen_alone_on_every_look_is_released_once(half: str, where: str) -> None:
    own = (half, _lock())
    script = Script([own] * terraform.HALF_LOCK_LOOKS)
    released, notes = _watch(script)
    assert script.released == [(half, "a1")] and released == ["a1"]
    assert len(notes) == 1 and f"state lock's {where} alone (lock ID a1" in notes[0]


@pytest.mark.parametrize(
    "looks",
    [
        pytest.param([("s3", _lock())] * (terraform.HALF_LOCK_LOOKS - 1), id="one-look-short"),
        pytest.param(
            [("s3", _lock()), None] * terraform.HALF_LOCK_LOOKS, id="whole-between-looks"
        ),  # a lock being taken or released: the half is seen alone, then the lock is whole or free
        pytest.param(
            [("dynamodb", _lock("a1")), ("dynamodb", _lock("b2"))] * terraform.HALF_LOCK_LOOKS, id="other-ids"
        ),
        pytest.param([("dynamodb", _lock()), ("s3", _lock())] * terraform.HALF_LOCK_LOOKS, id="halves-alternate"),
        pytest.param([("dynamodb", _lock(who="ci@runner-7"))] * 10, id="another-host"),
        pytest.param(
            [("dynamodb", _lock(created=BEGAN - timedelta(minutes=5)))] * 10, id="older-than-the-command"
        ),  # a dead run's half: `smgitops unlock` is for that, never this watch
    ],
)
def test_what_is_not_its_own_lost_half_is_never_released(looks: list[tuple[str, LockInfo] | None]) -> None:
    script = Script(looks)
    released, notes = _watch(script)
    assert script.asked > len(looks)  # every scripted look was made
    assert script.released == [] and released == [] and notes == []


def test_a_lock_that_cannot_be_read_ends_the_watch() -> None:
    script = Script([("dynamodb", _lock()), OSError("connection refused")])
    released, _ = _watch(script)
    asked = script.asked
    assert released == [] and script.released == []
    threading.Event().wait(0.05)
    assert script.asked == asked == 2  # no look after the error
