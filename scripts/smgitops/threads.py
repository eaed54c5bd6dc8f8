"""A call run beside other work: in a thread of its own, started when the caller is about to wait on a process.

A command's Python (imports, AWS clients, requests) costs no wall time while Terraform runs: the caller starts the
call (:meth:`Beside.start`) just before it runs Terraform and collects it afterwards (:meth:`Beside.result`). Only
reads go beside: nothing that must happen before Terraform changes something, nothing Terraform's outcome decides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Beside(Generic[T]):
    """``call`` in a daemon thread named ``name`` once started; its return value or exception, collected once."""

    def __init__(self, call: Callable[[], T], name: str) -> None:
        self._call = call
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._value: list[T] = []
        self._error: list[BaseException] = []

    def _run(self) -> None:
        try:
            self._value.append(self._call())
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that collects it (result)
            self._error.append(exc)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def thread(self) -> threading.Thread:
        """The thread the call runs in once started."""
        return self._thread

    def start(self) -> Beside[T]:
        self._thread.start()
        return self

    def wait(self) -> None:
        """Wait for the call to end if it was started (a call never started stays so); raise nothing."""
        if self._thread.ident is not None:
            self._thread.join()

    @property
    def failed(self) -> bool:
        """Whether the call raised (so far)."""
        return bool(self._error)

    def result(self) -> T:
        """What the call returned, waiting for it (run here if it was never started); what it raised is raised."""
        if self.started:
            self._thread.join()
        elif not (self._value or self._error):
            self._run()
        if self._error:
            raise self._error[0]
        return self._value[0]
