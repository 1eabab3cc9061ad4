"""Temporal payloads encrypted with the key ring: workflow and activity inputs and results,
local activity results, query results, memos and failure details reach Temporal as
AES-256-GCM ciphertext, so its database holds no personal or business data in clear.

An encrypted payload: metadata `encoding: binary/encrypted` and `encryption-key-id: {kid}`,
data `nonce || ciphertext+tag` of the whole original payload (its metadata and data), bound
to a fixed associated data so a pixel token's ciphertext cannot pass for a payload. Search
attributes never pass through a codec: they hold IDs only.

A payload without that encoding was not written by Relay with its key ring: recorded
before the codec, or forged by whoever reached the Temporal frontend. Readers (the API's
client, the replayer, the codec endpoint) read it as it is. The worker does not run it: its
codec marks it, and the payload converter refuses a marked payload with a non-retryable
ApplicationError, so a forged workflow start fails (visibly, once) instead of failing its
workflow task forever, and a forged activity input fails its activity. Until
RELAY_TEMPORAL_PLAINTEXT_UNTIL, runs recorded before the codec still finish."""

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import CompositePayloadConverter, DataConverter, PayloadCodec
from temporalio.exceptions import ApplicationError

from relay.core.crypto import KeyRing

log = logging.getLogger(__name__)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# Added by the worker's codec to a payload that was not encrypted; never sent to Temporal.
NOT_ENCRYPTED = "relay-not-encrypted"
NOT_ENCRYPTED_MESSAGE = "input not encrypted with Relay's key ring"
NOT_ENCRYPTED_TYPE = "NotEncrypted"
_ASSOCIATED_DATA = b"relay temporal payload v1"


class EncryptionCodec(PayloadCodec):
    """Encrypts with the ring's primary key; decrypts with the key named in the metadata."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id, sealed = self.keys.seal(payload.SerializeToString(), _ASSOCIATED_DATA)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload (a payload not encrypted comes back as it is); raises
        KeyRingError if its key is not in the ring or the ciphertext was altered."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        return Payload.FromString(self.keys.open(key_id, payload.data, _ASSOCIATED_DATA))


class WorkerCodec(EncryptionCodec):
    """The worker's codec: a payload not encrypted with the ring is marked `NOT_ENCRYPTED`
    for the payload converter to refuse, except before `plaintext_until` (the grace an
    upgrade from a version without the codec gives the runs it started). A payload whose
    key is not in the ring still fails the workflow task, retried until the key is back."""

    def __init__(self, keys: KeyRing, plaintext_until: datetime | None = None) -> None:
        super().__init__(keys)
        self.plaintext_until = plaintext_until

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return super().decrypt(payload)
        if self.plaintext_until is not None and datetime.now(UTC) < self.plaintext_until:
            return payload
        marked = Payload()
        marked.CopyFrom(payload)
        marked.metadata[NOT_ENCRYPTED] = b"1"
        return marked


_PYDANTIC = PydanticPayloadConverter()


class SharedPydanticConverter(CompositePayloadConverter):
    """The pydantic payload converter, its converters (and their cache of type adapters)
    shared by every instance. The SDK builds a new payload converter for every workflow
    activation; pydantic's own would start with an empty cache each time and rebuild the
    type adapter of every input and result it reads (py-spy on bench/relay_up.py).

    It refuses a payload the worker's codec marked as not encrypted: the SDK lets an
    ApplicationError raised here fail the workflow (a codec's error fails only its task)."""

    def __init__(self) -> None:
        super().__init__(*_PYDANTIC.converters.values())

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[type] | None = None
    ) -> list[Any]:
        for payload in payloads:
            if NOT_ENCRYPTED in payload.metadata:
                refuse(payload)
        return super().from_payloads(payloads, type_hints)


def refuse(payload: Payload) -> None:
    """Log (never the contents) and raise the non-retryable refusal."""
    encoding = payload.metadata.get("encoding", b"").decode("utf-8", "replace")[:40]
    log.warning(
        "refused a Temporal payload not encrypted with Relay's key ring "
        "(encoding %r, %d bytes): a start or input from outside Relay",
        encoding,
        len(payload.data),
    )
    raise ApplicationError(NOT_ENCRYPTED_MESSAGE, type=NOT_ENCRYPTED_TYPE, non_retryable=True)


def relay_data_converter(keys: KeyRing) -> DataConverter:
    """The pydantic data converter with payloads encrypted under `keys`, for Relay's
    clients and the replayer: they read payloads recorded before the codec as they are
    (reading a history runs nothing)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=SharedPydanticConverter,
        payload_codec=EncryptionCodec(keys),
    )


def worker_data_converter(keys: KeyRing, plaintext_until: datetime | None) -> DataConverter:
    """The worker's: as `relay_data_converter`, but a workflow or activity input (or any
    payload it reads) not encrypted with `keys` is refused, after `plaintext_until`."""
    return dataclasses.replace(
        relay_data_converter(keys), payload_codec=WorkerCodec(keys, plaintext_until)
    )
