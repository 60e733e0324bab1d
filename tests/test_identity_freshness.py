"""The gateway keeps the identity behind a session a moment (gateway.identities), yet a logout, a password change,
a removal or a role change still takes effect: at once through the gateway that made it, within one second through
another gateway process. Each check first reads the identity, so that the gateway holds it when the change comes."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api_world import MEMBER_PASSWORD, Manager, link_path, log_in, sign_up, unique_email
from mail import hidden_fields, wait_for_mail
from system import System

pytestmark = pytest.mark.infra

ONE_SECOND = 1.0


@pytest.fixture(scope="module")
async def other_gateway(system) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A second gateway process in front of the same accounts (as a second replica would be)."""
    ports = {"accounts": system.ports["accounts"], "gateway": system.ports["gateway"] + 7}
    log_dir = Path(system.log_dir) / "other-gateway"
    second = System(system.stack, log_dir, ports, system.internal_token, system.secret_key, settings=system.settings)
    await asyncio.to_thread(second.start, ("gateway",))
    try:
        yield second.url("gateway")
    finally:
        await asyncio.to_thread(second.stop)


async def active_member(gateway: httpx.AsyncClient, mail_api: str, manager: Manager) -> tuple[str, str]:
    """A member of the manager's account who accepted the invitation: (member id, email)."""
    members = f"/api/v1/accounts/{manager.account_id}/members"
    email = unique_email("membre")
    added = await gateway.post(members, json={"members": [{"name": "Léa Petit", "email": email}]}, headers=manager.auth)
    assert added.status_code == 200 and added.json()["invited"] == 1, added.text
    mail = await wait_for_mail(mail_api, email, subject_contains="vous invite")
    form = hidden_fields((await gateway.get(link_path(mail, "accept-invitation"))).text)
    accepted = await gateway.post("/accept-invitation", data={**form, "new_password": MEMBER_PASSWORD})
    assert accepted.status_code == 200, accepted.text
    listed = (await gateway.get(members, headers=manager.auth)).json()["members"]
    [member_id] = [m["member_id"] for m in listed if m["email"] == email]
    return member_id, email


async def me(gateway: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    return await gateway.get("/api/v1/me", headers=auth)


async def role_in(gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str) -> str | None:
    answer = await me(gateway, auth)
    assert answer.status_code == 200, answer.text
    role: str | None = answer.json()["memberships"].get(account_id)
    return role


async def test_a_change_made_through_the_gateway_is_seen_by_its_next_request(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Fraicheur", verified_with=stack.mail_api)
        member_id, email = await active_member(gateway, stack.mail_api, manager)
        member = f"/api/v1/accounts/{manager.account_id}/members/{member_id}"
        first, second = await log_in(gateway, email, MEMBER_PASSWORD), await log_in(gateway, email, MEMBER_PASSWORD)

        assert await role_in(gateway, first, manager.account_id) == "member"
        promoted = await gateway.patch(member, json={"role": "manager"}, headers=manager.auth)
        assert promoted.status_code == 200, promoted.text
        assert await role_in(gateway, first, manager.account_id) == "manager"

        assert (await me(gateway, second)).status_code == 200
        new_password = {"current_password": MEMBER_PASSWORD, "new_password": "a different password for this test"}
        changed = await gateway.post("/api/v1/me/password", json=new_password, headers=first)
        assert changed.status_code == 200, changed.text
        assert (await me(gateway, second)).json()["code"] == "session_expired"
        assert (await me(gateway, first)).status_code == 200  # the session the change was made from stays

        assert await role_in(gateway, first, manager.account_id) == "manager"
        assert (await gateway.delete(member, headers=manager.auth)).status_code == 204
        assert await role_in(gateway, first, manager.account_id) is None

        assert (await me(gateway, first)).status_code == 200
        assert (await gateway.post("/api/v1/sessions/logout-everywhere", headers=first)).status_code == 204
        assert (await me(gateway, first)).json()["code"] == "session_expired"

        assert (await me(gateway, manager.auth)).status_code == 200
        assert (await gateway.delete("/api/v1/sessions/current", headers=manager.auth)).status_code == 204
        assert (await me(gateway, manager.auth)).json()["code"] == "session_expired"


async def seen_within_one_second(gateway: httpx.AsyncClient, auth: dict[str, str], seen) -> float:  # type: ignore[no-untyped-def]
    """Seconds until `seen(answer to GET /api/v1/me)` holds on `gateway`; fails past one second."""
    started = time.monotonic()
    while not seen(await me(gateway, auth)):
        assert time.monotonic() - started < ONE_SECOND, "the change was not seen within one second"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_change_made_through_another_gateway_is_seen_within_one_second(system, stack, other_gateway):
    async with (
        httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway,
        httpx.AsyncClient(base_url=other_gateway, timeout=10) as other,
    ):
        manager = await sign_up(gateway, "Replique", verified_with=stack.mail_api)
        member_id, email = await active_member(gateway, stack.mail_api, manager)
        member = f"/api/v1/accounts/{manager.account_id}/members/{member_id}"
        member_auth = await log_in(gateway, email, MEMBER_PASSWORD)

        assert await role_in(gateway, member_auth, manager.account_id) == "member"
        assert (await other.patch(member, json={"role": "manager"}, headers=manager.auth)).status_code == 200
        await seen_within_one_second(
            gateway, member_auth, lambda a: a.json()["memberships"] == {manager.account_id: "manager"}
        )

        assert (await me(gateway, member_auth)).status_code == 200
        assert (await other.delete(member, headers=manager.auth)).status_code == 204
        await seen_within_one_second(gateway, member_auth, lambda a: a.json()["memberships"] == {})

        second = await log_in(gateway, email, MEMBER_PASSWORD)
        assert (await me(gateway, second)).status_code == 200
        new_password = {"current_password": MEMBER_PASSWORD, "new_password": "a different password for this test"}
        assert (await other.post("/api/v1/me/password", json=new_password, headers=member_auth)).status_code == 200
        await seen_within_one_second(gateway, second, lambda a: a.status_code == 401)

        assert (await me(gateway, manager.auth)).status_code == 200
        assert (await other.delete("/api/v1/sessions/current", headers=manager.auth)).status_code == 204
        await seen_within_one_second(gateway, manager.auth, lambda a: a.status_code == 401)
