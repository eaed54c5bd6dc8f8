"""The emulator imports the serving libraries ahead of the first invocation when asked (admin warm-inference)."""

from __future__ import annotations

import subprocess
import sys

from smgitops.emulator.server import Emulator

# In a fresh interpreter: this test process has long imported scikit-learn through other tests.
WARM_IN_A_FRESH_PROCESS = """
import sys
from smgitops.emulator.invoke import Invoker
from smgitops.emulator.state import ExtensionState
from smgitops.estimators import ALLOWED_ESTIMATORS

wanted = {"numpy", "joblib", *(dotted.rpartition(".")[0] for dotted in ALLOWED_ESTIMATORS)}
assert not wanted & set(sys.modules), sorted(wanted & set(sys.modules))
invoker = Invoker(ExtensionState())
assert invoker.warm() is True
assert invoker.warm() is False  # already warming: one import thread
assert invoker._warming is not None
invoker._warming.join(timeout=120)
missing = wanted - set(sys.modules)
assert not missing, sorted(missing)
print("warmed", len(wanted))
"""


def test_warming_imports_every_estimator_module_once() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WARM_IN_A_FRESH_PROCESS], capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("warmed ")


def test_the_admin_call_starts_the_warming_once() -> None:
    with Emulator() as emulator:
        assert emulator.admin.warm_inference() is True
        assert emulator.admin.warm_inference() is False
