"""The portal's test world: a browser-like httpx client that keeps cookies, reads each form's CSRF token and
logs in through the login form, as a person does (the JSON API's helpers are in api_world.py)."""

import re

import httpx

from api_world import PASSWORD

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def submit(
    client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str], **options: object
) -> httpx.Response:
    """GET `page`, then POST `fields` to `action` with the page's CSRF token, as its form would."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={"_csrf_token": csrf_token(shown.text), **fields}, **options)  # type: ignore[arg-type]


async def portal_login(base_url: str, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
    """A client with a live web session (and the CSRF cookie); the caller closes it."""
    client = httpx.AsyncClient(base_url=base_url, timeout=15)
    done = await submit(client, "/login", "/login", {"email": email, "password": password})
    assert done.status_code == 303 and "vp_session" in client.cookies, done.text
    return client
