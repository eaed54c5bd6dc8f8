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

It needs ``grpcio`` (the ``local`` extra); without it the provider is shared without a relay.
``SMGITOPS_SCHEMA_RELAY=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
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
# Terraform holds two streams open per process attached (broker, stdio) and makes its calls from a few goroutines.
_WORKERS = 64


def relay_wanted(env: Mapping[str, str]) -> bool:
    value = env.get(RELAY_VAR, "")
    if value not in ("", "0", "1"):
        raise UserError(f"{RELAY_VAR}={value!r}: expected 1 (schema relayed once per Terraform process) or 0")
    if value == "0":
        return False
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


def schema_optional(answer: bytes) -> bytes:
    """``answer`` (a serialised ``GetProviderSchema.Response``) declaring ``get_provider_schema_optional``: an
    appended field 6 ``{2: true}``. Protocol buffers merge a message field that occurs twice, so an answer that
    already carries capabilities keeps them."""
    capabilities = b"\x10\x01"  # field 2, varint, 1
    return answer + b"\x32" + bytes([len(capabilities)]) + capabilities  # field 6, length-delimited


class SchemaRelay:
    """Relays a provider's plugin socket ``upstream`` (a Unix socket path) on a socket of its own."""

    def __init__(self, upstream: str) -> None:
        import grpc

        self._grpc = grpc
        self._dir = Path(tempfile.mkdtemp(prefix="smgitops-tfrelay-"))
        self.socket = str(self._dir / "provider.sock")
        self._channel = grpc.insecure_channel(f"unix:{upstream}", options=_OPTIONS)
        self._schema: bytes | None = None
        self._schema_lock = threading.Lock()
        self.schema_fetches = 0  # GetSchema calls that reached the provider
        self.schema_answers = 0  # GetSchema calls answered
        relay = self

        class _Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
            def service(self, details: Any) -> Any:
                return relay._handler(str(details.method))

        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="tfrelay"),
            handlers=[_Handler()],
            options=_OPTIONS,
        )
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
                call = upstream_streams(requests)
                context.add_callback(call.cancel)
                return call

            return grpc.stream_stream_rpc_method_handler(both_ways)
        if method in _FROM_PROVIDER:
            upstream_stream = self._channel.unary_stream(method)

            def from_provider(request: bytes, context: Any) -> Any:
                call = upstream_stream(request)
                context.add_callback(call.cancel)
                return call

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
                    self._schema = schema_optional(one(request, context))
                return self._schema

        return grpc.unary_unary_rpc_method_handler(get_schema)


def start(upstream: str) -> SchemaRelay | None:
    """A started relay for the provider socket ``upstream``; ``None`` when it cannot listen (the provider is then
    shared without it)."""
    relay: SchemaRelay | None = None
    try:
        relay = SchemaRelay(upstream)
        return relay.start()
    except (OSError, RuntimeError):
        if relay is not None:
            with contextlib.suppress(Exception):
                relay.stop()
        return None
