"""The console for media buyers, served under /ui: server-rendered pages (Jinja2), no
build step and no external assets. Signed in with the admin token (`auth.py`; the session
cookie is api/services/sessions.py's); every page's headers, errors and checks are in
`pages.py`."""

from fastapi import APIRouter

from api.services.sessions import PATH
from api.ui import auth, campaigns, conversions, export, logs, networks, overview, settings

router = APIRouter()
router.include_router(auth.router, prefix=PATH)
router.include_router(overview.router, prefix=PATH)
router.include_router(conversions.router, prefix=PATH)
router.include_router(export.router, prefix=PATH)
router.include_router(logs.router, prefix=PATH)
router.include_router(campaigns.router, prefix=PATH)
router.include_router(networks.router, prefix=PATH)
router.include_router(settings.router, prefix=PATH)
# Last: any other /ui path is a page saying it does not exist.
router.include_router(auth.not_found_router, prefix=PATH)
