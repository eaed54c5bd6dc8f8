"""The bake clock: real time against AWS, virtual time against the emulator."""

from __future__ import annotations

import socket
from datetime import timedelta

from smgitops.clock import bake_clock, real_sleep, utc_now
from smgitops.emulator.server import Emulator


def test_against_aws_the_bake_window_is_real_time() -> None:
    clock, sleep, note = bake_clock({})
    assert clock is utc_now
    assert sleep is real_sleep
    assert note is None


def test_against_the_emulator_a_ten_minute_bake_passes_without_waiting(emulator: Emulator) -> None:
    clock, sleep, note = bake_clock(emulator.env())
    assert note is not None and "virtual time" in note
    start = clock()
    sleep(600)  # returns at once: nothing really waits
    moved = clock() - start
    assert timedelta(seconds=600) <= moved < timedelta(seconds=660)
    assert clock() >= utc_now() - timedelta(seconds=1)  # never behind real time


def test_an_endpoint_url_that_is_not_the_emulator_keeps_real_time() -> None:
    """AWS_ENDPOINT_URL also serves real AWS (VPC endpoints, proxies): a real bake must never be skipped there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    clock, sleep, note = bake_clock({"AWS_ENDPOINT_URL": f"https://127.0.0.1:{port}"})
    assert (clock, sleep, note) == (utc_now, real_sleep, None)
