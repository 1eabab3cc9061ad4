"""Networks: who sends postbacks, each with its secret postback key. Relay stores only a
keyed hash of the key, so it is shown once: when the network is created or its key rotated."""

from datetime import datetime, timedelta

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.crud import fetch, patched, remove, save
from api.deps import AdminDep, RuntimeDep
from api.schemas import KeyRotationIn, NetworkIn, NetworkPatch
from relay.core.ids import new_resource_id, new_secret
from relay.domain.models import Network
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(prefix="/api/networks", tags=["networks"], dependencies=[AdminDep])


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
    key = new_secret()
    saved = await save(
        runtime, network.model_copy(update={"postback_key_hash": runtime.keys.keyed_hash(key)})
    )
    return NetworkWithKey(**NetworkOut.of(saved).model_dump(), postback_key=key)


@router.post("", status_code=201, response_model=NetworkWithKey)
async def create_network(body: NetworkIn, runtime: RuntimeDep) -> NetworkWithKey:
    """Create a network; the answer holds its generated `postback_key`, shown only here."""
    return await add_network(runtime, body)


async def add_network(
    runtime: Runtime, body: NetworkIn, network_id: str | None = None
) -> NetworkWithKey:
    """A new network with a new key, under `network_id` if given (the console's form
    names the network it creates, so sending it again cannot create a second one)."""
    now = utc_now()
    network = Network(
        id=network_id or new_resource_id("net"), name=body.name, created_at=now, updated_at=now
    )
    return await _save_with_new_key(runtime, network)


@router.get("", response_model=list[NetworkOut])
async def list_networks(runtime: RuntimeDep) -> list[NetworkOut]:
    return [NetworkOut.of(n) for n in await runtime.run(runtime.config.find, Network)]


@router.get("/{network_id}", response_model=NetworkOut)
async def get_network(network_id: str, runtime: RuntimeDep) -> NetworkOut:
    return NetworkOut.of(await fetch(runtime, Network, network_id, "network"))


@router.patch("/{network_id}", response_model=NetworkOut)
async def update_network(network_id: str, body: NetworkPatch, runtime: RuntimeDep) -> NetworkOut:
    current = await fetch(runtime, Network, network_id, "network")
    return NetworkOut.of(await save(runtime, patched(current, body)))


@router.post("/{network_id}/rotate-key", response_model=NetworkWithKey)
async def rotate_network_key(
    network_id: str, runtime: RuntimeDep, body: KeyRotationIn | None = None
) -> NetworkWithKey:
    """Give the network a new postback key, shown only in this answer. The replaced key is
    refused at once, or accepted `grace_hours` longer; a key an earlier rotation replaced
    stops working now."""
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


@router.delete("/{network_id}", status_code=204)
async def delete_network(network_id: str, runtime: RuntimeDep) -> Response:
    """Delete a network: its postback keys stop working; its conversions stay."""
    await fetch(runtime, Network, network_id, "network")
    await remove(runtime, "networks", network_id)
    return Response(status_code=204)
