"""Workspace settings: the timezone every time the API and the console show is in."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.schemas import SettingsIn
from relay.core.errors import InvalidField
from relay.runtime import Runtime


async def get_settings(runtime: Runtime) -> SettingsIn:
    """The workspace's settings; the timezone is UTC until one is set."""
    timezone = await runtime.run(runtime.config.get_setting, "timezone")
    return SettingsIn(timezone=timezone or "UTC")


async def put_settings(runtime: Runtime, body: SettingsIn) -> SettingsIn:
    """Store the workspace timezone; a name that is not an IANA zone is a 422 naming
    `timezone`."""
    try:
        ZoneInfo(body.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(f"unknown IANA timezone {body.timezone!r}", "timezone") from None
    await runtime.run(runtime.config.put_setting, "timezone", body.timezone)
    return body


async def workspace_zone(runtime: Runtime) -> ZoneInfo:
    """The workspace's timezone, read from the store (UTC if none is set)."""
    name = await runtime.run(runtime.config.get_setting, "timezone")
    return ZoneInfo(name or "UTC")
