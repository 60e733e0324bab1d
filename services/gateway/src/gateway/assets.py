"""The portal's static files (`gateway/static`), served by the gateway itself: no build step, no other origin.
Their URLs carry a digest of their content (`/static/portal.css?v=1a2b3c4d`), so browsers may keep them a
year: a changed file gets a new URL."""

import hashlib
from pathlib import Path

from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

STATIC = Path(__file__).parent / "static"
DIGESTS = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for path in STATIC.iterdir()}


def static_url(name: str) -> str:
    return f"/static/{name}?v={DIGESTS[name]}"


def static_files() -> ControllerRouterHandler:
    return create_static_files_router(
        path="/static",
        directories=[STATIC],
        cache_control=CacheControlHeader(max_age=365 * 24 * 3600, public=True, immutable=True),
        include_in_schema=False,
    )
