"""The bake clock: real time against AWS, virtual time against the emulator."""

from __future__ import annotations

from datetime import timedelta

from smgitops.clock import bake_clock, real_sleep, utc_now


def test_against_aws_the_bake_window_is_real_time() -> None:
    clock, sleep, note = bake_clock({})
    assert clock is utc_now
    assert sleep is real_sleep
    assert note is None


def test_in_local_mode_a_ten_minute_bake_passes_without_waiting() -> None:
    clock, sleep, note = bake_clock({"AWS_ENDPOINT_URL": "https://127.0.0.1:4566"})
    assert note is not None and "virtual time" in note
    start = clock()
    sleep(600)  # returns at once: nothing really waits
    moved = clock() - start
    assert timedelta(seconds=600) <= moved < timedelta(seconds=660)
    assert clock() >= utc_now() - timedelta(seconds=1)  # never behind real time
