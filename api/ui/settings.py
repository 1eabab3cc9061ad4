"""The Settings page: the workspace timezone every time is shown in, read and saved
through the services the JSON API calls too (api/services/settings.py's `get_settings` /
`put_settings`), so an unknown zone gets the API's message."""

from functools import cache
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.schemas import SettingsIn
from api.services.settings import get_settings, put_settings
from api.ui.pages import ConsoleRoute, FormDep, SessionDep, field_errors, render
from relay.core.errors import InvalidField
from relay.runtime import Runtime

router = APIRouter(route_class=ConsoleRoute)


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this Python knows, sorted: the field's suggestions."""
    return tuple(sorted(available_timezones()))


async def _page(
    request: Request,
    runtime: Runtime,
    status: int = 200,
    raw: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    current = (await get_settings(runtime)).timezone
    return render(
        request,
        "settings.html",
        status,
        current=current,
        raw=raw or {"timezone": current},
        errors=errors or {},
        zones=zone_names(),
        saved=saved,
    )


@router.get("/settings")
async def settings_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, saved: str = ""
) -> Response:
    return await _page(request, runtime, saved=saved == "1")


@router.post("/settings")
async def save_settings(request: Request, runtime: RuntimeDep, form: FormDep) -> Response:
    """Set the workspace timezone as `PUT /api/settings` does; then back to the page."""
    raw = {"timezone": form.get("timezone", "")}
    try:
        await put_settings(runtime, SettingsIn.model_validate(raw))
    except ValidationError as exc:
        return await _page(request, runtime, 422, raw, field_errors(exc))
    except InvalidField as exc:
        return await _page(request, runtime, exc.status_code, raw, {"timezone": exc.message})
    return RedirectResponse("/ui/settings?saved=1", status_code=303)
