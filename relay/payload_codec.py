"""Temporal payloads encrypted with the key ring: workflow and activity inputs and results,
local activity results, query results, memos and failure details reach Temporal as
AES-256-GCM ciphertext, so its database holds no personal or business data in clear.

An encrypted payload: metadata `encoding: binary/encrypted` and `encryption-key-id: {kid}`,
data `nonce || ciphertext+tag` of the whole original payload (its metadata and data), bound
to a fixed associated data so a pixel token's ciphertext cannot pass for a payload. A payload
without that encoding (histories recorded before the codec) decodes as it is. Search
attributes never pass through a codec: they hold IDs only."""

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import CompositePayloadConverter, DataConverter, PayloadCodec

from relay.crypto import KeyRing

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
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
        """The original payload; raises KeyRingError if its key is not in the ring or the
        ciphertext was altered."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        return Payload.FromString(self.keys.open(key_id, payload.data, _ASSOCIATED_DATA))


_PYDANTIC = PydanticPayloadConverter()


class SharedPydanticConverter(CompositePayloadConverter):
    """The pydantic payload converter, its converters (and their cache of type adapters)
    shared by every instance. The SDK builds a new payload converter for every workflow
    activation; pydantic's own would start with an empty cache each time and rebuild the
    type adapter of every input and result it reads (py-spy on bench/relay_up.py)."""

    def __init__(self) -> None:
        super().__init__(*_PYDANTIC.converters.values())


def relay_data_converter(keys: KeyRing) -> DataConverter:
    """The pydantic data converter with payloads encrypted under `keys`: every client,
    worker and replayer of Relay's workflows uses it."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=SharedPydanticConverter,
        payload_codec=EncryptionCodec(keys),
    )
