"""The dashboard of "Mon compte" (`GET /api/v1/accounts/{id}/dashboard`) through the real services: each
part for each kind of viewer; who may see it (members, managers, organisers; another institution's manager
gets 404, nobody anonymous); and the dashboard still answers when the notifier is stopped or frozen, or billing
stopped, their part "unavailable"."""

import asyncio
import os
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api_world import MEMBER_PASSWORD, Manager, grant_organiser, link_path, log_in, sign_up, unique_email
from mail import wait_for_mail

pytestmark = pytest.mark.infra


@dataclass
class People:
    manager: Manager  # of institution A
    member_email: str
    member: dict[str, str]  # of A
    other_manager: dict[str, str]  # of institution B
    organiser: dict[str, str]


def dashboard_of(account_id: str) -> str:
    return f"/api/v1/accounts/{account_id}/dashboard"


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def people(system) -> People:
    mail_api = system.stack.mail_api
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "dashboard-a", verified_with=mail_api)
        member_email = unique_email("dashboard-member")
        members = f"/api/v1/accounts/{manager.account_id}/members"
        added = await gateway.post(
            members, json={"members": [{"name": "Léa Petit", "email": member_email}]}, headers=manager.auth
        )
        assert added.status_code == 200, added.text
        token = link_path(await wait_for_mail(mail_api, member_email), "accept-invitation").split("token=")[1]
        accepted = await gateway.post(
            "/api/v1/invitations/acceptance", json={"token": token, "new_password": MEMBER_PASSWORD}
        )
        assert accepted.status_code == 200, accepted.text
        member = await log_in(gateway, member_email, MEMBER_PASSWORD)
        other = await sign_up(gateway, "dashboard-b")
        organiser = await sign_up(gateway, "dashboard-organiser")
        await grant_organiser(system, organiser.email)
        return People(manager, member_email, member, other.auth, await log_in(gateway, organiser.email))


async def dashboard_until(gateway, auth, account_id, found, timeout: float = 30) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The dashboard once `found(it)` holds (the notifier records a sent mail just after the catcher has it)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await gateway.get(dashboard_of(account_id), headers=auth)
        assert response.status_code == 200, response.text
        if found(dashboard := response.json()):
            return dashboard
        if time.monotonic() > deadline:
            raise AssertionError(f"dashboard not as expected within {timeout}s: {dashboard}")
        await asyncio.sleep(0.2)


def sent_templates(dashboard: dict[str, Any]) -> list[str]:
    part = dashboard["recent_mails"]
    return [m["template"] for m in part.get("mails", []) if m["status"] == "sent"]


async def test_a_manager_sees_every_part(gateway, people):
    manager = people.manager
    dashboard = await dashboard_until(
        gateway, manager.auth, manager.account_id, lambda d: "account_registered" in sent_templates(d)
    )
    assert list(dashboard) == ["person", "institution", "members", "wallet", "recent_mails", "bouncing"]
    assert dashboard["person"] == {
        "status": "ok",
        "name": "Camille Martin",
        "email": manager.email,
        "language": "fr",
        "role": "manager",
        "is_organiser": False,
    }
    institution = dashboard["institution"]
    assert (institution["status"], institution["name"], institution["kind"]) == ("ok", "Lycée dashboard-a", "school")
    assert (institution["identifier"], institution["closed_at"]) == (manager.uai, None)
    assert dashboard["members"] == {"status": "ok", "total": 2, "active": 2, "invited": 0, "managers": 1}
    no_tokens = {"status": "ok", "balance": 0, "lots": [], "expiring_soon": {"tokens": 0, "expires_at": None}}
    assert dashboard["wallet"] == no_tokens  # nothing bought yet
    [mail] = dashboard["recent_mails"]["mails"]
    assert set(mail) == {"template", "status", "created_at", "sent_at"}  # no address, content or link


async def test_a_member_sees_their_part_but_not_the_counts(gateway, people):
    dashboard = await dashboard_until(
        gateway, people.member, people.manager.account_id, lambda d: "member_invitation" in sent_templates(d)
    )
    assert (dashboard["person"]["email"], dashboard["person"]["role"]) == (people.member_email, "member")
    assert dashboard["institution"]["name"] == "Lycée dashboard-a"
    assert dashboard["members"] == {"status": "hidden"}
    assert dashboard["wallet"]["status"] == "ok"  # a member sees the balance


async def test_an_organiser_sees_any_account(gateway, people):
    response = await gateway.get(dashboard_of(people.manager.account_id), headers=people.organiser)
    assert response.status_code == 200, response.text
    dashboard = response.json()
    assert (dashboard["person"]["role"], dashboard["person"]["is_organiser"]) == (None, True)
    assert dashboard["members"]["total"] == 2
    unknown = await gateway.get(dashboard_of(str(uuid.uuid4())), headers=people.organiser)
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


async def test_others_do_not_learn_the_account_exists(gateway, people):
    other = await gateway.get(dashboard_of(people.manager.account_id), headers=people.other_manager)
    assert other.status_code == 404 and other.json()["code"] == "not_found"
    assert (await gateway.get(dashboard_of(people.manager.account_id))).status_code == 401
    assert (await gateway.get("/api/v1/accounts/not-a-uuid/dashboard", headers=people.member)).status_code in (400, 404)


def without_recent_mails(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The parts that do not come from the notifier."""
    return {name: part for name, part in dashboard.items() if name not in ("recent_mails", "bouncing")}


async def test_without_the_notifier_the_dashboard_still_answers(gateway, people, system):
    manager = people.manager
    before = (await gateway.get(dashboard_of(manager.account_id), headers=manager.auth)).json()
    await asyncio.to_thread(system.stop, names=("notifier",))
    try:
        response = await gateway.get(dashboard_of(manager.account_id), headers=manager.auth)
        assert response.status_code == 200, response.text
        dashboard = response.json()
        assert dashboard["recent_mails"] == dashboard["bouncing"] == {"status": "unavailable"}
        assert without_recent_mails(dashboard) == without_recent_mails(before)
        assert (await gateway.get("/health/ready")).status_code == 200  # the gateway does not need the notifier
        log = await gateway.get("/api/v1/back-office/deliveries", headers=people.organiser)
        assert log.status_code == 503 and log.json()["code"] == "upstream_unavailable"
    finally:
        await asyncio.to_thread(system.start, ("notifier",))
    back = (await gateway.get(dashboard_of(manager.account_id), headers=manager.auth)).json()
    assert back["recent_mails"]["status"] == "ok"


async def test_a_frozen_notifier_makes_its_part_unavailable_not_the_page(gateway, people, system):
    """The notifier accepts connections but answers nothing (SIGSTOP): its part gives up, the others come."""
    manager = people.manager
    notifier = system.processes["notifier"].pid
    os.kill(notifier, signal.SIGSTOP)
    try:
        response = await gateway.get(dashboard_of(manager.account_id), headers=manager.auth)
    finally:
        os.kill(notifier, signal.SIGCONT)
    assert response.status_code == 200, response.text
    dashboard = response.json()
    assert dashboard["recent_mails"] == {"status": "unavailable"}
    assert dashboard["institution"]["status"] == dashboard["members"]["status"] == "ok"


async def test_without_billing_the_wallet_part_is_unavailable_and_the_rest_comes(gateway, people, system):
    manager = people.manager
    await asyncio.to_thread(system.stop, names=("billing",))
    try:
        response = await gateway.get(dashboard_of(manager.account_id), headers=manager.auth)
        assert response.status_code == 200, response.text
        dashboard = response.json()
        assert dashboard["wallet"] == {"status": "unavailable"}
        assert dashboard["institution"]["status"] == dashboard["person"]["status"] == "ok"
        assert (await gateway.get("/health/ready")).status_code == 200  # the gateway does not need billing
    finally:
        await asyncio.to_thread(system.start, ("billing",))
    back = (await gateway.get(dashboard_of(manager.account_id), headers=manager.auth)).json()
    assert back["wallet"]["status"] == "ok"
