"""Outgoing webhooks through the gateway, every service running (gateway.webhooks, gateway.webhook_pages; the
notifier keeps the endpoints): a manager registers an endpoint, whose secret is in the answer to the creation and
to a rotation only; lists, reads, edits, disables and re-enables it, sends it a test event that shows in its
deliveries, deletes it. Refused: a URL that is not https or carries a user, an unknown event, an 11th endpoint,
input broken at the edge; a plain member (403), another institution (404), a `read` API token writing (403).
Who registered an endpoint is the caller, whatever the body says. The portal pages do the same for a manager and
refuse a member."""

import asyncio
import re
from dataclasses import dataclass
from html import unescape

import asyncpg
import httpx
import pytest
from portal_world import csrf_token, portal_login, submit

from api_world import MEMBER_PASSWORD, Manager, link_path, log_in, sign_up, unique_email
from mail import wait_for_mail

pytestmark = pytest.mark.infra

HOOK_URL = "https://hooks.example.com/visiopass"  # never reached in the tests: deliveries stay pending
EVENT_TYPES = {
    "enrolment.confirmed",
    "enrolment.cancelled",
    "participation_link.issued",
    "invoice.issued",
    "tokens.credited",
}
ENDPOINT_FIELDS = {"id", "url", "description", "events", "status", "disabled_reason", "created_at", "updated_at"}


@dataclass
class Scene:
    manager: Manager  # of institution A, verified
    member: dict[str, str]  # an active member of A: their bearer header
    member_email: str
    other: Manager  # the manager of institution B


@pytest.fixture(scope="module")
async def scene(system) -> Scene:
    mail_api = system.stack.mail_api
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "webhooks-a", verified_with=mail_api)
        member_email = unique_email("webhooks-member")
        added = await gateway.post(
            f"/api/v1/accounts/{manager.account_id}/members",
            json={"members": [{"name": "Léa Petit", "email": member_email}]},
            headers=manager.auth,
        )
        assert added.status_code == 200, added.text
        invitation = await wait_for_mail(mail_api, member_email, subject_contains="vous invite")
        token = link_path(invitation, "accept-invitation").split("token=")[1]
        accepted = await gateway.post(
            "/api/v1/invitations/acceptance", json={"token": token, "new_password": MEMBER_PASSWORD}
        )
        assert accepted.status_code == 200, accepted.text
        member = await log_in(gateway, member_email, MEMBER_PASSWORD)
        other = await sign_up(gateway, "webhooks-b")
    return Scene(manager, member, member_email, other)


def hooks(account_id: str, suffix: str = "") -> str:
    return f"/api/v1/accounts/{account_id}/webhooks{suffix}"


async def create(gateway: httpx.AsyncClient, manager: Manager, **body: object) -> dict:
    made = await gateway.post(
        hooks(manager.account_id), json={"url": HOOK_URL, "events": ["invoice.issued"]} | body, headers=manager.auth
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def refused(answer: httpx.Response, status: int, code: str | None = None) -> bool:
    return (
        answer.status_code == status
        and answer.headers["content-type"].startswith("application/problem+json")
        and (code is None or answer.json()["code"] == code)
    )


async def created_by(system, webhook_id: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(created_by_email, language) of an endpoint, as the notifier keeps it."""
    connection = await asyncpg.connect(system.stack.database_url("notifier").replace("+asyncpg", ""))
    try:
        row = await connection.fetchrow(
            "SELECT created_by_email, language FROM webhook_endpoints WHERE id = $1::uuid", webhook_id
        )
    finally:
        await connection.close()
    assert row is not None
    return row["created_by_email"], row["language"]


async def test_a_manager_registers_edits_rotates_tests_and_deletes_an_endpoint(system, scene: Scene) -> None:
    manager = scene.manager
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        types = await gateway.get("/api/v1/webhook-event-types")
        assert types.status_code == 200 and set(types.json()["event_types"]) == EVENT_TYPES

        body = {
            "url": HOOK_URL,
            "events": ["enrolment.confirmed", "invoice.issued"],
            "description": "ENT du lycée",
            "created_by_email": "intrus@example.org",  # never taken from the body
            "language": "en",
        }
        made = await gateway.post(hooks(manager.account_id), json=body, headers=manager.auth)
        assert made.status_code == 201, made.text
        endpoint = made.json()
        secret = endpoint["secret"]
        assert secret.startswith("whsec_") and len(secret) > 30
        assert ENDPOINT_FIELDS <= set(endpoint)
        assert (endpoint["url"], endpoint["status"], endpoint["description"]) == (HOOK_URL, "active", "ENT du lycée")
        assert set(endpoint["events"]) == {"enrolment.confirmed", "invoice.issued"}
        assert await created_by(system, endpoint["id"]) == (manager.email, "fr")
        one = hooks(manager.account_id, f"/{endpoint['id']}")

        listed = await gateway.get(hooks(manager.account_id), headers=manager.auth)
        assert listed.status_code == 200
        assert [e["id"] for e in listed.json()["endpoints"]] == [endpoint["id"]]
        assert secret not in listed.text and "secret" not in listed.json()["endpoints"][0]
        shown = await gateway.get(one, headers=manager.auth)
        assert shown.status_code == 200 and shown.json()["url"] == HOOK_URL and secret not in shown.text

        changes = {"events": ["tokens.credited"], "description": "Comptabilité"}
        edited = await gateway.patch(one, json=changes, headers=manager.auth)
        assert edited.status_code == 200, edited.text
        assert (edited.json()["events"], edited.json()["description"]) == (["tokens.credited"], "Comptabilité")
        disabled = await gateway.patch(one, json={"status": "disabled"}, headers=manager.auth)
        assert disabled.status_code == 200 and disabled.json()["status"] == "disabled", disabled.text
        enabled = await gateway.patch(one, json={"status": "active"}, headers=manager.auth)
        assert enabled.status_code == 200 and enabled.json()["status"] == "active", enabled.text

        rotated = await gateway.post(f"{one}/rotate-secret", json={"overlap_hours": 1}, headers=manager.auth)
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret.startswith("whsec_") and new_secret != secret
        assert rotated.json()["secret_rotation_ends_at"] is not None
        again = await gateway.get(one, headers=manager.auth)
        assert secret not in again.text and new_secret not in again.text and "secret" not in again.json()

        tested = await gateway.post(f"{one}/test", headers=manager.auth)
        assert tested.status_code == 202, tested.text
        delivery_id = tested.json()["delivery_id"]
        deliveries = await gateway.get(f"{one}/deliveries", params={"limit": 5}, headers=manager.auth)
        assert deliveries.status_code == 200, deliveries.text
        page = deliveries.json()
        assert page["total"] >= 1 and (page["limit"], page["offset"]) == (5, 0)
        [ping] = [d for d in page["deliveries"] if d["id"] == delivery_id]
        assert ping["type"] == "ping" and ping["status"] in ("pending", "sent", "failed")
        assert secret not in deliveries.text and new_secret not in deliveries.text
        filtered = await gateway.get(f"{one}/deliveries", params={"status": "sent"}, headers=manager.auth)
        assert filtered.status_code == 200 and delivery_id not in filtered.text

        gone = await gateway.delete(one, headers=manager.auth)
        assert gone.status_code == 204, gone.text
        assert refused(await gateway.get(one, headers=manager.auth), 404)
        assert refused(await gateway.delete(one, headers=manager.auth), 404)


async def test_bad_urls_events_and_input_are_refused_with_a_code(system, scene: Scene) -> None:
    manager = scene.manager
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        refusals = {}
        for url in ("http://hooks.example.com/visiopass", "https://user:secret@hooks.example.com/", "ftp://x.fr"):
            answer = await gateway.post(
                hooks(manager.account_id), json={"url": url, "events": ["invoice.issued"]}, headers=manager.auth
            )
            assert refused(answer, 400), f"{url}: {answer.status_code} {answer.text}"
            refusals[url] = answer.json()["code"]
        assert all(code not in ("invalid_request", "invalid_body") for code in refusals.values()), refusals
        unknown = await gateway.post(
            hooks(manager.account_id), json={"url": HOOK_URL, "events": ["session.exploded"]}, headers=manager.auth
        )
        assert refused(unknown, 400), unknown.text
        for bad in (
            {"url": HOOK_URL, "events": []},
            {"url": HOOK_URL, "events": ["invoice.issued"], "description": "ENT\x00"},
            {"url": "https://x.fr/" + "a" * 2000, "events": ["invoice.issued"]},
            {"events": ["invoice.issued"]},
        ):
            answer = await gateway.post(hooks(manager.account_id), json=bad, headers=manager.auth)
            assert refused(answer, 400, "invalid_request"), answer.text
        endpoint = await create(gateway, manager)
        one = hooks(manager.account_id, f"/{endpoint['id']}")
        for overlap in (-1, 73, 2**70):
            answer = await gateway.post(f"{one}/rotate-secret", json={"overlap_hours": overlap}, headers=manager.auth)
            assert refused(answer, 400, "invalid_request"), answer.text
        assert refused(await gateway.patch(one, json={"status": "paused"}, headers=manager.auth), 400)
        assert refused(await gateway.patch(one, json={"url": "http://x.fr"}, headers=manager.auth), 400)
        assert refused(await gateway.get(f"{one}/deliveries?limit=0", headers=manager.auth), 400)
        assert refused(await gateway.get(f"{one}/deliveries?status=lost", headers=manager.auth), 400)
        assert (await gateway.delete(one, headers=manager.auth)).status_code == 204


async def test_at_most_ten_endpoints_per_account(system) -> None:
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "webhooks-ten")
        for _ in range(10):
            await create(gateway, manager)
        eleventh = await gateway.post(
            hooks(manager.account_id), json={"url": HOOK_URL, "events": ["invoice.issued"]}, headers=manager.auth
        )
        assert refused(eleventh, 409), eleventh.text


async def test_members_are_refused_and_other_institutions_find_nothing(system, scene: Scene) -> None:
    manager, other = scene.manager, scene.other
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        endpoint = await create(gateway, manager)
        one = hooks(manager.account_id, f"/{endpoint['id']}")
        new = {"url": HOOK_URL, "events": ["invoice.issued"]}
        assert refused(await gateway.get(hooks(manager.account_id), headers=scene.member), 403, "forbidden")
        assert refused(await gateway.post(hooks(manager.account_id), json=new, headers=scene.member), 403)
        assert refused(await gateway.get(one, headers=scene.member), 403)
        assert refused(await gateway.post(f"{one}/rotate-secret", json={}, headers=scene.member), 403)
        assert refused(await gateway.get(hooks(manager.account_id), headers=other.auth), 404, "not_found")
        assert refused(await gateway.post(hooks(manager.account_id), json=new, headers=other.auth), 404)
        assert refused(await gateway.get(one, headers=other.auth), 404)
        assert refused(await gateway.delete(one, headers=other.auth), 404)
        assert refused(await gateway.post(f"{one}/test", headers=other.auth), 404)
        # A's endpoint through B's own account: the notifier finds no such endpoint of B's
        theirs = hooks(other.account_id, f"/{endpoint['id']}")
        assert refused(await gateway.get(theirs, headers=other.auth), 404)
        assert refused(await gateway.patch(theirs, json={"status": "disabled"}, headers=other.auth), 404)
        assert refused(await gateway.post(f"{theirs}/rotate-secret", json={}, headers=other.auth), 404)
        assert refused(await gateway.delete(theirs, headers=other.auth), 404)
        assert refused(await gateway.get(f"{theirs}/deliveries", headers=other.auth), 404)
        assert refused(await gateway.get(hooks(manager.account_id)), 401)
        still = await gateway.get(one, headers=manager.auth)
        assert still.status_code == 200 and still.json()["status"] == "active"


async def test_a_read_token_reads_and_a_read_write_token_writes(system, scene: Scene) -> None:
    manager = scene.manager
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        tokens = {}
        for scope in ("read", "read_write"):
            made = await gateway.post(
                f"/api/v1/accounts/{manager.account_id}/api-tokens",
                json={"name": f"Webhooks {scope}", "scope": scope},
                headers=manager.auth,
            )
            assert made.status_code == 201, made.text
            tokens[scope] = {"Authorization": f"Bearer {made.json()['token']}"}
        new = {"url": HOOK_URL, "events": ["tokens.credited"]}
        assert (await gateway.get(hooks(manager.account_id), headers=tokens["read"])).status_code == 200
        read_only = await gateway.post(hooks(manager.account_id), json=new, headers=tokens["read"])
        assert refused(read_only, 403, "token_scope")
        made = await gateway.post(hooks(manager.account_id), json=new, headers=tokens["read_write"])
        assert made.status_code == 201 and made.json()["secret"].startswith("whsec_"), made.text
        one = hooks(manager.account_id, f"/{made.json()['id']}")
        assert refused(await gateway.delete(one, headers=tokens["read"]), 403, "token_scope")
        assert refused(await gateway.get(hooks(scene.other.account_id), headers=tokens["read_write"]), 404)
        assert (await gateway.delete(one, headers=tokens["read_write"])).status_code == 204


# -- the portal pages ---------------------------------------------------------------------------------------------

PAGE = "/account/webhooks"


async def test_the_portal_adds_shows_the_secret_once_edits_tests_and_deletes(system, scene: Scene) -> None:
    base = system.url("gateway")
    portal = await portal_login(base, scene.manager.email)
    try:
        shown = await portal.get(PAGE)
        assert shown.status_code == 200 and 'id="webhooks-title"' in shown.text
        assert 'value="invoice.issued"' in shown.text and "Facture émise" in unescape(shown.text)

        typed = {"url": "http://hooks.example.com/x", "description": "ENT", "events": ["invoice.issued"]}
        refused_page = await submit(portal, PAGE, PAGE, typed)
        assert refused_page.status_code == 400 and 'id="error-url"' in refused_page.text
        assert 'value="http://hooks.example.com/x"' in refused_page.text
        none_ticked = await submit(portal, PAGE, PAGE, {"url": HOOK_URL})
        assert none_ticked.status_code == 400 and 'id="error-events"' in none_ticked.text

        fields = {"url": HOOK_URL, "description": "ENT du portail", "events": ["invoice.issued", "tokens.credited"]}
        added = await submit(portal, PAGE, PAGE, fields, follow_redirects=False)
        assert added.status_code == 200, added.text
        secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', added.text)
        assert secret, added.text
        assert "plus jamais affiché" in unescape(added.text)
        assert secret.group(1) not in str(added.headers) and "whsec_" not in str(portal.cookies)
        webhook_id = re.search(r'href="/account/webhooks/([0-9a-f-]{36})"', added.text).group(1)  # type: ignore[union-attr]

        listed = await portal.get(PAGE)
        assert f'id="webhook-{webhook_id}"' in listed.text and secret.group(1) not in listed.text
        detail_url = f"{PAGE}/{webhook_id}"
        detail = await portal.get(detail_url)
        assert detail.status_code == 200 and HOOK_URL in detail.text and secret.group(1) not in detail.text
        assert "Visiopass-Signature" in detail.text

        tested = await submit(portal, detail_url, f"{detail_url}/test", {}, follow_redirects=False)
        assert (tested.status_code, tested.headers["location"]) == (303, f"{detail_url}?done=tested")
        after = await portal.get(tested.headers["location"])
        assert 'data-type="ping"' in after.text

        edit = {"url": HOOK_URL + "/v2", "description": "", "events": ["enrolment.cancelled"]}
        saved = await submit(portal, detail_url, detail_url, edit, follow_redirects=False)
        assert (saved.status_code, saved.headers["location"]) == (303, f"{detail_url}?done=saved")
        assert HOOK_URL + "/v2" in (await portal.get(detail_url)).text

        status = f"{detail_url}/status"
        disabled = await submit(portal, detail_url, status, {"status": "disabled"}, follow_redirects=True)
        assert disabled.status_code == 200 and 'data-status="disabled"' in disabled.text
        listed = await portal.get(PAGE)
        assert re.search(rf'id="webhook-{webhook_id}"[^>]*data-status="disabled"', listed.text)
        enabled = await submit(portal, PAGE, status, {"status": "active"}, follow_redirects=True)
        assert enabled.status_code == 200 and 'data-status="active"' in enabled.text

        rotated = await submit(portal, detail_url, f"{detail_url}/rotation", {"overlap_hours": "0"})
        new_secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', rotated.text)
        assert rotated.status_code == 200 and new_secret and new_secret.group(1) != secret.group(1)

        removed = await submit(portal, detail_url, f"{detail_url}/removal", {}, follow_redirects=False)
        assert (removed.status_code, removed.headers["location"]) == (303, f"{PAGE}?done=deleted")
        assert (await portal.get(detail_url)).status_code == 404
    finally:
        await portal.aclose()


async def test_the_portal_refuses_members_and_hides_other_institutions_endpoints(system, scene: Scene) -> None:
    base = system.url("gateway")
    async with httpx.AsyncClient(base_url=base, timeout=30) as gateway:
        endpoint = await create(gateway, scene.manager)
    member, other = await asyncio.gather(
        portal_login(base, scene.member_email, MEMBER_PASSWORD), portal_login(base, scene.other.email)
    )
    try:
        shown = await member.get(PAGE)
        assert shown.status_code == 200 and 'id="webhooks-managers-only"' in shown.text
        assert '<form class="stacked" method="post" action="/account/webhooks"' not in shown.text
        token = csrf_token(shown.text)
        posted = await member.post(PAGE, data={"_csrf_token": token, "url": HOOK_URL, "events": "invoice.issued"})
        assert posted.status_code == 403
        detail = await member.get(f"{PAGE}/{endpoint['id']}")
        assert detail.status_code == 403 and 'id="webhooks-managers-only"' in detail.text
        removal = await member.post(f"{PAGE}/{endpoint['id']}/removal", data={"_csrf_token": token})
        assert removal.status_code == 403

        assert (await other.get(f"{PAGE}/{endpoint['id']}")).status_code == 404
        theirs = await other.get(PAGE)
        assert endpoint["id"] not in theirs.text
        removal = await other.post(
            f"{PAGE}/{endpoint['id']}/removal", data={"_csrf_token": csrf_token(theirs.text)}, follow_redirects=False
        )
        assert removal.status_code == 404
        no_csrf = await other.post(PAGE, data={"url": HOOK_URL, "events": "invoice.issued"})
        assert no_csrf.status_code == 403
    finally:
        await member.aclose()
        await other.aclose()
