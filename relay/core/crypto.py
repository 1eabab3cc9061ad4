"""AES-256-GCM encryption of pixel access tokens with a rotatable key ring (product.md 8).

Ciphertext format: `v1.{key_id}.{base64url(nonce || ciphertext+tag)}`. The key ID inside the
ciphertext lets a ring with several keys decrypt old tokens while the first key encrypts
new ones, so a key can be rotated without downtime.

The ring also keys the hashes of network postback keys (`keyed_hash`): HMAC-SHA256 under a
per-key subkey derived with HKDF, written `v1.{key_id}.{base64url(mac)}`. The key ID inside
lets a postback key hashed under an older key of the ring still be found after rotation.
"""

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
# Domain separation: the hash subkey is never the AES key itself.
_HASH_KEY_INFO = b"relay postback key hash v1"


def _hash_subkey(key: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=_HASH_KEY_INFO).derive(key)


class KeyRingError(ValueError):
    """A key ring that cannot be parsed or a ciphertext it cannot open."""


def _b64decode(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(padded)


class KeyRing:
    """Named AES-256 keys; the first one encrypts, any of them decrypts."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyRingError("the key ring is empty")
        for key_id, key in keys:
            if len(key) != 32:
                raise KeyRingError(f"key {key_id!r} is {len(key)} bytes, AES-256 needs 32")
            if not key_id.isalnum():
                raise KeyRingError(f"key id {key_id!r} must be alphanumeric")
        if len({key_id for key_id, _ in keys}) != len(keys):
            raise KeyRingError("each key id may appear only once in the ring")
        self._primary = keys[0][0]
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self._hash_keys = {key_id: _hash_subkey(key) for key_id, key in keys}
        self._raw = dict(keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ring's key IDs, the primary first."""
        return tuple(self._keys)

    @classmethod
    def parse(cls, spec: str) -> "KeyRing":
        """Parse `kid:base64key[,kid:base64key...]` (standard or URL-safe base64)."""
        keys: list[tuple[str, bytes]] = []
        for part in spec.split(","):
            key_id, sep, encoded = part.strip().partition(":")
            if not sep:
                raise KeyRingError("each key must be written 'key_id:base64key'")
            try:
                key = _b64decode(encoded.strip().replace("+", "-").replace("/", "_"))
            except (binascii.Error, ValueError) as exc:
                raise KeyRingError(f"key {key_id!r} is not valid base64") from exc
            keys.append((key_id.strip(), key))
        return cls(keys)

    @staticmethod
    def generate_spec(key_id: str = "k1") -> str:
        """A new one-key ring spec, for embedded mode's first start."""
        return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode('ascii')}"

    def encrypt(self, plaintext: str, associated_data: str) -> str:
        """Encrypt with the primary key; `associated_data` (the pixel ID) binds the owner."""
        key_id, sealed = self.seal(plaintext.encode("utf-8"), associated_data.encode("utf-8"))
        body = base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")
        return f"v1.{key_id}.{body}"

    def decrypt(self, ciphertext: str, associated_data: str) -> str:
        """Open a ciphertext made by any key of the ring for the same associated data."""
        version, _, rest = ciphertext.partition(".")
        key_id, _, body = rest.partition(".")
        if version != "v1" or not body:
            raise KeyRingError("not a Relay v1 ciphertext")
        try:
            raw = _b64decode(body)
        except (binascii.Error, ValueError) as exc:
            raise KeyRingError("ciphertext is not valid base64") from exc
        return self.open(key_id, raw, associated_data.encode()).decode("utf-8")

    def seal(self, plaintext: bytes, associated_data: bytes) -> tuple[str, bytes]:
        """AES-256-GCM under the primary key: its key ID and `nonce || ciphertext+tag`."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._primary].encrypt(nonce, plaintext, associated_data)
        return self._primary, nonce + sealed

    def open(self, key_id: str, sealed: bytes, associated_data: bytes) -> bytes:
        """Open what `seal` made with the ring's key `key_id`, for the same associated data."""
        aead = self._keys.get(key_id)
        if aead is None:
            raise KeyRingError(f"ciphertext was made with key {key_id!r}, not in the ring")
        try:
            return aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], associated_data)
        except InvalidTag as exc:
            raise KeyRingError("ciphertext does not open with this key and owner") from exc

    def keyed_hash(self, value: str, key_id: str | None = None) -> str:
        """`v1.{key_id}.{mac}`: HMAC-SHA256 of `value` under the key's hash subkey (the
        primary's by default). Deterministic, so a stored hash can be looked up."""
        key_id = key_id or self._primary
        subkey = self._hash_keys.get(key_id)
        if subkey is None:
            raise KeyRingError(f"key {key_id!r} is not in the ring")
        # surrogatepass: any str hashes (and simply matches nothing) instead of raising.
        mac = hmac.new(subkey, value.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return f"v1.{key_id}.{base64.urlsafe_b64encode(mac).decode('ascii').rstrip('=')}"

    def subkey(self, purpose: str, key_id: str | None = None) -> bytes:
        """A 32-byte key for `purpose` (e.g. signing the console's sessions), derived with
        HKDF from the ring's key `key_id` (the primary's by default): stable across
        restarts, and never the AES key or the postback-key hash subkey."""
        key_id = key_id or self._primary
        key = self._raw.get(key_id)
        if key is None:
            raise KeyRingError(f"key {key_id!r} is not in the ring")
        info = b"relay subkey v1: " + purpose.encode()
        return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(key)

    def keyed_hashes(self, value: str) -> list[str]:
        """`value`'s keyed hash under every key of the ring, the primary's first."""
        return [self.keyed_hash(value, key_id) for key_id in self._keys]


def hash_key_id(keyed_hash: str) -> str:
    """The ring key ID a stored keyed hash was made with ('' if it is not one)."""
    version, _, rest = keyed_hash.partition(".")
    return rest.partition(".")[0] if version == "v1" else ""
