"""Connecting to Temporal the same way on the API, the worker and the replayer."""

from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from relay.core.crypto import KeyRing
from relay.core.metrics import TEMPORAL
from relay.core.settings import Settings
from relay.temporal.payload_codec import relay_data_converter


class TemporalUnreachable(RuntimeError):
    """The first connection to the Temporal frontend failed."""


def _pem(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TemporalUnreachable(f"{setting}: cannot read {path} ({exc.strerror})") from None


def tls_config(settings: Settings) -> TLSConfig | None:
    """TLS with a client certificate (mTLS: self-hosted clusters, Temporal Cloud), a private
    CA or a server name, from the RELAY_TEMPORAL_TLS_* files; None when none is set."""
    cert = _pem(settings.temporal_tls_cert, "RELAY_TEMPORAL_TLS_CERT")
    key = _pem(settings.temporal_tls_key, "RELAY_TEMPORAL_TLS_KEY")
    if (cert is None) != (key is None):
        raise TemporalUnreachable("RELAY_TEMPORAL_TLS_CERT and RELAY_TEMPORAL_TLS_KEY go together")
    ca = _pem(settings.temporal_tls_ca, "RELAY_TEMPORAL_TLS_CA")
    if cert is None and ca is None and settings.temporal_tls_server_name is None:
        return None
    return TLSConfig(
        server_root_ca_cert=ca,
        domain=settings.temporal_tls_server_name,
        client_cert=cert,
        client_private_key=key,
    )


async def connect_temporal(settings: Settings, address: str, keys: KeyRing) -> Client:
    """A client with the pydantic data converter, payloads encrypted under `keys`
    (relay/temporal/payload_codec.py), TLS and API key as configured, on the process's Temporal
    runtime (its metrics are in `/metrics`, see relay/core/metrics.py)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    tls = tls_config(settings) or settings.temporal_tls or api_key is not None
    try:
        return await Client.connect(
            address,
            namespace=settings.temporal_namespace,
            api_key=api_key,
            tls=tls,
            data_converter=relay_data_converter(keys),
            runtime=TEMPORAL.get_runtime(),
        )
    except RuntimeError as exc:  # the SDK's "Failed client connect: ..."
        raise TemporalUnreachable(f"cannot connect to Temporal at {address}: {exc}") from exc
