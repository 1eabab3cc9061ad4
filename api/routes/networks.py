"""Networks: who sends postbacks, each with its secret postback key."""

from fastapi import APIRouter, Response

from api.crud import fetch, patched, remove, save
from api.deps import AdminDep, RuntimeDep
from api.schemas import NetworkIn, NetworkPatch
from relay.ids import new_resource_id, new_secret
from relay.models import Network
from relay.store.rows import utc_now

router = APIRouter(prefix="/api/networks", tags=["networks"], dependencies=[AdminDep])


@router.post("", status_code=201, response_model=Network)
async def create_network(body: NetworkIn, runtime: RuntimeDep) -> Network:
    """Create a network; the answer holds its generated `postback_key`."""
    now = utc_now()
    network = Network(
        id=new_resource_id("net"),
        name=body.name,
        postback_key=new_secret(),
        created_at=now,
        updated_at=now,
    )
    return await save(runtime, network)


@router.get("", response_model=list[Network])
async def list_networks(runtime: RuntimeDep) -> list[Network]:
    return await runtime.run(runtime.config.find, Network)


@router.get("/{network_id}", response_model=Network)
async def get_network(network_id: str, runtime: RuntimeDep) -> Network:
    return await fetch(runtime, Network, network_id, "network")


@router.patch("/{network_id}", response_model=Network)
async def update_network(network_id: str, body: NetworkPatch, runtime: RuntimeDep) -> Network:
    current = await fetch(runtime, Network, network_id, "network")
    return await save(runtime, patched(current, body))


@router.delete("/{network_id}", status_code=204)
async def delete_network(network_id: str, runtime: RuntimeDep) -> Response:
    """Delete a network: its postback key stops working; its conversions stay."""
    await fetch(runtime, Network, network_id, "network")
    await remove(runtime, "networks", network_id)
    return Response(status_code=204)
