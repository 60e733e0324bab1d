"""The dashboard of "Mon compte": one account at a glance, built from concurrent calls to the services
(docs/portal.md).

Each part of the dashboard is one function in PARTS, asking one service; the parts run at the same time, each
within `GATEWAY_DASHBOARD_TIMEOUT_SECONDS`. A part whose service is down, slow or failing is shown as
`{"status": "unavailable"}` and the others still come: the page degrades, it does not fail. A part that is not
for the caller (the members' counts, for a plain member) is `{"status": "hidden"}`; a part that came is
`{"status": "ok", ...}`. A service adds its part with a function and one line in PARTS.

Who may see it: the account's members and managers, and organisers; anyone else gets 404, as for every
account route (accounts.access). The caller's identity says it first (no call is made for a stranger); then
accounts' answer to the institution part decides (an organiser asking for an account that does not exist
gets 404). The identity itself comes from accounts, so without accounts nobody is authenticated and there is
no dashboard: accounts is the one service the page needs."""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlencode

from litestar import Controller, get

from gateway.openapi import BEARER, problems
from gateway.upstream import Upstream
from servicekit.http import ProblemError
from servicekit.logs import security_event

log = logging.getLogger(__name__)

RECENT_MAILS = 5
INSTITUTION_FIELDS = ("name", "kind", "identifier", "city", "postal_address", "contact_name", "closed_at")


@dataclass(frozen=True)
class Sources:
    """The services a dashboard is built from (by name: "accounts", "notifier", ...), and how long each part
    may take."""

    upstreams: Mapping[str, Upstream]
    timeout: float


@dataclass(frozen=True)
class Viewer:
    """Who looks at which account; `reads`: the answers asked for while building one dashboard, so that two
    parts drawn from the same answer (the institution and its members' counts: accounts' profile) make one call."""

    identity: dict[str, Any]
    account_id: uuid.UUID
    reads: dict[str, "asyncio.Future[Any]"] = field(default_factory=dict, compare=False, repr=False)

    @property
    def role(self) -> str | None:
        """manager, member, or None (an organiser who is not one of the account's people)."""
        role: str | None = self.identity.get("memberships", {}).get(str(self.account_id))
        return role

    @property
    def is_organiser(self) -> bool:
        return bool(self.identity.get("is_organiser"))


class Hidden(Exception):
    """The part is not for this viewer."""


class NotVisible(Exception):
    """The account is not visible to the viewer (accounts answered 404): the whole dashboard is 404."""


async def _read(upstream: Upstream, path: str, viewer: Viewer) -> Any:
    """The upstream's answer to GET `path` for the viewer, asked once per dashboard whichever parts need it
    (shielded: one part's timeout does not cancel the call another part waits for)."""
    key = f"{upstream.name} {path}"
    if key not in viewer.reads:
        call = asyncio.ensure_future(_fetch(upstream, path, viewer))
        call.add_done_callback(lambda done: done.cancelled() or done.exception())  # its failure is the parts' to tell
        viewer.reads[key] = call
    return await asyncio.shield(viewer.reads[key])


async def _fetch(upstream: Upstream, path: str, viewer: Viewer) -> Any:
    response = await upstream.call("GET", path, actor=viewer.identity["user_id"])
    if response.status_code == 200:
        return response.json()
    if response.status_code == 404:
        raise NotVisible
    if response.status_code == 403:
        raise Hidden
    raise ConnectionError(f"{upstream.name} answered {response.status_code}")


async def person(viewer: Viewer, sources: Sources) -> dict[str, Any]:
    """The caller, from their identity: no call."""
    identity = viewer.identity
    return {
        "name": identity["name"],
        "email": identity["email"],
        "language": identity["language"],
        "role": viewer.role,
        "is_organiser": viewer.is_organiser,
    }


async def _profile(viewer: Viewer, sources: Sources) -> Any:
    return await _read(sources.upstreams["accounts"], f"/internal/accounts/{viewer.account_id}/profile", viewer)


async def institution(viewer: Viewer, sources: Sources) -> dict[str, Any]:
    profile = await _profile(viewer, sources)
    return {name: profile.get(name) for name in INSTITUTION_FIELDS}


async def members(viewer: Viewer, sources: Sources) -> dict[str, Any]:
    """The counts of the account's people (its managers and organisers see them, as the members' list; accounts'
    profile gives them to those only)."""
    if viewer.role != "manager" and not viewer.is_organiser:
        raise Hidden
    counts: dict[str, Any] | None = (await _profile(viewer, sources)).get("member_counts")
    if counts is None:
        raise Hidden
    return counts


async def recent_mails(viewer: Viewer, sources: Sources) -> dict[str, Any]:
    """The last mails to the caller's own address and how they went, so that "I did not get the link" is
    answered by the person themself (sent, still being tried, or refused by their mail server)."""
    query = urlencode({"recipient": viewer.identity["email"], "limit": RECENT_MAILS})
    log_page = await _read(sources.upstreams["notifier"], f"/internal/deliveries?{query}", viewer)
    shown = ("template", "status", "created_at", "sent_at")
    return {"mails": [{name: mail[name] for name in shown} for mail in log_page["deliveries"]]}


async def wallet(viewer: Viewer, sources: Sources) -> dict[str, Any]:
    """The account's tokens: the balance, the live lots (those holding tokens) with their expiry, soonest first,
    and the tokens expiring within 30 days (billing's wallet; every viewer of the dashboard may see it)."""
    held = await _read(sources.upstreams["billing"], f"/internal/accounts/{viewer.account_id}/wallet", viewer)
    live = [lot for lot in held["lots"] if not lot["expired"] and lot["remaining"] > 0]
    shown = ("order_reference", "tokens", "remaining", "expires_at")
    return {
        "balance": held["balance"],
        "lots": [{name: lot.get(name) for name in shown} for lot in sorted(live, key=lambda lot: lot["expires_at"])],
        "expiring_soon": held["expiring_soon"],
    }


async def bouncing(viewer: Viewer, sources: Sources) -> dict[str, Any]:
    """The account's addresses whose mailbox refuses mail for good (the notifier's hard bounces), for its managers
    to fix: they change the address, then ask for it to be tried again."""
    if viewer.role != "manager":
        raise Hidden
    found = await _read(sources.upstreams["notifier"], f"/internal/accounts/{viewer.account_id}/bounces", viewer)
    return {"addresses": found["addresses"]}


Part = Callable[[Viewer, Sources], Awaitable[dict[str, Any]]]
PARTS: dict[str, Part] = {
    "person": person,
    "institution": institution,
    "members": members,
    "wallet": wallet,
    "recent_mails": recent_mails,
    "bouncing": bouncing,
}


async def _outcome(name: str, part: Part, viewer: Viewer, sources: Sources) -> dict[str, Any] | None:
    """The part as shown, or None when the account is not visible to the viewer."""
    try:
        return {"status": "ok"} | await asyncio.wait_for(part(viewer, sources), sources.timeout)
    except NotVisible:
        return None
    except Hidden:
        return {"status": "hidden"}
    except Exception as exc:  # down, slow or failing: that part only
        log.warning("dashboard part %s unavailable: %s", name, type(exc).__name__)
        return {"status": "unavailable"}


async def build_dashboard(identity: dict[str, Any], account_id: uuid.UUID, sources: Sources) -> dict[str, Any]:
    """Every part of `account_id`'s dashboard for `identity` (see the module's docstring); 404 `not_found`
    when the account is not visible to them."""
    viewer = Viewer(identity, account_id)
    if viewer.role is None and not viewer.is_organiser:
        _refuse(viewer)
    outcomes = await asyncio.gather(*(_outcome(name, part, viewer, sources) for name, part in PARTS.items()))
    if any(outcome is None for outcome in outcomes):
        _refuse(viewer)
    return {name: outcome for name, outcome in zip(PARTS, outcomes, strict=True)}


def _refuse(viewer: Viewer) -> NoReturn:
    user_id = viewer.identity.get("user_id")
    security_event("access_denied", outcome="not_found", user_id=user_id, account_id=viewer.account_id)
    raise ProblemError(404, "not_found", "Not found")


class DashboardApi(Controller):
    path = "/api/v1/accounts/{account_id:uuid}/dashboard"
    tags = ["accounts"]

    @get(
        "/",
        summary='"Mon compte": the account at a glance; a part whose service does not answer is "unavailable"',
        description="Parts: `person`, `institution`, `members` (counts; managers and organisers), `wallet` (the "
        "token balance, the live lots with their expiry, the tokens expiring within 30 days), `recent_mails` "
        "(the last mails to the caller's own address), `bouncing` (the account's addresses whose mailbox refuses "
        'mail, to fix; managers). Each is `{"status": "ok", ...}`, `{"status": "hidden"}` '
        '(not for the caller) or `{"status": "unavailable"}` (its service did not answer in time).',
        responses=problems(401, 404),
        security=BEARER,
    )
    async def dashboard(
        self, account_id: uuid.UUID, identity: dict[str, Any], dashboard_sources: Sources
    ) -> dict[str, Any]:
        return await build_dashboard(identity, account_id, dashboard_sources)
