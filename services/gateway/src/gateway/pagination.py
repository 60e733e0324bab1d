"""Pages of the public API's lists, one convention for all (docs/api.md, "Pagination").

A list takes `limit` (1 to MAX_LIMIT, DEFAULT_LIMIT when absent) and `offset` (0 or more: how many to skip), and
answers its items with `total` (how many there are in all), `limit` and `offset` (those applied), and a `Link`
header (RFC 8288) to the `next` page while there is one and to the `prev` page after the first, relative to the
request's path, other query parameters kept. Out-of-range values are refused (400 `invalid_request`, naming the
parameter), never clamped in silence; an offset past the end is an empty page.

A route declares `limit: Limit = DEFAULT_LIMIT, offset: Offset = 0` and answers `page(request, body, total, limit,
offset)` with the items the owning service returned for them.
"""

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.params import Parameter

from servicekit.inputs import Offset

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"how many at most (1 to {MAX_LIMIT})")]

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Limit", "Offset", "links", "page"]


def links(request: Request[Any, Any, Any], total: int, limit: int, offset: int) -> str | None:
    """The Link header's value for this page, None when it is the only one."""
    found = []
    if offset + limit < total:
        found.append(_link(request, "next", limit, offset + limit))
    if offset > 0:
        found.append(_link(request, "prev", limit, max(0, min(offset, total) - limit)))
    return ", ".join(found) or None


def page(request: Request[Any, Any, Any], body: dict[str, Any], total: int, limit: int, offset: int) -> Response[Any]:
    """`body` (the page's items, and whatever else the list answers) with `total`, `limit`, `offset` and Link."""
    link = links(request, total, limit, offset)
    return Response(
        {**body, "total": total, "limit": limit, "offset": offset}, headers={"Link": link} if link else None
    )


def _link(request: Request[Any, Any, Any], rel: str, limit: int, offset: int) -> str:
    query = {key: value for key, value in request.query_params.items() if key not in ("limit", "offset")}
    query |= {"limit": str(limit), "offset": str(offset)}
    return f'<{request.url.path}?{urlencode(query)}>; rel="{rel}"'
