"""The emulator imports the serving libraries ahead of the first invocation when asked (admin warm-inference)."""

from __future__ import annotations

import sys

from smgitops.emulator.invoke import Invoker
from smgitops.emulator.server import Emulator
from smgitops.emulator.state import ExtensionState
from smgitops.estimators import ALLOWED_ESTIMATORS


def test_warming_imports_every_estimator_module_once() -> None:
    invoker = Invoker(ExtensionState())
    assert invoker.warm() is True
    assert invoker.warm() is False  # already warming: one import thread
    assert invoker._warming is not None
    invoker._warming.join(timeout=120)
    for dotted in ALLOWED_ESTIMATORS:
        assert dotted.rpartition(".")[0] in sys.modules
    assert "joblib" in sys.modules and "numpy" in sys.modules


def test_the_admin_call_starts_the_warming_once() -> None:
    with Emulator() as emulator:
        assert emulator.admin.warm_inference() is True
        assert emulator.admin.warm_inference() is False
