"""The console's overview pages (being built)."""

from fastapi import APIRouter

from api.ui.pages import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
