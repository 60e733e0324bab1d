"""Personal API tokens through the gateway, every service running: a manager makes one (shown once, listed
without it, with its last use once used); a `read` token only reads; a `read_write` token adds members; a token
acts on its own account only, never makes or lists tokens nor does what needs a person; it stops at once when
revoked through the gateway, within a second when revoked elsewhere, and when its creator stops managing."""

import asyncio
import time

import httpx
import pytest

from api_world import MEMBER_PASSWORD, Manager, link_path, log_in, make_world, sign_up, unique_email
from mail import hidden_fields, wait_for_mail

pytestmark = pytest.mark.infra

ONE_SECOND = 1.0


def tampered(token: str) -> str:
    """The token with its last character changed: never the same token (replacing it with "A" would keep one
    token in 64 unchanged)."""
    return token[:-1] + ("B" if token.endswith("A") else "A")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_token(gateway: httpx.AsyncClient, account_id: str, auth: dict[str, str], scope: str) -> dict:
    made = await gateway.post(
        f"/api/v1/accounts/{account_id}/api-tokens", json={"name": f"Jeton {scope}", "scope": scope}, headers=auth
    )
    assert made.status_code == 201, made.text
    return made.json()


def refused(answer: httpx.Response, status: int, code: str) -> bool:
    return answer.status_code == status and answer.json()["code"] == code


async def test_a_token_is_shown_once_and_does_only_what_its_scope_and_account_allow(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        world = await make_world(gateway, stack.mail_api, "jetons")
        other = await sign_up(gateway, "JetonsB")
        tokens = f"/api/v1/accounts/{world.account_id}/api-tokens"
        members = f"/api/v1/accounts/{world.account_id}/members"
        read = await new_token(gateway, world.account_id, world.auth, "read")
        assert read["token"].startswith("vpat_") and read["scope"] == "read" and read["last_used_at"] is None

        listed = await gateway.get(tokens, headers=world.auth)
        assert listed.status_code == 200 and read["token"][38:] not in listed.text
        assert [(t["token_id"], t["prefix"], "token" in t) for t in listed.json()] == [
            (read["token_id"], read["prefix"], False)
        ]

        me = await gateway.get("/api/v1/me", headers=bearer(read["token"]))
        assert me.status_code == 200, me.text
        assert (me.json()["user_id"], me.json()["token_id"], me.json()["scope"]) == (
            world.manager_id,
            read["token_id"],
            "read",
        )
        assert me.json()["memberships"] == {world.account_id: "manager"} and "session_id" not in me.json()
        assert (await gateway.get(members, headers=bearer(read["token"]))).status_code == 200
        [used] = (await gateway.get(tokens, headers=world.auth)).json()
        assert used["last_used_at"] is not None

        newcomer = {"members": [{"name": "Paul Durand", "email": unique_email("jeton")}]}
        for method, path, body in (
            ("POST", members, newcomer),
            ("PATCH", f"/api/v1/accounts/{world.account_id}/profile", {"city": "Lyon"}),
            ("DELETE", f"{members}/{world.member_id}", None),
        ):
            answer = await gateway.request(method, path, json=body, headers=bearer(read["token"]))
            assert refused(answer, 403, "token_scope"), f"{method} {path}: {answer.text}"

        write = await new_token(gateway, world.account_id, world.auth, "read_write")
        added = await gateway.post(members, json=newcomer, headers=bearer(write["token"]))
        assert added.status_code == 200 and added.json()["invited"] == 1, added.text

        for path in (f"/api/v1/accounts/{other.account_id}/profile", f"/api/v1/accounts/{other.account_id}/members"):
            assert refused(await gateway.get(path, headers=bearer(write["token"])), 404, "not_found"), path

        # what needs a person: tokens themselves, passwords and addresses, logging out, closing, organisers
        for method, path, body in (
            ("POST", tokens, {"name": "Encore un", "scope": "read"}),
            ("GET", tokens, None),
            ("DELETE", f"{tokens}/{read['token_id']}", None),
            ("POST", "/api/v1/me/password", {"current_password": "x" * 12, "new_password": "y" * 20}),
            ("POST", "/api/v1/me/email-change", {"password": "x" * 12, "new_email": unique_email("autre")}),
            ("PATCH", "/api/v1/me", {"name": "Quelqu'un"}),
            ("DELETE", "/api/v1/sessions/current", None),
            ("POST", "/api/v1/sessions/logout-everywhere", None),
            ("POST", f"/api/v1/accounts/{world.account_id}/closure", {"password": "x" * 12}),
            ("PUT", f"/api/v1/organisers/{world.manager_id}", None),
        ):
            answer = await gateway.request(method, path, json=body, headers=bearer(write["token"]))
            assert refused(answer, 403, "session_required"), f"{method} {path}: {answer.text}"
        assert len((await gateway.get(tokens, headers=world.auth)).json()) == 2

        for forged in (tampered(read["token"]), "vpat_" + "0" * 32 + "_" + "A" * 43, "vpat_nothing"):
            assert refused(await gateway.get("/api/v1/me", headers=bearer(forged)), 401, "token_invalid")


async def test_a_revoked_token_stops_at_once_here_and_within_a_second_elsewhere(system, stack):
    async with (
        httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway,
        httpx.AsyncClient(
            base_url=system.url("accounts"), headers={"X-Internal-Token": system.internal_token}, timeout=30
        ) as accounts,
    ):
        manager = await sign_up(gateway, "Revocation")
        first = await new_token(gateway, manager.account_id, manager.auth, "read")
        assert (await gateway.get("/api/v1/me", headers=bearer(first["token"]))).status_code == 200
        revoked = await gateway.delete(
            f"/api/v1/accounts/{manager.account_id}/api-tokens/{first['token_id']}", headers=manager.auth
        )
        assert revoked.status_code == 204, revoked.text
        assert refused(await gateway.get("/api/v1/me", headers=bearer(first["token"])), 401, "token_invalid")
        assert (
            await gateway.get(f"/api/v1/accounts/{manager.account_id}/api-tokens", headers=manager.auth)
        ).json() == []

        # revoked behind the gateway's back (as through another replica): its kept answer lasts under a second
        second = await new_token(gateway, manager.account_id, manager.auth, "read")
        assert (await gateway.get("/api/v1/me", headers=bearer(second["token"]))).status_code == 200
        me = (await gateway.get("/api/v1/me", headers=manager.auth)).json()
        path = f"/internal/accounts/{manager.account_id}/api-tokens/{second['token_id']}"
        assert (await accounts.delete(path, headers={"X-Actor-Id": me["user_id"]})).status_code == 204
        started = time.monotonic()
        while (await gateway.get("/api/v1/me", headers=bearer(second["token"]))).status_code != 401:
            assert time.monotonic() - started < ONE_SECOND, "the revoked token still worked after a second"
            await asyncio.sleep(0.02)


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


async def test_a_token_stops_when_its_creator_is_demoted_or_removed(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "Createur", verified_with=stack.mail_api)
        member_id, email = await active_member(gateway, stack.mail_api, manager)
        member = f"/api/v1/accounts/{manager.account_id}/members/{member_id}"
        assert (await gateway.patch(member, json={"role": "manager"}, headers=manager.auth)).status_code == 200
        theirs = await log_in(gateway, email, MEMBER_PASSWORD)

        token = (await new_token(gateway, manager.account_id, theirs, "read"))["token"]
        assert (await gateway.get("/api/v1/me", headers=bearer(token))).status_code == 200
        assert (await gateway.patch(member, json={"role": "member"}, headers=manager.auth)).status_code == 200
        assert refused(await gateway.get("/api/v1/me", headers=bearer(token)), 401, "token_invalid")
        assert (await gateway.patch(member, json={"role": "manager"}, headers=manager.auth)).status_code == 200
        assert refused(await gateway.get("/api/v1/me", headers=bearer(token)), 401, "token_invalid")

        token = (await new_token(gateway, manager.account_id, theirs, "read_write"))["token"]
        assert (await gateway.get("/api/v1/me", headers=bearer(token))).status_code == 200
        assert (await gateway.delete(member, headers=manager.auth)).status_code == 204
        assert refused(await gateway.get("/api/v1/me", headers=bearer(token)), 401, "token_invalid")
