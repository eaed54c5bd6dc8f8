"""Named snapshots of the emulator's whole AWS state (every moto backend in use, and the extension's own state).

``snapshot(name)`` deep-copies what moto holds now; ``restore(name)`` puts a fresh copy of it back, so the snapshot
can be restored any number of times. A test suite bootstraps an emulator once (``bootstrap/`` applied with real
Terraform, a few seconds), takes a snapshot, and restores it before each test instead of applying ``bootstrap/``
again. Restoring replaces everything: resources created since, S3 objects, DynamoDB items, endpoints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from smgitops.emulator.state import ExtensionState


@dataclass
class Snapshot:
    # (BackendDict, {account: AccountSpecificBackend}, its own attributes) as deep copies; a BackendDict may keep
    # state of its own beside the accounts (S3's bucket-name registry, ``bucket_accounts``)
    backends: list[tuple[Any, dict[str, Any], dict[str, Any]]]
    variant_models: dict[tuple[str, str, str], dict[str, str]]
    transition_delay: float
    seed: int


def _in_use() -> list[Any]:
    """moto's own list of the BackendDicts in use (the one its ``reset`` walks)."""
    from moto.core.base_backend import BackendDict

    instances: list[Any] = BackendDict._instances  # type: ignore[misc]
    return instances


# What a BackendDict is built with (the same before and after any request): not state.
_CONSTRUCTION = frozenset({"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"})


def _own_state(bd: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(bd).items() if k not in _CONSTRUCTION}


class Snapshots:
    def __init__(self) -> None:
        self._taken: dict[str, Snapshot] = {}

    def names(self) -> list[str]:
        return sorted(self._taken)

    def take(self, name: str, state: ExtensionState) -> None:
        from moto.core.base_backend import backend_lock

        with backend_lock, state.lock:
            backends = [(bd, copy.deepcopy(dict(bd)), copy.deepcopy(_own_state(bd))) for bd in list(_in_use())]
            self._taken[name] = Snapshot(
                backends=backends,
                variant_models=copy.deepcopy(state.variant_models),
                transition_delay=state.transition_delay,
                seed=state.seed,
            )

    def restore(self, name: str, state: ExtensionState) -> None:
        """Put the snapshot back (KeyError when there is none of that name)."""
        from moto.core.base_backend import backend_lock
        from moto.core.model_instances import reset_model_data

        snap = self._taken[name]
        with backend_lock, state.lock:
            kept = {id(bd) for bd, _, _ in snap.backends}
            for bd in list(_in_use()):
                if id(bd) not in kept:  # a service first used after the snapshot: back to empty
                    for account_backend in bd.values():
                        account_backend.reset()
                    bd.clear()
                    _in_use().remove(bd)
            for bd, accounts, own in snap.backends:
                fresh = copy.deepcopy(accounts)
                bd.clear()
                dict.update(bd, fresh)
                for attr, value in copy.deepcopy(own).items():
                    setattr(bd, attr, value)
                if bd not in _in_use():
                    _in_use().append(bd)
            reset_model_data()
            state.reset()
            state.variant_models.update(copy.deepcopy(snap.variant_models))
            state.transition_delay = snap.transition_delay
            state.reseed(snap.seed)
