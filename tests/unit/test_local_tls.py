"""The local certificate authority (airdock.local.tls) and how a local environment uses it: one CA
per data directory, a server certificate per web front that clients verify with the CA bundle."""
from __future__ import annotations

import datetime
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from airdock.core.settings import Settings
from airdock.local.airflow_env import LocalAirflowEnvironment, LocalSpec
from airdock.local.runtime import Runtime
from airdock.local.tls import LocalCertificateAuthority, server_files
from support.records import sample_environment


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def handshake(bundle: Path, cert: Path, key: Path, server_hostname: str) -> str:
    """A real TLS handshake against `cert`, verified as a strict client (Python 3.13's defaults)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def accept() -> None:
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                conn.close()

        threading.Thread(target=accept, daemon=True).start()
        client = ssl.create_default_context(cafile=str(bundle))
        client.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client.wrap_socket(raw, server_hostname=server_hostname) as tls:
                tls.sendall(b"x")
                return str(tls.version())


def test_the_ca_is_made_once_with_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    ca = LocalCertificateAuthority(tmp_path / "tls")
    assert ca.ensure() is True
    first = ca.bundle.read_bytes()
    assert ca.ensure() is False and ca.bundle.read_bytes() == first
    assert mode(ca.key_path) == 0o600 and mode(ca.directory) == 0o700
    cert = x509.load_pem_x509_certificate(first)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost", "airflow.internal", "::1"])
def test_a_server_certificate_verifies_against_the_bundle_for_each_of_its_names(tmp_path: Path, hostname: str) -> None:
    ca = LocalCertificateAuthority(tmp_path / "tls")
    cert, key = ca.server_certificate(tmp_path / "env", ["airflow.internal", "127.0.0.1", "localhost", "::1"])
    assert mode(key) == 0o600
    assert handshake(ca.bundle, cert, key, hostname).startswith("TLS")


def test_a_name_not_on_the_certificate_fails_verification(tmp_path: Path) -> None:
    ca = LocalCertificateAuthority(tmp_path / "tls")
    cert, key = ca.server_certificate(tmp_path / "env", ["127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ca.bundle, cert, key, "localhost")


def test_a_certificate_is_kept_while_it_fits_and_replaced_when_a_name_or_the_ca_changes(tmp_path: Path) -> None:
    ca = LocalCertificateAuthority(tmp_path / "tls")
    cert, _ = ca.server_certificate(tmp_path / "env", ["127.0.0.1", "localhost"])
    issued = cert.read_bytes()
    assert ca.server_certificate(tmp_path / "env", ["localhost"])[0].read_bytes() == issued
    renamed = ca.server_certificate(tmp_path / "env", ["localhost", "airflow.internal"])[0].read_bytes()
    assert renamed != issued
    # Another CA (this one's files deleted, as a user resetting trust would): re-issued by the new one.
    ca.bundle.unlink()
    new_ca = LocalCertificateAuthority(tmp_path / "tls")
    cert, key = new_ca.server_certificate(tmp_path / "env", ["localhost", "airflow.internal"])
    assert cert.read_bytes() != renamed
    assert handshake(new_ca.bundle, cert, key, "airflow.internal")


def test_certificates_close_to_their_end_are_renewed(tmp_path: Path) -> None:
    now = [datetime.datetime.now(datetime.timezone.utc)]
    ca = LocalCertificateAuthority(tmp_path / "tls", clock=lambda: now[0])
    ca.ensure()
    cert, _ = ca.server_certificate(tmp_path / "env", ["127.0.0.1"])
    issued = cert.read_bytes()
    now[0] += datetime.timedelta(days=380)  # the server certificate ends within 30 days
    assert ca.server_certificate(tmp_path / "env", ["127.0.0.1"])[0].read_bytes() != issued
    bundle = ca.bundle.read_bytes()
    now[0] += datetime.timedelta(days=3630)  # so does the CA
    assert ca.ensure() is True and ca.bundle.read_bytes() != bundle


def _local_environment(tmp_path: Path, authority: LocalCertificateAuthority | None, **settings: str) -> LocalAirflowEnvironment:
    runtime = Runtime("k", "3.3.2", "3.12", tmp_path / "venv", tmp_path / "venv/bin/python", tmp_path / "venv/bin/airflow")
    spec = LocalSpec(sample_environment("e", AirflowVersion="3.3.2"), settings=Settings(**settings),  # type: ignore[arg-type]
                     certificate_authority=authority)
    return LocalAirflowEnvironment(tmp_path / "env", runtime, spec)


def test_a_local_environment_gives_its_web_front_a_certificate_from_the_ca_and_keeps_http(tmp_path: Path) -> None:
    ca = LocalCertificateAuthority(tmp_path / "tls")
    env = _local_environment(tmp_path, ca, web_hostname="airflow.internal")
    env.write_home()
    front = env.blueprint().component("web-front").environment
    cert, key = server_files(env.tls_dir)
    assert (front["AIRDOCK_WEB_TLS_CERT"], front["AIRDOCK_WEB_TLS_KEY"]) == (str(cert), str(key))
    assert front["AIRDOCK_WEB_TLS_OPTIONAL"] == "1"
    for name in ("airflow.internal", "127.0.0.1", "localhost"):
        assert handshake(ca.bundle, cert, key, name)
    # MWAA gives a bare host name; links and redirects keep http://, which every client opens.
    assert env.front_hostname.startswith("airflow.internal:") and env.front_url.startswith("http://")


def test_a_certificate_the_user_configured_is_used_as_it_is_https_only(tmp_path: Path) -> None:
    ca = LocalCertificateAuthority(tmp_path / "tls")
    env = _local_environment(tmp_path, ca, web_tls_cert="/etc/mine.pem", web_tls_key="/etc/mine-key.pem")
    env.write_home()
    front = env.blueprint().component("web-front").environment
    assert (front["AIRDOCK_WEB_TLS_CERT"], front["AIRDOCK_WEB_TLS_KEY"]) == ("/etc/mine.pem", "/etc/mine-key.pem")
    assert "AIRDOCK_WEB_TLS_OPTIONAL" not in front
    assert not env.tls_dir.exists()
    assert env.front_url.startswith("https://")
