"""Networks: who sends postbacks, each with its secret postback key. Relay stores only a
keyed hash of the key, so it is shown once: when the network is created or its key rotated."""

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from api.crud import fetch, patched, remove, save
from api.schemas import KeyRotationIn, NetworkIn, NetworkPatch
from relay.core.ids import new_resource_id, new_secret
from relay.domain.models import Network
from relay.runtime import Runtime
from relay.store.rows import utc_now


class NetworkOut(BaseModel):
    """A network as the API shows it: never its postback key, nor the key's hash."""

    id: str
    name: str
    previous_key_valid_until: datetime | None = Field(
        default=None,
        description="Until when the key the last rotation replaced is still accepted; null "
        "if it was refused at once.",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, network: Network) -> "NetworkOut":
        return cls.model_validate(network.model_dump(include=set(cls.model_fields)))


class NetworkWithKey(NetworkOut):
    postback_key: str = Field(
        description="The network's postback key, shown only in this answer: Relay keeps a "
        "keyed hash of it and cannot show it again (rotate the key if it is lost)."
    )


async def _save_with_new_key(runtime: Runtime, network: Network) -> NetworkWithKey:
    """Save the network with a new key's hash; the answer holds the key itself."""
    key = new_secret()
    saved = await save(
        runtime, network.model_copy(update={"postback_key_hash": runtime.keys.keyed_hash(key)})
    )
    return NetworkWithKey(**NetworkOut.of(saved).model_dump(), postback_key=key)


async def create_network(
    runtime: Runtime, body: NetworkIn, network_id: str | None = None
) -> NetworkWithKey:
    """A new network with a new key, under `network_id` if given (the console's form
    names the network it creates, so sending it again cannot create a second one)."""
    now = utc_now()
    network = Network(
        id=network_id or new_resource_id("net"), name=body.name, created_at=now, updated_at=now
    )
    return await _save_with_new_key(runtime, network)


async def list_networks(runtime: Runtime) -> list[NetworkOut]:
    """Every live network, without its key."""
    return [NetworkOut.of(n) for n in await runtime.run(runtime.config.find, Network)]


async def get_network(runtime: Runtime, network_id: str) -> NetworkOut:
    """The network, or a 404 naming `network_id`."""
    return NetworkOut.of(await fetch(runtime, Network, network_id, "network"))


async def update_network(runtime: Runtime, network_id: str, body: NetworkPatch) -> NetworkOut:
    """The network with the fields `body` sets changed."""
    current = await fetch(runtime, Network, network_id, "network")
    return NetworkOut.of(await save(runtime, patched(current, body)))


async def rotate_network_key(
    runtime: Runtime, network_id: str, body: KeyRotationIn | None = None
) -> NetworkWithKey:
    """A new postback key for the network. The replaced key is refused at once, or
    accepted `grace_hours` longer; a key an earlier rotation replaced stops working now."""
    current = await fetch(runtime, Network, network_id, "network")
    grace = timedelta(seconds=round(body.grace_hours * 3600) if body else 0)
    now = utc_now()
    rotated = current.model_copy(
        update={
            "previous_key_hash": current.postback_key_hash if grace else "",
            "previous_key_valid_until": now + grace if grace else None,
            "updated_at": now,
        }
    )
    return await _save_with_new_key(runtime, rotated)


async def delete_network(runtime: Runtime, network_id: str) -> None:
    """Delete the network (a 404 if there is none): its postback keys stop working; its
    conversions stay."""
    await fetch(runtime, Network, network_id, "network")
    await remove(runtime, "networks", network_id)
