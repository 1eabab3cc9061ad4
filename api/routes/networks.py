"""Networks: who sends postbacks, each with its secret postback key. Relay stores only a
keyed hash of the key, so it is shown once: when the network is created or its key rotated
(the behaviour is api/services/networks.py's)."""

from fastapi import APIRouter, Response

from api.deps import AdminDep, RuntimeDep
from api.schemas import KeyRotationIn, NetworkIn, NetworkPatch
from api.services import networks
from api.services.networks import NetworkOut, NetworkWithKey

router = APIRouter(prefix="/api/networks", tags=["networks"], dependencies=[AdminDep])


@router.post("", status_code=201, response_model=NetworkWithKey)
async def create_network(body: NetworkIn, runtime: RuntimeDep) -> NetworkWithKey:
    """Create a network; the answer holds its generated `postback_key`, shown only here."""
    return await networks.create_network(runtime, body)


@router.get("", response_model=list[NetworkOut])
async def list_networks(runtime: RuntimeDep) -> list[NetworkOut]:
    return await networks.list_networks(runtime)


@router.get("/{network_id}", response_model=NetworkOut)
async def get_network(network_id: str, runtime: RuntimeDep) -> NetworkOut:
    return await networks.get_network(runtime, network_id)


@router.patch("/{network_id}", response_model=NetworkOut)
async def update_network(network_id: str, body: NetworkPatch, runtime: RuntimeDep) -> NetworkOut:
    return await networks.update_network(runtime, network_id, body)


@router.post("/{network_id}/rotate-key", response_model=NetworkWithKey)
async def rotate_network_key(
    network_id: str, runtime: RuntimeDep, body: KeyRotationIn | None = None
) -> NetworkWithKey:
    """Give the network a new postback key, shown only in this answer. The replaced key is
    refused at once, or accepted `grace_hours` longer; a key an earlier rotation replaced
    stops working now."""
    return await networks.rotate_network_key(runtime, network_id, body)


@router.delete("/{network_id}", status_code=204)
async def delete_network(network_id: str, runtime: RuntimeDep) -> Response:
    """Delete a network: its postback keys stop working; its conversions stay."""
    await networks.delete_network(runtime, network_id)
    return Response(status_code=204)
