"""Connecting to Temporal with a client certificate (issue 9, item 6): through a real TLS
endpoint that requires one, in front of the suite's dev server (which speaks no TLS itself).

The endpoint terminates TLS (ALPN h2, client certificate required and checked against the
test CA) and pipes the bytes to the dev server, as a TLS-terminating load balancer would."""

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.temporal.setup import TemporalUnreachable, connect_temporal, tls_config

Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _issue(name: str, issuer: Issued | None, *, ca: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _write(directory: Path, stem: str, issued: Issued) -> tuple[Path, Path]:
    cert, key = issued
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@asynccontextmanager
async def _mtls_endpoint(directory: Path, upstream: str) -> AsyncIterator[int]:
    ca = _issue("relay test CA", None, ca=True)
    ca_path, _ = _write(directory, "ca", ca)
    server_cert, server_key = _write(directory, "server", _issue("temporal.test", ca))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_path)
    context.load_cert_chain(server_cert, server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    host, port = upstream.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_relay_connects_with_a_client_certificate_and_not_without(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    other_ca = _issue("another CA", None, ca=True)
    keys = KeyRing.parse(KeyRing.generate_spec("t"))
    async with _mtls_endpoint(tmp_path, dev_env.client.service_client.config.target_host) as port:
        ca_path = tmp_path / "ca.pem"  # the endpoint's CA, written by _mtls_endpoint
        client_cert, client_key = _write(tmp_path, "client", _issue("relay", _load(tmp_path)))
        settings = Settings(
            temporal_tls_cert=client_cert,
            temporal_tls_key=client_key,
            temporal_tls_ca=ca_path,
            temporal_tls_server_name="temporal.test",
        )
        client = await connect_temporal(settings, f"127.0.0.1:{port}", keys)
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert info.server_version

        # A certificate from another CA is refused by the endpoint.
        stranger_cert, stranger_key = _write(tmp_path, "stranger", _issue("relay", other_ca))
        refused = settings.model_copy(
            update={"temporal_tls_cert": stranger_cert, "temporal_tls_key": stranger_key}
        )
        with pytest.raises(TemporalUnreachable):
            await connect_temporal(refused, f"127.0.0.1:{port}", keys)


def _load(directory: Path) -> Issued:
    cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def test_a_certificate_without_its_key_or_an_unreadable_file_is_a_clear_error(
    tmp_path: Path,
) -> None:
    cert, _ = _write(tmp_path, "c", _issue("relay", None, ca=True))
    with pytest.raises(TemporalUnreachable, match="go together"):
        tls_config(Settings(temporal_tls_cert=cert))
    with pytest.raises(TemporalUnreachable, match="RELAY_TEMPORAL_TLS_CA"):
        tls_config(Settings(temporal_tls_ca=tmp_path / "missing.pem"))
    assert tls_config(Settings()) is None
