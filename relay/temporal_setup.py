"""Connecting to Temporal the same way on the API, the worker and the replayer."""

from temporalio.client import Client
from temporalio.service import TLSConfig

from relay.crypto import KeyRing
from relay.metrics import TEMPORAL
from relay.payload_codec import relay_data_converter
from relay.settings import Settings


class TemporalUnreachable(RuntimeError):
    """The first connection to the Temporal frontend failed."""


async def connect_temporal(settings: Settings, address: str, keys: KeyRing) -> Client:
    """A client with the pydantic data converter, payloads encrypted under `keys`
    (relay/payload_codec.py), TLS and API key as configured, on the process's Temporal
    runtime (its metrics are in `/metrics`, see relay/metrics.py)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    tls: bool | TLSConfig = settings.temporal_tls or api_key is not None
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
