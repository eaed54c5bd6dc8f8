"""A call beside other work (smgitops.threads.Beside): its value or its error reaches the thread that collects it,
it runs only once, and a call never started is run by result() but never by wait()."""

from __future__ import annotations

import threading

import pytest

from smgitops.threads import Beside


def test_the_value_and_the_error_reach_the_collecting_thread() -> None:
    names: list[str] = []

    def call() -> int:
        names.append(threading.current_thread().name)
        return 42

    beside = Beside(call, "the-call").start()
    assert beside.started and beside.thread.name == "the-call"
    assert beside.result() == 42 and beside.result() == 42 and not beside.failed
    assert names == ["the-call"]  # in its own thread, once

    def fails() -> int:
        raise KeyError("gone")

    failing = Beside(fails, "the-failing-call").start()
    failing.wait()
    assert failing.failed
    with pytest.raises(KeyError, match="gone"):
        failing.result()


def test_a_call_never_started_is_run_by_result_only() -> None:
    calls: list[str] = []
    beside = Beside(lambda: calls.append(threading.current_thread().name) or len(calls), "never-started")
    beside.wait()
    assert calls == [] and not beside.failed and not beside.started
    assert beside.result() == 1 and beside.result() == 1
    assert calls == [threading.current_thread().name]  # here, once
