"""Workspace settings: the timezone every time the API returns is shown in (the behaviour
is api/services/settings.py's)."""

from fastapi import APIRouter

from api.deps import AdminDep, RuntimeDep
from api.schemas import SettingsIn
from api.services import settings

router = APIRouter(prefix="/api/settings", tags=["settings"], dependencies=[AdminDep])


@router.get("", response_model=SettingsIn)
async def get_settings(runtime: RuntimeDep) -> SettingsIn:
    return await settings.get_settings(runtime)


@router.put("", response_model=SettingsIn)
async def put_settings(body: SettingsIn, runtime: RuntimeDep) -> SettingsIn:
    """Set the workspace timezone (an IANA name such as `America/New_York`)."""
    return await settings.put_settings(runtime, body)
