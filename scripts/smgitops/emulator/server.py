"""The local AWS emulator server: moto's server with smgitops' extensions, over HTTPS.

Two ways to run it:

* ``smgitops emulator [--port P] [--no-tls]`` (:mod:`smgitops.commands.emulator`): in the foreground, printing the
  URL and the ``export`` lines that point boto3 and Terraform at it; Ctrl-C stops it.
* ``Emulator(...)``: a child process (``python -m smgitops.commands.emulator``, the same command) for tests, the
  demo and scripts. A child keeps moto's process-global backends apart from any ``mock_aws()`` in the caller's
  process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from traceback import format_exc
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from smgitops import paths
from smgitops.emulator import require_local_extra

if TYPE_CHECKING:
    from smgitops.emulator.admin import AdminClient

log = logging.getLogger("smgitops.emulator")

DUMMY_CREDENTIAL = "testing"
DEFAULT_REGION = "us-east-1"
START_TIMEOUT = 60.0

# Services whose moto apps and service models are made ahead of their first requests (build_app).
_WARM_SERVICES = ("s3", "sagemaker", "sagemaker-runtime", "cloudwatch", "dynamodb", "iam", "sts", "kms")


# Hosts whose backend the dispatcher remembers (a run sees a dozen: one per service and region).
_BACKEND_CACHE_SIZE = 256


def memoizing_dispatcher() -> Any:
    """moto's host dispatcher, remembering which backend serves a host.

    moto 5.2.5 answers "which backend serves this host?" afresh on every request: it lists moto's package
    directory (``backends.list_of_moto_modules``, a directory scan and one ``stat`` per entry) and then tries the
    URL patterns of every service in turn, several milliseconds per request. The answer depends only on the host
    and on moto's installed files, which do not change while the server runs, so it is kept per host.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class MemoizingDispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backend_for_host: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            # called under the dispatcher's own lock (get_application), so the dict needs none of its own
            try:
                return self._backend_for_host[host]
            except KeyError:
                pass
            backend = super().get_backend_for_host(host)
            if len(self._backend_for_host) < _BACKEND_CACHE_SIZE:
                self._backend_for_host[host] = backend
            return backend

    return MemoizingDispatcher()


def build_app(tls: bool) -> Any:
    """moto's dispatcher wrapped by the smgitops layer, with the extensions installed in this process."""
    from moto.moto_server.werkzeug_app import create_backend_app

    from smgitops.emulator import extensions
    from smgitops.emulator.app import EmulatorApp
    from smgitops.emulator.state import ExtensionState

    state = extensions.install(ExtensionState())
    dispatcher = memoizing_dispatcher()
    from smgitops.emulator.invoke import Invoker

    app = EmulatorApp(state, dispatcher)
    app.invoker = Invoker(state)

    def warm() -> None:
        """The apps and botocore service models of the services the pipeline uses, made in the background while
        the server starts and serves its first requests (0.3 s and 0.6 s of CPU), instead of delaying its start or
        each service's first request. A request that comes first makes its service's app itself, as moto does; the
        dispatcher's lock keeps one app per service."""
        for service in _WARM_SERVICES:
            with dispatcher.lock:
                if service in dispatcher.app_instances:
                    continue
                try:
                    dispatcher.app_instances[service] = create_backend_app(service)  # type: ignore[arg-type]
                except Exception as exc:  # pragma: no cover - a service moto does not know: built on first use
                    log.debug("app of %s not built ahead: %s", service, exc)
        _load_service_models()

    threading.Thread(target=warm, daemon=True, name="warm-services").start()
    return app


def _load_service_models() -> None:
    """Load the botocore service models moto parses requests and writes answers with (cached per process, 30-90 ms
    each), instead of in each service's first request."""
    from moto.core.utils import get_service_model

    for service in _WARM_SERVICES:
        try:
            get_service_model(service)
        except Exception as exc:  # pragma: no cover - the first request of that service will load (or fail) it
            log.debug("service model %s not loaded ahead: %s", service, exc)


class _FlushBeforeRead(io.BufferedIOBase):
    """A request's reader that first sends what the handler has written. The handler's writer is buffered (an answer
    leaves in one write) and :func:`serve_keeping_alive` writes ``100 Continue`` without flushing it, while the
    client sends the body only once it has that answer."""

    def __init__(self, rfile: io.BufferedIOBase, wfile: io.BufferedIOBase) -> None:
        super().__init__()
        self._rfile, self._wfile = rfile, wfile

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._wfile.flush()
        return self._rfile.read(size)

    def read1(self, size: int = -1) -> bytes:
        self._wfile.flush()
        return self._rfile.read1(size)

    def readinto(self, buffer: Any) -> int:
        self._wfile.flush()
        return self._rfile.readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        self._wfile.flush()
        return self._rfile.readline(size)

    def close(self) -> None:
        self._rfile.close()
        super().close()


def request_handler(access_log: bool = True) -> Any:
    """moto's request handler, doing the TLS handshake in the connection's own thread; without ``access_log`` it
    logs only the requests answered with a server error (5xx), not every request.

    werkzeug's server does it in its accept loop (``do_handshake_on_connect``), one connection at a time: while one
    client's handshake waits for that client (a Terraform process being scheduled, a busy boto3 thread), no other
    connection is accepted. Here the listening socket hands out connections without a handshake and each
    connection's thread makes it before reading the request; a failed handshake is logged and ends only that
    connection, as werkzeug's own handler does with TLS errors.

    The access log (werkzeug's line per request, about a twentieth of the emulator's time in the demo) is for a
    person watching ``smgitops emulator``; the :class:`Emulator` child's log is read for its errors."""
    import ssl

    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class HandshakeInThreadHandler(MotoRequestHandler):
        # An answer leaves in one write (one TLS record, one TCP segment): the status line and headers are written, then
        # the body, with one flush at the end (serve_keeping_alive). Unbuffered, the headers went out alone and Nagle's
        # algorithm held the small body back until the client acknowledged them, which clients delay: every answer took
        # about 12 ms longer (a boto3 request, handshake included: median 17.7 ms, 6.0 ms in one write), and Terraform's
        # SDK sometimes closed the connection in that gap and sent the request again (packet captures: about one request
        # in 18,000 from four Terraform processes on a busy machine; for a lock request, the lock taken and the retry
        # refused as held).
        wbufsize = 64 * 1024

        def setup(self) -> None:
            super().setup()
            self.rfile = _FlushBeforeRead(self.rfile, self.wfile)

        def handle_expect_100(self) -> bool:
            return True  # serve_keeping_alive sends the 100 Continue; http.server's would make two

        def run_wsgi(self) -> None:
            serve_keeping_alive(self)

        def handle(self) -> None:
            if isinstance(self.connection, ssl.SSLSocket):
                try:
                    self.connection.do_handshake()
                except OSError as exc:  # ssl.SSLError, ConnectionError and TimeoutError are OSErrors
                    self.log_error("TLS handshake failed: %s", exc)
                    return
            super().handle()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if access_log or str(code).startswith("5"):
                super().log_request(code, size)

        def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
            # werkzeug's hook for a connection lost while the answer was being sent: silent by default, yet the
            # request was served (its change made) and the client saw no answer, so it is always logged. Without
            # a request (environ None) it is a client closing a kept-alive connection between requests: nothing
            # was served and nothing is lost.
            if environ is None:
                log.debug("connection closed by the client between requests: %s", error)
                return
            self.log_error(
                "connection dropped before the answer reached the client: %s %s %s (%s: %s)",
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", "-"),
                environ.get("HTTP_X_AMZ_TARGET", ""),
                type(error).__name__,
                error,
            )

    return HandshakeInThreadHandler


# Statuses whose answers have no body (RFC 9110): the connection stays usable without a Content-Length.
_NO_BODY_STATUSES = frozenset({204, 304})


def serve_keeping_alive(handler: Any) -> None:
    """Run the WSGI app for one request of ``handler`` (werkzeug's request handler) and leave the connection open
    for the client's next request when that is safe.

    werkzeug's own ``run_wsgi`` ends every answer with ``Connection: close`` (http.server cannot tell where a
    request's body ends), so each request paid a new TCP connection, a TLS handshake and a thread, on both sides:
    in the workflow tests, 3,770 connections for 3,770 requests. Here the body is read through a stream limited to
    its ``Content-Length`` and what the app left unread is read after the answer, so the next request line is where
    the client put it. The connection is closed instead (``Connection: close``) when the request is not HTTP/1.1 or
    asks for it, its body is chunked, the answer has no ``Content-Length`` (and can have a body), the app writes
    another length than it announced, or the request fails. An idle connection is left for the client to close."""
    from werkzeug.wsgi import LimitedStream

    if handler.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
        handler.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # sent by the reader's flush before the body
    environ = handler.environ = handler.make_environ()
    body: LimitedStream | None = None
    length = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if handler.request_version != "HTTP/1.1" or environ.get("wsgi.input_terminated") or not length.isdigit():
        handler.close_connection = True  # an HTTP/1.0 client, a chunked body, a length that is no number
    else:
        body = LimitedStream(handler.rfile, int(length))
        environ["wsgi.input"] = body
    answer = _Answer(handler, head=environ["REQUEST_METHOD"] == "HEAD")
    try:
        answer.run(handler.server.app, environ)
        if body is not None and not body.is_exhausted:
            body.exhaust()  # what the app did not read of the body, so that the next request line comes next
    except (ConnectionError, TimeoutError) as exc:
        handler.close_connection = True
        handler.connection_dropped(exc, environ)
    except Exception:  # noqa: BLE001 - an app's failure is the client's 500, as werkzeug answers it
        handler.close_connection = True
        handler.server.log("error", "Error on request %s %s:\n%s", handler.command, handler.path, format_exc())
        if not answer.started:
            answer.fail()
    if answer.expected is not None and answer.written != answer.expected:
        handler.close_connection = True


class _Answer:
    """One answer written the way werkzeug writes it (status, the app's headers, the body as the app yields it, in
    one flush), with ``Connection: close`` only when the connection cannot carry another request."""

    def __init__(self, handler: Any, head: bool) -> None:
        self.handler, self.head = handler, head
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.started = False
        self.no_body = head
        self.expected: int | None = None
        self.written = 0

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        handler = self.handler
        if not self.started:
            assert self.status is not None, "write() before start_response"
            code_text, _, message = self.status.partition(" ")
            code = int(code_text)
            handler.send_response(code, message)
            for key, value in self.headers:
                handler.send_header(key, value)
                if key.lower() == "content-length" and value.strip().isdigit():
                    self.expected = int(value)
            self.no_body = self.head or code < 200 or code in _NO_BODY_STATUSES
            if self.no_body:
                self.expected = None  # a HEAD answer's Content-Length is the body a GET would have had
            elif self.expected is None:
                handler.close_connection = True  # the body's end is the connection's end
            if handler.close_connection:
                handler.send_header("Connection", "close")
            handler.end_headers()
            self.started = True
        if data and not self.no_body:
            handler.wfile.write(data)
            self.written += len(data)

    def run(self, app: Any, environ: dict[str, Any]) -> None:
        chunks = app(environ, self.start_response)
        try:
            for chunk in chunks:
                self.write(chunk)
            if not self.started:
                self.write(b"")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        self.handler.wfile.flush()

    def fail(self) -> None:
        body = b"Internal Server Error: the emulator failed on this request (its log has the traceback)."
        self.status = "500 INTERNAL SERVER ERROR"
        self.headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        try:
            self.write(body)
            self.handler.wfile.flush()
        except OSError:
            pass  # the client is gone as well


def make_server(host: str, port: int, tls: bool, tls_dir: Path | None = None, *, access_log: bool = True) -> Any:
    from werkzeug.serving import load_ssl_context
    from werkzeug.serving import make_server as werkzeug_make_server

    handler = request_handler(access_log)
    server = werkzeug_make_server(host, port, build_app(tls), threaded=True, request_handler=handler)
    if tls:
        from smgitops.emulator.tls import ensure_certificate

        cert, key = ensure_certificate(tls_dir or paths.emulator_tls_dir())
        context = load_ssl_context(str(cert), str(key))
        # what werkzeug does with ssl_context=, but the handshake is left to the connection's thread
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.ssl_context = context  # werkzeug's environ says https when it is set
    return server


def emulator_env(url: str, ca_bundle: Path | None) -> dict[str, str]:
    """Environment for a process (boto3, Terraform, the smgitops CLI) that should talk to the emulator."""
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        "AWS_REGION": DEFAULT_REGION,
    }
    if ca_bundle is not None:
        env["AWS_CA_BUNDLE"] = str(ca_bundle)
        env["SSL_CERT_FILE"] = str(ca_bundle)
    return env


# A directory where each emulator started by this process keeps its log (default: a temporary one, deleted on stop).
KEEP_LOG_VAR = "SMGITOPS_EMULATOR_LOG_DIR"


class EmulatorStartError(RuntimeError):
    pass


class Emulator:
    """An emulator server in a child process, on a free port by default."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: bool = True, tls_dir: Path | None = None) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.tls_dir = Path(tls_dir) if tls_dir is not None else paths.emulator_tls_dir()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None
        self.url = ""
        self.startup_seconds = 0.0
        self._began = 0.0

    @property
    def ca_bundle(self) -> Path:
        return self.tls_dir / "cert.pem"

    @property
    def log_path(self) -> Path | None:
        return Path(self._log.name) if self._log is not None else None

    def env(self) -> dict[str, str]:
        if not self.url:
            raise EmulatorStartError("the emulator is not running (call start() first)")
        return emulator_env(self.url, self.ca_bundle if self.tls else None)

    @property
    def admin(self) -> AdminClient:
        from smgitops.emulator.admin import AdminClient

        return AdminClient(self.url, self.ca_bundle if self.tls else None)

    def start(self, timeout: float = START_TIMEOUT) -> Emulator:
        """Start the server and wait until it serves (:meth:`launch`, then :meth:`wait_ready`)."""
        if self.url:
            return self
        return self.launch().wait_ready(timeout)

    def launch(self) -> Emulator:
        """Start the server's process with the process's environment as it is now, without waiting for it: the
        caller may do other work while it starts (it imports moto and builds its apps, about two seconds), then
        calls :meth:`wait_ready`."""
        if self._proc is not None:
            return self
        require_local_extra("cannot start the local emulator")
        if self.tls:
            from smgitops.emulator.tls import ensure_certificate

            ensure_certificate(self.tls_dir)
        self._began = time.monotonic()
        kept = os.environ.get(KEEP_LOG_VAR, "").strip()
        if kept:  # a run whose emulator logs are to be read afterwards (a CI run, a hunt for a rare fault)
            Path(kept).mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S")
            self._log = open(Path(kept) / f"emulator-{stamp}-{os.getpid()}-{id(self):x}.log", "w+b")  # noqa: SIM115
        else:
            self._log_dir = tempfile.TemporaryDirectory(prefix="smgitops-emulator-")
            self._log = open(Path(self._log_dir.name) / "server.log", "w+b")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "smgitops.commands.emulator", "--host", self.host, "--port", str(self.port)]
        cmd += ["--tls-dir", str(self.tls_dir)] if self.tls else ["--no-tls"]
        cmd += ["--ready-json"]
        child_env = dict(os.environ)
        child_env["PYTHONUNBUFFERED"] = "1"
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env=child_env)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Emulator:
        """Wait until the launched server reports its URL (stopping it and raising if it does not in time)."""
        if self.url:
            return self
        if self._proc is None:
            raise EmulatorStartError("the emulator was not launched (call launch() first)")
        assert self._proc.stdout is not None
        began = self._began
        deadline = began + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._proc.poll() is not None:
                self.stop()
                raise EmulatorStartError(f"the emulator did not start within {timeout:.0f} s: {self.log_tail()}")
            ready, _, _ = select.select([self._proc.stdout], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(self._proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                line += chunk
        info = json.loads(line.decode().splitlines()[0])
        self.url, self.port = info["url"], int(info["port"])
        self.startup_seconds = time.monotonic() - began
        return self

    def log_tail(self) -> str:
        """The last 2,000 characters of the server's log (its errors; every request too when it logs them)."""
        if self._log is None:
            return ""
        # read through a handle of its own: this one's offset is the server's (a shared file description)
        return Path(self._log.name).read_bytes().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None
        self.url = ""

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
