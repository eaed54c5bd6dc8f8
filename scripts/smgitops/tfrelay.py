"""A relay in front of the shared AWS provider that hands Terraform the provider's schema once per process.

Terraform asks a provider for its schema once for every provider instance it makes: three times in a ``plan``
(loading the schemas, the validate walk, the plan walk), and provider 3.39 answers each time with every resource type
it has, which the provider builds and Terraform decodes again (about 0.2 s of CPU each time, more than the rest of a
small plan). Terraform keeps one copy per process instead when the provider declares the call optional: the
``get_provider_schema_optional`` server capability of plugin protocol 5 (``GetProviderSchema.Response`` field 6,
``ServerCapabilities`` field 2). Provider 3.39 predates that capability, but nothing in it depends on the call: each
of its calls reads the schema it holds itself.

The relay listens on a socket of its own, passes every call to the provider unchanged (the go-plugin streams
included, and cancelled when Terraform goes away), and answers ``GetSchema`` with the provider's first answer and
that capability added. Terraform attaches to the relay instead of the provider; nothing else changes.

Given the service families of the configuration (``aws_sagemaker_``, ``aws_iam_``, ...), the answer also leaves out
the resource and data source types of every other service (858 of provider 3.39's 957; 615 kB → 51 kB), which
Terraform would otherwise decode in every process for nothing: about 0.15 s of CPU per ``plan``, 0.1 s per
``show``. Local mode only (:mod:`smgitops.tfprovider` decides): its state is the emulator's, made by these roots, so
it holds no type of another service. A state that does (a root that used another service and no longer does) makes
Terraform fail with "no schema available"; ``SMGITOPS_SCHEMA_RELAY=0`` then runs without the relay.

It needs ``grpcio`` (the ``local`` extra); without it the provider is shared without a relay.
``SMGITOPS_SCHEMA_RELAY=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

from .errors import UserError

RELAY_VAR = "SMGITOPS_SCHEMA_RELAY"
GET_SCHEMA = "/tfplugin5.Provider/GetSchema"
# go-plugin's own services: the broker is a stream both ways, stdio a stream from the provider; every other call of
# plugin protocol 5 (and go-plugin's health check and controller) is one request, one answer.
_BOTH_WAYS = frozenset({"/plugin.GRPCBroker/StartStream"})
_FROM_PROVIDER = frozenset({"/plugin.GRPCStdio/StreamStdio"})
# Provider 3.39's whole schema is a few MB; Terraform itself accepts up to 256 MB.
_MESSAGE_LIMIT = 256 << 20
_OPTIONS = [("grpc.max_receive_message_length", _MESSAGE_LIMIT), ("grpc.max_send_message_length", _MESSAGE_LIMIT)]


def relay_asked(env: Mapping[str, str]) -> bool:
    """Whether ``env`` leaves the relay on (``SMGITOPS_SCHEMA_RELAY`` unset or 1); a bad value is refused."""
    value = env.get(RELAY_VAR, "")
    if value not in ("", "0", "1"):
        raise UserError(f"{RELAY_VAR}={value!r}: expected 1 (schema relayed once per Terraform process) or 0")
    return value != "0"


def available() -> bool:
    """Whether gRPC is installed (the ``local`` extra); imports it."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """The top-level fields of a serialised protocol buffer: (number, payload start, payload end, field end)."""
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            start = at
            _, at = _varint(data, at)
            yield number, start, at, at
        elif wire == 2:
            length, start = _varint(data, at)
            at = start + length
            yield number, start, at, at
        elif wire in (1, 5):
            start, at = at, at + (8 if wire == 1 else 4)
            yield number, start, at, at
        else:
            raise ValueError(f"unexpected protocol buffer wire type {wire}")


def _map_key(entry: bytes) -> str:
    """The key (field 1, a string) of a serialised map entry."""
    for number, start, end, _ in _fields(entry):
        if number == 1:
            return entry[start:end].decode()
    return ""


# GetProviderSchema.Response: resource_schemas = 2, data_source_schemas = 3 (maps from the type's name)
_TYPE_MAPS = (2, 3)


def only_families(answer: bytes, families: Iterable[str]) -> tuple[bytes, int]:
    """``answer`` (a serialised ``GetProviderSchema.Response``) with the resource and data source types whose names
    start with none of ``families`` left out; every other field as it was. Returns it and how many types were
    left out."""
    prefixes = tuple(families)
    kept = bytearray()
    left_out = 0
    field_start = 0
    for number, start, end, field_end in _fields(answer):
        if number in _TYPE_MAPS and not _map_key(answer[start:end]).startswith(prefixes):
            left_out += 1
        else:
            kept += answer[field_start:field_end]
        field_start = field_end
    return bytes(kept), left_out


def schema_optional(answer: bytes) -> bytes:
    """``answer`` (a serialised ``GetProviderSchema.Response``) declaring ``get_provider_schema_optional``: an
    appended field 6 ``{2: true}``. Protocol buffers merge a message field that occurs twice, so an answer that
    already carries capabilities keeps them."""
    capabilities = b"\x10\x01"  # field 2, varint, 1
    return answer + b"\x32" + bytes([len(capabilities)]) + capabilities  # field 6, length-delimited


class SchemaRelay:
    """Relays a provider's plugin socket ``upstream`` (a Unix socket path) on a socket of its own."""

    def __init__(self, upstream: str, families: frozenset[str] | None = None) -> None:
        import grpc

        self._grpc = grpc
        self._dir = Path(tempfile.mkdtemp(prefix="smgitops-tfrelay-"))
        self.socket = str(self._dir / "provider.sock")
        self._channel = grpc.insecure_channel(f"unix:{upstream}", options=_OPTIONS)
        self._schema: bytes | None = None
        self._schema_lock = threading.Lock()
        self.schema_fetches = 0  # GetSchema calls that reached the provider
        self.schema_answers = 0  # GetSchema calls answered
        self.families = families  # None: every type is answered
        self.left_out = 0  # types of other services left out of the answer
        handlers: dict[str, Any] = {}  # by method: gRPC asks for one on every call
        relay = self

        class _Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
            def service(self, details: Any) -> Any:
                method = str(details.method)
                found = handlers.get(method)
                return found if found is not None else handlers.setdefault(method, relay._handler(method))

        self._server = grpc.server(_DaemonThreads(), handlers=[_Handler()], options=_OPTIONS)
        self._server.add_insecure_port(f"unix:{self.socket}")

    def start(self) -> SchemaRelay:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _handler(self, method: str) -> Any:
        grpc = self._grpc
        if method in _BOTH_WAYS:
            upstream_streams = self._channel.stream_stream(method)

            def both_ways(requests: Iterator[bytes], context: Any) -> Any:
                return _ended_with(context, upstream_streams(requests))

            return grpc.stream_stream_rpc_method_handler(both_ways)
        if method in _FROM_PROVIDER:
            upstream_stream = self._channel.unary_stream(method)

            def from_provider(request: bytes, context: Any) -> Any:
                return _ended_with(context, upstream_stream(request))

            return grpc.unary_stream_rpc_method_handler(from_provider)
        upstream = self._channel.unary_unary(method)

        def one(request: bytes, context: Any) -> bytes:
            try:
                answer: bytes = upstream(request)
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details() or "")
                raise  # not reached: abort raises
            return answer

        if method != GET_SCHEMA:
            return grpc.unary_unary_rpc_method_handler(one)

        def get_schema(request: bytes, context: Any) -> bytes:
            with self._schema_lock:
                self.schema_answers += 1
                if self._schema is None:
                    self.schema_fetches += 1
                    answer = one(request, context)
                    if self.families is not None:
                        answer, self.left_out = only_families(answer, self.families)
                    self._schema = schema_optional(answer)
                return self._schema

        return grpc.unary_unary_rpc_method_handler(get_schema)


def _ended_with(context: Any, call: Any) -> Any:
    """``call`` (a stream to the provider), cancelled when Terraform's side of it ends; at once when it already
    has (``add_callback`` registers nothing then): a stream left open would hold its thread for the provider's
    lifetime."""
    if not context.add_callback(call.cancel):
        call.cancel()
    return call


class _DaemonThreads(futures.Executor):
    """Runs each call in a daemon thread of its own. A pool of :class:`concurrent.futures.ThreadPoolExecutor`
    would be joined when the interpreter exits, before ``atexit`` stops the relay: a stream still open then would
    keep the command from ever exiting."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the future's owner (gRPC's server)
                future.set_exception(exc)

        threading.Thread(target=run, daemon=True, name="tfrelay-call").start()
        return future


def start(upstream: str, families: frozenset[str] | None = None) -> SchemaRelay | None:
    """A started relay for the provider socket ``upstream`` (answering only the types of ``families`` when given);
    ``None`` when it cannot listen (the provider is then shared without it)."""
    relay: SchemaRelay | None = None
    try:
        relay = SchemaRelay(upstream, families)
        return relay.start()
    except (OSError, RuntimeError):
        if relay is not None:
            with contextlib.suppress(Exception):
                relay.stop()
        return None
