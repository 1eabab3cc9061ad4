"""The Networks pages: the list and a new network, one network with the exact postback URL
to give it (generic, and with the macros of common networks and trackers filled in),
rename, key rotation and delete. Everything goes through the services the JSON API calls
too (api/services/networks.py) and its schemas, so the pages and the API agree.

A network's postback key is shown once, in the answer to the POST that created or rotated
it (rendered directly: never in a redirect, a cookie or a log); Relay keeps only its hash,
so every later page shows the URL with a placeholder for the key."""

import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.schemas import KeyRotationIn, NetworkIn, NetworkPatch
from api.services.listing import in_zone
from api.services.networks import (
    NetworkOut,
    NetworkWithKey,
    create_network,
    delete_network,
    get_network,
    list_networks,
    rotate_network_key,
    update_network,
)
from api.services.settings import workspace_zone
from api.ui.campaign_deletes import UNCONFIRMED
from api.ui.campaign_forms import ticked
from api.ui.pages import ConsoleRoute, FormDep, SessionDep, field_errors, public_base, render
from api.ui.postback_macros import PLATFORMS, Platform
from api.ui.recent import recent_activity
from relay.core.errors import NotFound
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(route_class=ConsoleRoute)

KEY_PLACEHOLDER = "YOUR_POSTBACK_KEY"
# The generic URL: the network replaces each with its own macro (docs/postback-contract.md).
GENERIC = {
    "click_id": "CLICK_ID",
    "payout": "PAYOUT",
    "currency": "CURRENCY",
    "txid": "TXID",
    "event": "EVENT",
}
DONE = {
    "renamed": "Network renamed.",
    "deleted": "Network deleted.",
    # A form sent again (a reload of the page that showed the key): nothing was done again.
    "created_before": "This network was created when this form was first sent, and its key "
    "was shown then, once. Nothing was created again. Did not copy the key? Rotate it below.",
    "rotated_before": "The key was already rotated since this form was shown (was the page "
    "that showed the new key reloaded?). Nothing was rotated again: the key shown then is the "
    "one that works. Lost it? Rotate again below.",
}
FORM_ID = re.compile(r"[0-9a-f]{16}")  # the ID the New network form gives its network


def postback_url(base: str, key: str, values: dict[str, str | None]) -> str:
    """`base/postback?key=…&…`; values are kept as written, so a network's macro (`{sub1}`,
    `#s2#`) stays as the network expects it. A None value is not sent."""
    pairs = [("key", key), *((name, v) for name, v in values.items() if v)]
    return f"{base}/postback?" + "&".join(f"{name}={value}" for name, value in pairs)


def platform_url(base: str, key: str, platform: Platform) -> str:
    return postback_url(
        base,
        key,
        {
            "click_id": platform.click_id,
            "payout": platform.payout,
            "currency": platform.currency,
            "txid": platform.txid,
            "event": platform.event,
        },
    )


def _urls(request: Request, runtime: Runtime, key: str) -> dict[str, Any]:
    base = public_base(request, runtime)
    return {
        "url": postback_url(base, key, dict(GENERIC)),
        "variants": [(p, platform_url(base, key, p)) for p in PLATFORMS],
        "public_url_set": runtime.settings.public_url is not None,
    }


def _still_accepted(network: NetworkOut, now: datetime) -> bool:
    until = network.previous_key_valid_until
    return until is not None and until > now


async def _list_page(
    request: Request,
    runtime: Runtime,
    status: int = 200,
    raw: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    zone = await workspace_zone(runtime)
    networks = sorted(await list_networks(runtime), key=lambda n: n.name.lower())
    now = utc_now()
    recent = await recent_activity(runtime, "network_id", now, zone)
    return render(
        request,
        "networks.html",
        status,
        networks=[(in_zone(n, zone), _still_accepted(n, now)) for n in networks],
        recent=recent,
        zone=str(zone),
        raw=raw or {},
        errors=errors or {},
        done=DONE.get(done, ""),
        form_id=secrets.token_hex(8),
    )


async def _network_page(
    request: Request,
    runtime: Runtime,
    network_id: str,
    status: int = 200,
    raw: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    network = await get_network(runtime, network_id)
    zone = await workspace_zone(runtime)
    return render(
        request,
        "network.html",
        status,
        network=in_zone(network, zone),
        previous_accepted=_still_accepted(network, utc_now()),
        zone=str(zone),
        raw=raw or {},
        errors=errors or {},
        done=DONE.get(done, ""),
        **_urls(request, runtime, KEY_PLACEHOLDER),
    )


async def _key_page(
    request: Request, runtime: Runtime, created: NetworkWithKey, rotated: bool
) -> Response:
    """The one answer that shows the key: rendered here, never redirected to."""
    zone = await workspace_zone(runtime)
    shown = in_zone(NetworkOut.model_validate(created.model_dump(exclude={"postback_key"})), zone)
    return render(
        request,
        "network_key.html",
        network=shown,
        key=created.postback_key,
        rotated=rotated,
        zone=str(zone),
        **_urls(request, runtime, created.postback_key),
    )


@router.get("/networks")
async def networks_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, done: str = ""
) -> Response:
    """Every network (name, created, whether a replaced key is still accepted) and the
    New network form."""
    return await _list_page(request, runtime, done=done)


@router.post("/networks")
async def new_network(request: Request, runtime: RuntimeDep, form: FormDep) -> Response:
    """Create a network as `POST /api/networks` does; the answer shows its key once."""
    raw = {"name": form.get("name", "")}
    try:
        body = NetworkIn.model_validate(raw)
    except ValidationError as exc:
        return await _list_page(request, runtime, 422, raw, field_errors(exc))
    form_id = form.get("form_id", "")
    network_id = f"net_{form_id}" if FORM_ID.fullmatch(form_id) else None
    if network_id is not None and await _exists(runtime, network_id):
        return await _network_page(request, runtime, network_id, 409, done="created_before")
    created = await create_network(runtime, body, network_id)
    return await _key_page(request, runtime, created, rotated=False)


async def _exists(runtime: Runtime, network_id: str) -> bool:
    try:
        await get_network(runtime, network_id)
    except NotFound:
        return False
    return True


@router.get("/networks/{network_id}")
async def network_page(
    request: Request, network_id: str, runtime: RuntimeDep, session: SessionDep, done: str = ""
) -> Response:
    """One network: its postback URL with a placeholder for the key (Relay keeps only a
    hash of it), rename, key rotation and delete."""
    return await _network_page(request, runtime, network_id, done=done)


@router.post("/networks/{network_id}/rename")
async def rename_network(
    request: Request, network_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    raw = {"name": form.get("name", "")}
    try:
        body = NetworkPatch.model_validate(raw)
    except ValidationError as exc:
        return await _network_page(request, runtime, network_id, 422, raw, field_errors(exc))
    await update_network(runtime, network_id, body)
    target = f"/ui/networks/{quote(network_id, safe='')}?done=renamed"
    return RedirectResponse(target, status_code=303)


@router.post("/networks/{network_id}/rotate-key")
async def rotate_key(
    request: Request, network_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """A new key, as `POST /api/networks/{id}/rotate-key` makes it; the replaced one is
    accepted `grace_hours` longer (0 or blank: refused at once). The answer shows the key."""
    raw = {"grace_hours": form.get("grace_hours", "").strip()}
    try:
        body = KeyRotationIn.model_validate({"grace_hours": raw["grace_hours"] or 0})
    except ValidationError as exc:
        return await _network_page(request, runtime, network_id, 422, raw, field_errors(exc))
    if _changed_since(form.get("seen", ""), (await get_network(runtime, network_id)).updated_at):
        return await _network_page(request, runtime, network_id, 409, done="rotated_before")
    rotated = await rotate_network_key(runtime, network_id, body)
    return await _key_page(request, runtime, rotated, rotated=True)


def _changed_since(seen: str, updated_at: datetime) -> bool:
    """Whether the network changed after the form was shown (`seen`: its `updated_at`
    then); a form without it is not checked."""
    try:
        return bool(seen) and datetime.fromisoformat(seen) != updated_at
    except ValueError:
        return True


@router.post("/networks/{network_id}/delete")
async def remove_network(
    request: Request, network_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Delete as `DELETE /api/networks/{id}` does (its keys stop working, its conversions
    stay), once the form's "Yes, delete" box is ticked; unticked, the page again (422)
    with the message next to the box, and nothing deleted."""
    if not ticked(form, "confirm"):
        errors = {"confirm": UNCONFIRMED}
        return await _network_page(request, runtime, network_id, 422, errors=errors)
    await delete_network(runtime, network_id)
    return RedirectResponse("/ui/networks?done=deleted", status_code=303)
