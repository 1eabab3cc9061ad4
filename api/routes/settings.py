"""Workspace settings: the timezone every time the API returns is shown in."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter

from api.deps import AdminDep, RuntimeDep
from api.schemas import SettingsIn
from relay.core.errors import InvalidField

router = APIRouter(prefix="/api/settings", tags=["settings"], dependencies=[AdminDep])


@router.get("", response_model=SettingsIn)
async def get_settings(runtime: RuntimeDep) -> SettingsIn:
    timezone = await runtime.run(runtime.config.get_setting, "timezone")
    return SettingsIn(timezone=timezone or "UTC")


@router.put("", response_model=SettingsIn)
async def put_settings(body: SettingsIn, runtime: RuntimeDep) -> SettingsIn:
    """Set the workspace timezone (an IANA name such as `America/New_York`)."""
    try:
        ZoneInfo(body.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(f"unknown IANA timezone {body.timezone!r}", "timezone") from None
    await runtime.run(runtime.config.put_setting, "timezone", body.timezone)
    return body
