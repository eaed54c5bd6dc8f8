"""The emulator's WSGI application: moto's dispatcher behind a thin layer of smgitops routes.

Requests under ``/_smgitops/`` are admin calls (reset, fault injection, update control, clock, the IAM request
log, warming the serving libraries); everything else is recorded while a recording is on (``iamlog``: which key
asked for which IAM action on which resource) and goes to moto, after due endpoint transitions are applied and the
request's facts (scheme, headers) are made available to the bucket-policy evaluation. sagemaker-runtime invocations
are served here too (see ``invoke``).
"""

from __future__ import annotations

import collections
import io
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from smgitops.emulator import extensions, iamlog, policy, snapshot
from smgitops.emulator.state import ExtensionState, Fault

ADMIN_PREFIX = "/_smgitops/"
log = logging.getLogger("smgitops.emulator")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _json_response(start_response: StartResponse, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload, sort_keys=True).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("admin request body must be a JSON object")
    return value


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


class BusyTime:
    """When the emulator was serving AWS requests: wall-clock intervals (``time.time()``), overlapping requests
    merged into one, the most recent :data:`MAX_INTERVALS` kept. A benchmark subtracts them from a command's wall
    time, as it does the Terraform processes': time spent waiting on AWS is not the command's own."""

    MAX_INTERVALS = 20_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = 0.0
        self.intervals: collections.deque[tuple[float, float]] = collections.deque(maxlen=self.MAX_INTERVALS)

    def begin(self) -> None:
        with self._lock:
            if self._in_flight == 0:
                self._since = time.time()
            self._in_flight += 1

    def end(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.intervals.append((self._since, time.time()))

    def since(self, start: float) -> list[list[float]]:
        with self._lock:
            return [[a, b] for a, b in self.intervals if b >= start]


class RetryWatch:
    """Which AWS requests a client sent again, and what became of the attempt before.

    The AWS SDKs (botocore, Go's v2 SDK in Terraform and its provider) mark each request with
    ``amz-sdk-invocation-id`` (one per operation, the same on its retries) and ``amz-sdk-request: attempt=N;
    max=M``. A retry of a request the emulator had answered is how a lost answer shows from the server's side:
    for a conditional write (Terraform's lock, a PutItem with ``attribute_not_exists``) the retry finds its own
    change and fails. Each retry is logged with the earlier attempt's fate and the client ports of both (to find
    their connections in a packet capture), and counted (admin ``stats``)."""

    MAX_KEPT = 4096
    SLOW_SECONDS = 5.0
    BEING_SERVED = "being served"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # invocation -> (when its latest attempt began, what became of it, the client port it came from)
        self._attempts: collections.OrderedDict[str, tuple[float, str, str]] = collections.OrderedDict()
        self.retried = 0
        self.retried_after_answer = 0

    def seen(self, environ: dict[str, Any], start_response: StartResponse) -> StartResponse:
        """Note this request (logging it when it is a retry); the returned ``start_response`` notes its answer."""
        invocation = str(environ.get("HTTP_AMZ_SDK_INVOCATION_ID", ""))
        if not invocation:
            return start_response
        attempt = _attempt(str(environ.get("HTTP_AMZ_SDK_REQUEST", "")))
        began = time.time()
        port = str(environ.get("REMOTE_PORT", "-"))
        with self._lock:
            earlier = self._attempts.pop(invocation, None)
            self._attempts[invocation] = (began, self.BEING_SERVED, port)
            while len(self._attempts) > self.MAX_KEPT:
                self._attempts.popitem(last=False)
            if attempt > 1:
                self.retried += 1
                if earlier is not None and earlier[1] != self.BEING_SERVED:
                    self.retried_after_answer += 1
        if attempt > 1:
            fate = (
                "never reached the emulator"
                if earlier is None
                else f"was {earlier[1]} ({began - earlier[0]:.3f} s before this one began, from port {earlier[2]})"
            )
            log.warning(
                "client retried %s (attempt %d from port %s, invocation %s): the attempt before %s",
                _describe(environ),
                attempt,
                port,
                invocation,
                fate,
            )

        def noting_start_response(status: str, *args: Any, **kwargs: Any) -> Any:
            took = time.time() - began
            self._set(invocation, f"answered {status.split(' ', 1)[0]} after {took:.3f} s")
            if took >= self.SLOW_SECONDS:  # long enough for a client's timeout to give up and retry
                log.warning(
                    "slow answer: %s took %.1f s (attempt %d, invocation %s)",
                    _describe(environ),
                    took,
                    attempt,
                    invocation,
                )
            return start_response(status, *args, **kwargs)

        return noting_start_response

    def note(self, environ: dict[str, Any], fate: str) -> None:
        """Set what became of this request (when its answer is not given through ``start_response``)."""
        self._set(str(environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")), fate)

    def _set(self, invocation: str, fate: str) -> None:
        with self._lock:
            if invocation in self._attempts:
                began, _, port = self._attempts[invocation]
                self._attempts[invocation] = (began, fate, port)


def _describe(environ: dict[str, Any]) -> str:
    """``METHOD /path`` and the JSON API target, if any: the request as the log names it."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    what = f"{environ.get('REQUEST_METHOD', '-')} {environ.get('PATH_INFO', '-')}"
    return f"{what} {target}" if target else what


def _attempt(header: str) -> int:
    """N of ``attempt=N; max=M`` (1 when absent or unreadable)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "attempt" and value.isdigit():
            return int(value)
    return 1


class EmulatorApp:
    def __init__(self, state: ExtensionState, moto_app: WSGIApp) -> None:
        self.state = state
        self.moto_app = moto_app
        self.invoker: Any = None  # set by server.build_app once the runtime is wired
        self.aws_requests = 0  # AWS API requests served since start (admin calls excluded); never reset
        self.recorder = iamlog.Recorder()
        self._world: iamlog.MotoWorld | None = None
        self.snapshots = snapshot.Snapshots()
        self.busy = BusyTime()
        self.retries = RetryWatch()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(ADMIN_PREFIX):
            return self.admin(path[len(ADMIN_PREFIX) :], environ, start_response)
        self.busy.begin()
        try:
            return self._serve(environ, start_response)
        finally:
            self.busy.end()

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with self.state.lock:
            self.aws_requests += 1
        start_response = self.retries.seen(environ, start_response)
        extensions.settle(self.state)
        if self.recorder.recording:
            start_response = self._record(environ, start_response)
        if self.invoker is not None:
            handled: Iterable[bytes] | None = self.invoker.maybe_handle(environ, start_response)
            if handled is not None:
                return handled
        facts = policy.RequestFacts(
            secure_transport=environ.get("wsgi.url_scheme") == "https", headers=request_headers(environ)
        )
        dropped = self._take_dropped(environ)
        try:
            with extensions.request_facts(facts):
                if dropped:
                    return self._serve_then_cut(environ)
                response: Iterable[bytes] = self.moto_app(environ, start_response)
                return response
        except policy.UnsupportedCondition as exc:
            log.error("bucket policy not evaluated: %s", exc)
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>EmulatorUnsupportedCondition</Code>'
                f"<Message>{_xml_escape(str(exc))}</Message></Error>"
            ).encode()
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]

    # -- lost responses ---------------------------------------------------------------------------------------

    def _take_dropped(self, environ: dict[str, Any]) -> bool:
        """Whether this request is the next one whose answer is to be lost (and forget it if so)."""
        if not self.state.drop_next_response:
            return False
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        method, path = str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", ""))

        def matches(wanted: str) -> bool:
            if not wanted.startswith("s3:"):
                return wanted == target
            wanted_method, _, suffix = wanted[3:].partition(" ")
            return not target and method == wanted_method and path.endswith(suffix)

        with self.state.lock:
            for i, wanted in enumerate(self.state.drop_next_response):
                if matches(wanted):
                    del self.state.drop_next_response[i]
                    return True
        return False

    def _serve_then_cut(self, environ: dict[str, Any]) -> Iterable[bytes]:
        """Let moto handle the request (its change is made), discard the answer and cut the connection."""

        def discard(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], object]:
            return lambda _data: None

        for _chunk in self.moto_app(environ, discard):
            pass
        self.retries.note(environ, "served, its answer dropped on purpose")
        conn = environ.get("werkzeug.socket")
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        log.info("answer of %s %s dropped on purpose", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        raise ConnectionResetError("response dropped on purpose (admin drop-next-response)")

    # -- the IAM request log ----------------------------------------------------------------------------------

    def _record(self, environ: dict[str, Any], start_response: StartResponse) -> StartResponse:
        """Log the request's IAM calls (before moto sees it: resource tags as they are when AWS would decide)."""
        headers = request_headers(environ)
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        body = b""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        s3_upload = "/s3/" in headers.get("authorization", "") and environ.get("REQUEST_METHOD") == "PUT"
        if length and not s3_upload:  # bodies moto needs again are put back; S3 uploads are never read here
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        request = iamlog.Request(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            path=str(environ.get("PATH_INFO", "")),
            query=query,
            headers=headers,
            body=body,
            secure=environ.get("wsgi.url_scheme") == "https",
        )
        if self._world is None:
            self._world = iamlog.MotoWorld()
        entry = self.recorder.add(request, self._world)

        def recording_start_response(status: str, *args: Any, **kwargs: Any) -> Any:
            self.recorder.answered(entry, int(status.split(" ", 1)[0]))
            return start_response(status, *args, **kwargs)

        return recording_start_response

    # -- admin -----------------------------------------------------------------------------------------------

    def admin(self, route: str, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if method in ("POST", "PUT"):
                body = _read_json(environ)
            else:
                body = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
            result = self._admin(route.strip("/"), method, body)
        except (KeyError, TypeError, ValueError) as exc:
            return _json_response(start_response, 400, {"error": f"bad admin request: {exc}"})
        if result is None:
            return _json_response(start_response, 404, {"error": f"no admin route {method} {ADMIN_PREFIX}{route}"})
        return _json_response(start_response, 200, result)

    def _admin(self, route: str, method: str, body: dict[str, Any]) -> dict[str, Any] | None:
        state = self.state
        if route == "health" and method == "GET":
            return {"ok": True}
        if route == "stats" and method == "GET":
            loads = self.invoker.cache.loads if self.invoker is not None else 0
            with state.lock:
                pending = len(state.transitions)
            return {
                "artifact_loads": loads,
                "aws_requests": self.aws_requests,
                "pending_transitions": pending,
                "responses_to_drop": len(state.drop_next_response),
                "retried": self.retries.retried,
                "retried_after_answer": self.retries.retried_after_answer,
                "transition_delay": state.transition_delay,
                "seed": state.seed,
            }
        if route == "missing" and method == "POST":
            return {"missing": _missing(body)}
        if route == "busy" and method == "GET":
            # when AWS requests were being served, since ``since`` (seconds since the epoch, default all kept)
            return {"intervals": self.busy.since(float(body.get("since", 0.0)))}
        if route == "reset" and method == "POST":
            from moto.moto_api import _internal  # noqa: F401  (registers the moto_api backend)
            from moto.moto_api._internal.models import moto_api_backend

            with state.lock:
                moto_api_backend.reset()
                state.reset()
                self.recorder.reset()
                if self.invoker is not None:
                    self.invoker.reset()
            return {"reset": True}
        if route == "faults" and method == "PUT":
            error_rate = float(body.get("error_rate", 0.0))
            latency_ms = int(body.get("latency_ms", 0))
            if not 0.0 <= error_rate <= 1.0 or latency_ms < 0:
                raise ValueError("error_rate must be within [0, 1] and latency_ms >= 0")
            with state.lock:
                state.faults[(str(body["endpoint"]), str(body["variant"]))] = Fault(error_rate, latency_ms)
            return {"faults": self._faults()}
        if route == "faults" and method == "DELETE":
            with state.lock:
                state.faults.clear()
            return {"faults": []}
        if route == "faults" and method == "GET":
            return {"faults": self._faults()}
        if route == "fail-next-update" and method == "POST":
            with state.lock:
                state.fail_next_update[str(body["endpoint"])] = str(body["reason"])
            return {"fail_next_update": dict(state.fail_next_update)}
        if route == "snapshot" and method == "POST":
            self.snapshots.take(str(body["name"]), state)
            return {"snapshots": self.snapshots.names()}
        if route == "restore" and method == "POST":
            name = str(body["name"])
            if name not in self.snapshots.names():
                raise ValueError(f"no snapshot named {name!r} (taken: {', '.join(self.snapshots.names()) or 'none'})")
            self.snapshots.restore(name, state)
            self.recorder.reset()
            if self.invoker is not None:
                self.invoker.reset()
            return {"restored": name}
        if route == "drop-next-response" and method == "POST":
            request = str(body["request"])
            if not request or (request.startswith("s3:") and " " not in request):
                raise ValueError("request must be a JSON API target or 's3:METHOD key-suffix'")
            with state.lock:
                state.drop_next_response.append(request)
            return {"drop_next_response": list(state.drop_next_response)}
        if route == "update-delay" and method == "PUT":
            seconds = float(body["seconds"])
            if seconds < 0:
                raise ValueError("seconds must be >= 0")
            with state.lock:
                state.transition_delay = seconds
            return {"seconds": seconds}
        if route == "advance" and method == "POST":
            seconds = float(body["seconds"])
            if seconds < 0:
                raise ValueError("seconds must be >= 0")
            state.advance(seconds)
            extensions.settle(state)
            return {"now": state.now()}
        if route == "iam-log/start" and method == "POST":
            self.recorder.start()
            return {"recording": True}
        if route == "iam-log/stop" and method == "POST":
            self.recorder.stop()
            return {"recording": False}
        if route == "iam-log" and method == "GET":
            return {"recording": self.recorder.recording, "entries": self.recorder.since(int(body.get("since", 0)))}
        if route == "warm-inference" and method == "POST":
            started = self.invoker.warm() if self.invoker is not None else False
            return {"warming": started}
        if route == "seed" and method == "PUT":
            state.reseed(int(body["seed"]))
            return {"seed": state.seed}
        return None

    def _faults(self) -> list[dict[str, Any]]:
        return [
            {"endpoint": e, "variant": v, "error_rate": f.error_rate, "latency_ms": f.latency_ms}
            for (e, v), f in sorted(self.state.faults.items())
        ]


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _missing(body: dict[str, Any]) -> list[str]:
    """Which of the named buckets, DynamoDB tables and KMS keys (ARNs) the emulator does not hold, in that order:
    local mode's check that the emulator still has bootstrap/'s resources, one request instead of four AWS calls
    (and three SDK clients) in every command. ``account`` and ``region`` say where the buckets and tables are."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.kms.models import kms_backends
    from moto.s3.models import s3_backends

    account, region = str(body.get("account") or DEFAULT_ACCOUNT_ID), str(body["region"])
    missing = [b for b in map(str, body.get("buckets", [])) if b not in s3_backends[account]["aws"].buckets]
    tables = dynamodb_backends[account][region].tables
    missing += [t for t in map(str, body.get("tables", [])) if t not in tables]
    for arn in map(str, body.get("kms_keys", [])):
        parts = arn.split(":")
        if len(parts) != 6 or not parts[5].startswith("key/"):
            raise ValueError(f"{arn!r} is not a KMS key ARN")
        if parts[5][len("key/") :] not in kms_backends[parts[4]][parts[3]].keys:
            missing.append(arn)
    return missing
