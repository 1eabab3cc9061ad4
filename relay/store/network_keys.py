"""Postback keys at rest: the clear keys of rows written before migration 0007 are hashed at
start, and hashes made with a key the ring no longer holds are reported."""

import logging

from relay.core.crypto import KeyRing, hash_key_id
from relay.domain.models import Network
from relay.store.config import ConfigStore
from relay.store.pool import ClickHouse
from relay.store.rows import select_dicts

log = logging.getLogger(__name__)

_CLEAR = "postback_key != ''"


def hash_clear_postback_keys(client: ClickHouse, keys: KeyRing) -> int:
    """Give every live network that still has a clear key its keyed hash, then empty the
    clear column in every stored row version (older and deleted ones included). Idempotent:
    a crash half-way is finished by the next start. Returns the networks hashed now."""
    rows = select_dicts(
        client, f"SELECT id, postback_key FROM networks FINAL WHERE deleted = 0 AND {_CLEAR}"
    )
    store = ConfigStore(client)
    for row in rows:
        network = store.get(Network, str(row["id"]))
        if network is not None:  # the new row version leaves the clear column empty
            key_hash = keys.keyed_hash(str(row["postback_key"]))
            store.save(network.model_copy(update={"postback_key_hash": key_hash}))
    left = client.query(f"SELECT count() FROM networks WHERE {_CLEAR}").result_rows[0][0]
    if left:
        # A mutation rewrites the parts that hold clear keys; ClickHouse removes the parts
        # it replaced once they are unused (old_parts_lifetime).
        client.command(
            f"ALTER TABLE networks UPDATE postback_key = '' WHERE {_CLEAR} "
            "SETTINGS mutations_sync = 2"
        )
        log.info(
            "postback keys: hashed the keys of %d networks, erased %d clear keys at rest",
            len(rows),
            left,
        )
    return len(rows)


def report_stranded_postback_keys(client: ClickHouse, keys: KeyRing) -> list[str]:
    """Networks whose key was hashed with a ring key no longer configured: their postbacks
    are refused until that key is back in RELAY_ENCRYPTION_KEY or their key is rotated."""
    networks = ConfigStore(client).find(Network)
    stranded = [n.id for n in networks if hash_key_id(n.postback_key_hash) not in keys.key_ids]
    if stranded:
        log.error(
            "postback keys of %d networks were hashed with a key missing from "
            "RELAY_ENCRYPTION_KEY, so their postbacks are refused; put that key back in the "
            "ring or rotate their keys: %s",
            len(stranded),
            ", ".join(stranded),
        )
    return stranded
