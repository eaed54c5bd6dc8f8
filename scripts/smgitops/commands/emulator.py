"""``smgitops emulator``: run the local AWS emulator (moto's server with smgitops' extensions, over HTTPS) in the
foreground, printing its URL and the ``export`` lines that point boto3 and Terraform at it; Ctrl-C stops it. It
needs the ``local`` extra.

Stages: :mod:`smgitops.emulator.server` (the server built and served). ``python -m smgitops.commands.emulator`` runs
this command alone: it is the child process of :class:`smgitops.emulator.server.Emulator` (``--ready-json``: one
JSON line when it listens).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from ..errors import SmgitopsError, UserError

HELP = "run the local AWS emulator in the foreground"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--no-tls", dest="tls", action="store_false", help="serve plain HTTP (TLS-only policies deny)")
    parser.add_argument("--tls-dir", type=Path, default=None, help="directory holding cert.pem/key.pem")
    parser.add_argument("--json", action="store_true", help="print the endpoint and environment as one JSON line")
    parser.add_argument("--ready-json", action="store_true", help=argparse.SUPPRESS)


def _refuse_a_busy_port(host: str, port: int) -> None:
    """A port another process listens on is refused at once, before moto (about a second) is imported; the server's
    own bind below still decides (the port may be taken in between)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no hindrance
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: the address is in use or not available") from exc


def run(args: argparse.Namespace) -> int:
    _refuse_a_busy_port(args.host, args.port)
    from .. import paths
    from ..emulator import require_local_extra
    from ..emulator.server import emulator_env, make_server

    require_local_extra("cannot run the local emulator")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    tls_dir = args.tls_dir or paths.emulator_tls_dir()
    try:
        # the child of Emulator (--ready-json) logs errors, not a line per request: its log is read for errors
        server = make_server(args.host, args.port, args.tls, tls_dir, access_log=not args.ready_json)
    except (OSError, SystemExit) as exc:  # werkzeug reports a failed bind on stderr and exits
        raise UserError(f"cannot listen on {args.host}:{args.port}: the address is in use or not available") from exc
    host, port = server.server_address[:2]
    url = f"{'https' if args.tls else 'http'}://{host}:{port}"
    env = emulator_env(url, tls_dir / "cert.pem" if args.tls else None)
    if args.ready_json or args.json:
        sys.stdout.write(json.dumps({"url": url, "port": port, "env": env}) + "\n")
    else:
        sys.stdout.write(f"smgitops emulator listening on {url}\n\n")
        for key, value in env.items():
            sys.stdout.write(f"export {key}={value}\n")
        if args.tls:
            sys.stdout.write("# SSL_CERT_FILE makes Terraform trust the emulator (and nothing else in that shell).\n")
        sys.stdout.write(f"\nadmin API: {url}/_smgitops/ (smgitops.emulator.admin.AdminClient). Ctrl-C stops it.\n")
    sys.stdout.flush()
    if args.ready_json:
        # The parent reads only the ready line: anything printed later (an inference.py, say) goes to the log
        # instead of filling a pipe nobody drains.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C (SIGINT) and SIGTERM stop the server however it was started. A process started with SIGINT ignored
    # (a non-interactive shell's background job: `smgitops emulator &` in a script) keeps it ignored, Python too,
    # and would serve on through every Ctrl-C.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    if not args.ready_json:
        sys.stdout.write("emulator stopped\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m smgitops.commands.emulator``: the emulator as :class:`smgitops.emulator.server.Emulator`'s child
    process (with ``--ready-json``), without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m smgitops.commands.emulator", description=HELP)
    configure(parser)
    try:
        return run(parser.parse_args(argv))
    except SmgitopsError as exc:
        sys.stderr.write(f"smgitops emulator: {exc}\n")
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
