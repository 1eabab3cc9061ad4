"""Secrets: given by the environment, or (embedded mode only) generated once into the data dir."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from relay.crypto import KeyRing
from relay.ids import new_secret
from relay.settings import Settings


class MissingSecret(RuntimeError):
    """Distributed mode refuses to start without its secrets."""


@dataclass(frozen=True)
class Secrets:
    keys: KeyRing
    admin_token: str


def _load_or_create(path: Path) -> dict[str, str]:
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text("utf-8"))
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    created = {"encryption_key": KeyRing.generate_spec(), "admin_token": new_secret()}
    # Written 0600 and atomically, so a crash never leaves a half-written key behind.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(created, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return created


def resolve_secrets(settings: Settings, embedded: bool) -> Secrets:
    """Environment first; embedded mode fills the gaps from `{data_dir}/secrets.json`."""
    key_spec = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    if not (key_spec and token):
        if not embedded:
            missing = [
                name
                for name, value in (
                    ("RELAY_ENCRYPTION_KEY", key_spec),
                    ("RELAY_ADMIN_TOKEN", token),
                )
                if not value
            ]
            raise MissingSecret(f"distributed mode needs {', '.join(missing)} to be set")
        stored = _load_or_create(settings.data_dir / "secrets.json")
        key_spec = key_spec or stored["encryption_key"]
        token = token or stored["admin_token"]
    return Secrets(keys=KeyRing.parse(key_spec), admin_token=token)
