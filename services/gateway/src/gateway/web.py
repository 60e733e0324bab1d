"""Web sessions: how the portal knows who is there, in which language, for which institution.

The portal's session cookie (`vp_session`) holds the same signed token that the JSON API takes as
`Authorization: Bearer` (gateway.sessions): the id of a session that accounts opened on login. It is HttpOnly
(no page script can read it), SameSite=Lax, Secure when `GATEWAY_COOKIE_SECURE` is set (behind TLS), and its
identity is read through the same cache as the API's, so that a logout, a password change or a removal made
in accounts ends the web session at once (through this gateway) or within `identity_cache_seconds` (through
another). The API never reads the cookie: only the portal's pages and forms do, and every form is protected
against cross-site requests by Litestar's CSRF middleware (its token in a cookie and in each form).

The language is the person's own (`language` in accounts, which their emails use too) once logged in, else
the `vp_lang` cookie that the language switch sets, else French.
"""

import uuid
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.response import Redirect

from gateway import i18n
from gateway.sessions import Sessions, read_identity
from gateway.upstream import Upstream

SESSION_COOKIE = "vp_session"
LANGUAGE_COOKIE = "vp_lang"
ACCOUNT_COOKIE = "vp_account"  # which of the person's institutions "Mon compte" shows
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


class LoginRequired(Exception):
    """A page that needs a person was asked for without a live web session: the login page, then back."""


async def visitor(request: Request[Any, Any, Any], accounts: Upstream, sessions: Sessions) -> dict[str, Any] | None:
    """The logged-in person (their identity from accounts, with `session_id`), or None; sets the request's
    language either way."""
    identity = None
    token = request.cookies.get(SESSION_COOKIE)
    session_id = sessions.read(token) if token else None
    if session_id is not None:
        identity = await sessions.identities.get(session_id, lambda: read_identity(accounts, session_id))
    language = identity.get("language") if identity else request.cookies.get(LANGUAGE_COOKIE)
    i18n.current_language.set(i18n.language_or_default(language))
    if identity is None:
        return None
    return {**identity, "session_id": str(session_id)}


async def person(visitor: dict[str, Any] | None) -> dict[str, Any]:
    """The logged-in person; the login page for anyone else."""
    if visitor is None:
        raise LoginRequired
    return visitor


def login_redirect(request: Request[Any, Any, Any], _: LoginRequired) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response: Response[Any] = Redirect(f"/login?next={quote(target, safe='')}", status_code=303)
    if SESSION_COOKIE in request.cookies:  # its session has ended: the cookie is of no use any more
        response.delete_cookie(SESSION_COOKIE)
    return response


def safe_next(target: str | None, default: str = "/account") -> str:
    """Where to go after a form: a path on this site only (never `//other.example` nor `https://...`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def open_web_session(response: Response[Any], token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, secure=secure, samesite="lax", path="/")


def end_web_session(response: Response[Any]) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(ACCOUNT_COOKIE, path="/")


def remember_language(response: Response[Any], language: str, secure: bool) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_SECONDS, httponly=True, secure=secure, samesite="lax"
    )


def current_account(request: Request[Any, Any, Any], person: dict[str, Any]) -> uuid.UUID | None:
    """The institution the person is looking at: the one chosen last (cookie) if they still belong to it, else
    the first they manage, else the first they belong to; None for someone of no institution (an organiser)."""
    memberships: dict[str, str] = person.get("memberships", {})
    chosen = request.cookies.get(ACCOUNT_COOKIE)
    if chosen in memberships:
        return uuid.UUID(chosen)
    ranked = sorted(memberships, key=lambda account: (memberships[account] != "manager", account))
    return uuid.UUID(ranked[0]) if ranked else None
