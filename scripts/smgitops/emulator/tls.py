"""The emulator's TLS certificate, made at set-up.

The emulator serves HTTPS so that ``aws:SecureTransport`` is true for real (the TLS-only bucket policies of
``bootstrap/`` are evaluated, not weakened). Terraform trusts it through ``SSL_CERT_FILE``, boto3 through
``AWS_CA_BUNDLE``. The certificate is for ``localhost`` and ``127.0.0.1`` only, self-signed, valid ten years.

    python -m smgitops.emulator.tls DIR    # writes DIR/cert.pem and DIR/key.pem unless they already exist
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from pathlib import Path

from smgitops.files import write_atomic


def ensure_certificate(directory: Path) -> tuple[Path, Path]:
    """Create ``cert.pem`` / ``key.pem`` in ``directory`` if missing; return their paths."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from smgitops.emulator import require_local_extra

    require_local_extra("cannot make the emulator's TLS certificate")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smgitops local emulator")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_atomic(key_path, pem, mode=0o600)  # the key is never readable by others, not even while written
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path, key_path


if __name__ == "__main__":  # pragma: no cover - exercised by scripts/setup.sh
    if len(sys.argv) != 2:
        sys.exit("usage: python -m smgitops.emulator.tls DIR")
    from smgitops.errors import UserError

    try:
        ensure_certificate(Path(sys.argv[1]))
    except UserError as exc:
        sys.exit(f"smgitops.emulator.tls: {exc}")
