"""The extension's own state: the emulator clock, pending endpoint transitions, fault injection.

Everything here lives in the emulator process beside moto's backends and is cleared by the admin ``reset``.
Endpoint transitions (``Creating``/``Updating`` -> ``InService``) are due at a time on the emulator clock and are
applied lazily, before each request is handled, so no background thread races moto. The clock is the monotonic
clock plus an offset the admin API can advance, so tests move time forward instead of sleeping.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TRANSITION_DELAY = 0.0
"""Seconds an endpoint spends ``Creating``/``Updating``. By default the transition completes before the next request
is handled: provider 3.39 waits with aws-sdk-go's ``WaitUntilEndpointInService``, which polls every 30 s, so any
delay that outlives the first poll costs a Terraform apply 30 s. Tests and the demo set a delay to observe it."""


@dataclass
class Fault:
    error_rate: float = 0.0
    latency_ms: int = 0


@dataclass
class Transition:
    """A pending status change of an endpoint, applied once the emulator clock reaches ``due``."""

    account_id: str
    region: str
    endpoint: str
    due: float
    kind: str  # "create" | "update"
    new_config: str | None = None
    failure_reason: str | None = None
    started: Any = None  # datetime (UTC) the transition began: DescribeEndpoint's PendingDeploymentSummary


@dataclass
class ExtensionState:
    clock: Callable[[], float] = time.monotonic
    offset: float = 0.0
    transition_delay: float = DEFAULT_TRANSITION_DELAY
    transitions: dict[tuple[str, str, str], Transition] = field(default_factory=dict)
    fail_next_update: dict[str, str] = field(default_factory=dict)  # endpoint name -> failure reason
    faults: dict[tuple[str, str], Fault] = field(default_factory=dict)  # (endpoint, variant) -> fault
    # Requests ("DynamoDB_20120810.PutItem", "s3:PUT <key suffix>") whose next occurrence is served and then left
    # without an answer (the connection is cut): how a lost response looks to a client that retries.
    drop_next_response: list[str] = field(default_factory=list)
    # (account, region, endpoint) -> {variant: model name} of the configuration the endpoint serves
    variant_models: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    seed: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    lock: threading.RLock = field(default_factory=threading.RLock)

    def now(self) -> float:
        return self.clock() + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds

    def reseed(self, seed: int) -> None:
        with self.lock:
            self.seed = seed
            self.rng = random.Random(seed)

    def reset(self) -> None:
        with self.lock:
            self.offset = 0.0
            self.transition_delay = DEFAULT_TRANSITION_DELAY
            self.transitions.clear()
            self.fail_next_update.clear()
            self.faults.clear()
            self.drop_next_response.clear()
            self.variant_models.clear()
            self.seed = 0
            self.rng = random.Random(0)

    def due_transitions(self) -> list[Transition]:
        """Remove and return the transitions whose time has come, oldest first."""
        with self.lock:
            now = self.now()
            due = sorted((t for t in self.transitions.values() if t.due <= now), key=lambda t: t.due)
            for t in due:
                del self.transitions[(t.account_id, t.region, t.endpoint)]
            return due
