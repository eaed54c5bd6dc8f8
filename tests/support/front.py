"""A TCP front for a local server (the emulator) that spoils chosen connections the way a network or a server can.

Each connection accepted is given the next fault of ``faults`` (then none: a plain relay to the server), so a test
can say "the first two handshakes fail, the third goes through" and count what reached the server:

* ``"alert"``: the client's first bytes (its TLS ClientHello) are read and answered with a fatal TLS alert
  (decode_error), then the connection is closed: the handshake fails, nothing reaches the server;
* ``"foreign-cert"``: the TLS handshake is made with a certificate of another authority (``foreign_cert``): the
  client refuses it, nothing reaches the server;
* ``"drop-answer"``: TLS is ended here with the server's own certificate (``server_cert``), the HTTP request read
  and sent on to the server, which serves it; its answer is read and thrown away and the client's connection
  closed: the request was served, the client never hears of it.

``connections`` counts the connections accepted.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

# A TLS 1.2 record (content type 21: alert) holding a fatal (2) decode_error (50) alert.
DECODE_ERROR_ALERT = bytes([21, 3, 3, 0, 2, 2, 50])


def _pump(source: socket.socket, sink: socket.socket | None) -> None:
    """Copy ``source`` to ``sink`` until ``source`` ends (to nowhere when ``sink`` is None), then end ``sink``."""
    try:
        while data := source.recv(65536):
            if sink is not None:
                sink.sendall(data)
    except OSError:
        pass
    if sink is not None:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Front:
    def __init__(
        self,
        target_port: int,
        faults: Iterable[str] = (),
        *,
        foreign_cert: tuple[Path, Path] | None = None,
        server_cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.target_port = target_port
        self.faults = list(faults)
        self.foreign_cert = foreign_cert
        self.server_cert = server_cert
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept, daemon=True, name="front-accept")
        self._closing = False

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> Front:
        self._accepter.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not, on Linux)
        except OSError:
            pass
        self._listener.close()
        self._accepter.join(timeout=5)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            fault = self.faults[self.connections] if self.connections < len(self.faults) else ""
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, fault), daemon=True, name="front-conn").start()

    def _serve(self, client: socket.socket, fault: str) -> None:
        with client:
            if fault == "alert":
                client.recv(65536)
                client.sendall(DECODE_ERROR_ALERT)
                return
            if fault == "foreign-cert":
                assert self.foreign_cert is not None, "foreign-cert needs foreign_cert="
                try:
                    _tls_server(self.foreign_cert).wrap_socket(client, server_side=True).close()
                except OSError:
                    pass  # the client refused the certificate: what this fault is for
                return
            if fault == "drop-answer":
                assert self.server_cert is not None, "drop-answer needs server_cert="
                self._serve_and_drop(client, self.server_cert)
                return
            with socket.create_connection(("127.0.0.1", self.target_port)) as server:
                upstream = threading.Thread(target=_pump, args=(client, server), daemon=True)
                upstream.start()
                _pump(server, client)
                upstream.join(timeout=2)  # the client closes its end once it has read the answer
                try:
                    client.shutdown(socket.SHUT_RDWR)  # ends the upstream pump's wait
                except OSError:
                    pass  # the client has gone

    def _serve_and_drop(self, client: socket.socket, cert: tuple[Path, Path]) -> None:
        with _tls_server(cert).wrap_socket(client, server_side=True) as tls:
            request = _read_message(tls)
            context = ssl.create_default_context(cafile=str(cert[0]))
            with socket.create_connection(("127.0.0.1", self.target_port)) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as server:
                    server.sendall(request)
                    _read_message(server)  # the answer, thrown away (the server keeps its connection open)
            tls.shutdown(socket.SHUT_RDWR)


def _read_message(conn: socket.socket) -> bytes:
    """One HTTP message from ``conn``: its head and the ``Content-Length`` bytes of body after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"the peer closed after {len(data)} bytes, before a message's head ended")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"the peer closed after {len(body)} of {length} body bytes")
        body += chunk
    return head + b"\r\n\r\n" + body


def _tls_server(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context
