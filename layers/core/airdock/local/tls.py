"""HTTPS for local web fronts: a certificate authority of this data directory, and a server
certificate per environment signed by it.

MWAA clients build `https://{WebServerHostname}/...` themselves (the Amazon provider's MwaaHook
has no way to say http), so every local web front speaks TLS as well as plain HTTP on its port.
No public CA will sign `127.0.0.1`, hence a local one: created on the first start, kept in
`<data-dir>/tls/` (`ca.pem` is the bundle clients trust, `ca-key.pem` is 0600), and used for
every server certificate after. The web front only loads the PEM files (airdock_runtime.web_front).
"""
from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("airdock.local.tls")

CA_VALIDITY = datetime.timedelta(days=3650)
# Under the 398 days browsers accept for a server certificate.
SERVER_VALIDITY = datetime.timedelta(days=397)
# A certificate this close to its end is replaced at the next start rather than left to expire
# under a running environment.
RENEW_BEFORE = datetime.timedelta(days=30)
# Issued a little in the past: a client whose clock lags must not see "not yet valid".
BACKDATE = datetime.timedelta(hours=1)

Clock = Callable[[], datetime.datetime]


def server_files(directory: Path) -> tuple[Path, Path]:
    """Where `server_certificate(directory, ...)` keeps its (certificate, key)."""
    return directory / "web-front.pem", directory / "web-front-key.pem"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, and with `mode` from the first byte: a key is never readable by others, not
    even for a moment, and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        return x509.DNSName(hostname)


class LocalCertificateAuthority:
    def __init__(self, directory: Path, clock: Clock = _utcnow) -> None:
        self.directory = directory
        self.clock = clock
        self._lock = threading.Lock()

    @property
    def bundle(self) -> Path:
        """The CA certificate clients trust (REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE, curl --cacert)."""
        return self.directory / "ca.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "ca-key.pem"

    def ensure(self) -> bool:
        """Create the CA unless a usable one is there; True if it was created now."""
        with self._lock:
            if self._load() is not None:
                return False
            self._create()
            return True

    def server_certificate(self, directory: Path, hostnames: Sequence[str]) -> tuple[Path, Path]:
        """(certificate, key) PEM files in `directory` for a server known by `hostnames`, signed
        by this CA. A certificate already there is kept while it names them all, has this CA as
        its issuer, and is not about to expire; otherwise a new key and certificate replace it."""
        cert_path, key_path = server_files(directory)
        wanted = list(dict.fromkeys(h for h in hostnames if h))
        with self._lock:
            ca = self._load()
            if ca is None:
                ca = self._create()
            if self._usable(cert_path, key_path, ca[0], wanted):
                return cert_path, key_path
            ca_cert, ca_key = ca
            key = ec.generate_private_key(ec.SECP256R1())
            now = self.clock()
            cert = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])]))
                    .issuer_name(ca_cert.subject)
                    .public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - BACKDATE)
                    .not_valid_after(now + SERVER_VALIDITY)
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                 key_encipherment=False, data_encipherment=False,
                                                 key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                    .add_extension(x509.SubjectAlternativeName([_san(h) for h in wanted]), critical=False)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                   critical=False)
                    .sign(ca_key, hashes.SHA256()))
            _write(key_path, _key_pem(key), 0o600)
            _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
            return cert_path, key_path

    # ---- helpers -------------------------------------------------------------------------------

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
        try:
            cert = x509.load_pem_x509_certificate(self.bundle.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (OSError, ValueError):
            return None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            log.warning("the local CA in %s does not match its key: making a new one", self.directory)
            return None
        if cert.not_valid_after_utc - RENEW_BEFORE < self.clock():
            log.warning("the local CA in %s expires on %s: making a new one (trust the new %s)",
                        self.directory, cert.not_valid_after_utc.date(), self.bundle)
            return None
        return cert, key

    def _create(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        # A name of its own per data directory: two Airdock CAs in one trust store stay apart.
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Airdock"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"Airdock local CA {secrets.token_hex(4)}")])
        now = self.clock()
        cert = (x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - BACKDATE)
                .not_valid_after(now + CA_VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        _write(self.key_path, _key_pem(key), 0o600)
        _write(self.bundle, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log.info("created the local certificate authority %s", self.bundle)
        return cert, key

    def _usable(self, cert_path: Path, key_path: Path, ca_cert: x509.Certificate, hostnames: list[str]) -> bool:
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert.verify_directly_issued_by(ca_cert)
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            return False
        if cert.not_valid_after_utc - RENEW_BEFORE < self.clock():
            return False
        return all(_san(h) in names for h in hostnames)
