"""Client of the emulator's admin API (HTTP routes under ``/_smgitops/`` on the emulator itself).

Tests and the demo use it to reset state, inject faults per variant, make the next endpoint update fail, control
how long endpoints stay ``Creating``/``Updating``, and move the emulator clock forward instead of sleeping.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ADMIN_PREFIX = "/_smgitops/"


class AdminError(RuntimeError):
    pass


class AdminClient:
    def __init__(self, url: str, ca_bundle: str | Path | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{ADMIN_PREFIX}{route}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                payload: dict[str, Any] = json.loads(response.read() or b"{}")
                return payload
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise AdminError(f"emulator admin {method} {route} failed: HTTP {exc.code}: {detail}") from exc

    def health(self) -> bool:
        return bool(self._call("GET", "health").get("ok"))

    def missing(
        self, region: str, *, account: str = "", buckets: list[str], tables: list[str], kms_keys: list[str]
    ) -> list[str]:
        """Which of these buckets, DynamoDB tables (in ``account``, ``region``) and KMS keys (ARNs) the emulator
        does not hold."""
        body = {"account": account, "region": region, "buckets": buckets, "tables": tables, "kms_keys": kms_keys}
        return [str(name) for name in self._call("POST", "missing", body)["missing"]]

    def stats(self) -> dict[str, Any]:
        """Counters of the extension: ``artifact_loads`` (model.tar.gz extracted and model_fn called),
        ``aws_requests`` (AWS API requests served since the emulator started, admin calls excluded), ..."""
        return self._call("GET", "stats")

    def busy(self, since: float = 0.0) -> list[tuple[float, float]]:
        """When AWS requests were being served (``time.time()`` intervals, overlapping requests merged) that ended
        at or after ``since``: time a client spent waiting on AWS."""
        found = self._call("GET", f"busy?since={since!r}")["intervals"]
        return [(float(a), float(b)) for a, b in found]

    def warm_inference(self) -> bool:
        """Have the emulator import the serving libraries (scikit-learn, joblib, numpy) in the background now, so
        that the first invocation does not wait for them; False when they are already warming or warm."""
        return bool(self._call("POST", "warm-inference").get("warming"))

    def reset(self) -> None:
        """Forget everything: moto's backends, the extension's state (faults, delays, clock, caches), the IAM log."""
        self._call("POST", "reset")

    def inject_fault(self, endpoint: str, variant: str, error_rate: float = 0.0, latency_ms: int = 0) -> None:
        """Answer ``error_rate`` of the variant's invocations with a 500 and add ``latency_ms`` to each."""
        self._call(
            "PUT",
            "faults",
            {"endpoint": endpoint, "variant": variant, "error_rate": error_rate, "latency_ms": latency_ms},
        )

    def faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = self._call("GET", "faults")["faults"]
        return faults

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def fail_next_update(self, endpoint: str, reason: str) -> None:
        """The next UpdateEndpoint of ``endpoint`` ends ``InService`` on the old configuration with this reason."""
        self._call("POST", "fail-next-update", {"endpoint": endpoint, "reason": reason})

    def snapshot(self, name: str) -> None:
        """Keep a copy of the emulator's whole AWS state under ``name`` (see ``restore``)."""
        self._call("POST", "snapshot", {"name": name})

    def restore(self, name: str) -> None:
        """Put back the state of snapshot ``name``: everything created since is gone, faults and delays reset."""
        self._call("POST", "restore", {"name": name})

    def drop_next_response(self, request: str) -> None:
        """Serve the next request matching ``request`` and then cut the connection without an answer: the change
        is made, the client sees a lost response and retries. ``request`` is a JSON API target
        (``DynamoDB_20120810.PutItem``) or an S3 method and key suffix (``s3:PUT .tflock``)."""
        self._call("POST", "drop-next-response", {"request": request})

    def set_update_delay(self, seconds: float) -> None:
        """How long endpoints stay ``Creating``/``Updating`` (emulator-clock seconds)."""
        self._call("PUT", "update-delay", {"seconds": seconds})

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator clock forward; due endpoint transitions complete at once."""
        self._call("POST", "advance", {"seconds": seconds})

    def start_iam_log(self) -> None:
        """Record every AWS request from now on (a new, empty log): the IAM calls each needs (``iamlog``)."""
        self._call("POST", "iam-log/start")

    def stop_iam_log(self) -> None:
        self._call("POST", "iam-log/stop")

    def iam_log(self, since: int = 0) -> list[dict[str, Any]]:
        """The recorded requests from sequence number ``since`` on, oldest first."""
        entries: list[dict[str, Any]] = self._call("GET", f"iam-log?since={int(since)}")["entries"]
        return entries

    def seed(self, seed: int) -> None:
        """Reseed the generator that routes invocations by variant weight and draws injected errors."""
        self._call("PUT", "seed", {"seed": seed})
