"""The local AWS emulator: moto's server plus smgitops' explicit extensions (see extensions.py).

Its libraries (moto with its server, werkzeug and flask; cryptography for the certificate) are the optional extra
``smgitops[local]``: a production install leaves them out. The modules here import them only inside the functions
that need them, and :func:`require_local_extra` turns their absence into one message that names the install.
"""

from __future__ import annotations

import importlib.util

# What the emulator imports beyond the core dependencies (moto[server] brings werkzeug and flask).
LOCAL_EXTRA_MODULES = ("moto", "werkzeug", "flask", "cryptography")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # an import hook that refuses it
        return False


def require_local_extra(what: str) -> None:
    """Raise :class:`~smgitops.errors.UserError` (exit 2) when a module of the ``local`` extra is missing."""
    missing = [m for m in LOCAL_EXTRA_MODULES if not _importable(m)]
    if missing:
        from smgitops.errors import UserError

        raise UserError(
            f"{what}: the local emulator's libraries are not installed (no {', '.join(missing)}); "
            "install smgitops[local] (pip install 'smgitops[local]'; `make setup` does)"
        )
