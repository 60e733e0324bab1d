"""With the real services: joining another institution needs the person's acceptance (gateway, accounts,
notifier, the mailed link, the portal), security events reach the services' logs with the client's address
and no secret, and the log files are their owner's only."""

import asyncio
import json
import stat
from pathlib import Path

import httpx
import pytest

from api_world import MEMBER_PASSWORD, PASSWORD, link_path, sign_up
from mail import hidden_fields, wait_for_mail

pytestmark = pytest.mark.infra


def security_events(log: Path, name: str) -> list[dict]:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    return [entry for entry in map(json.loads, lines) if entry.get("security_event") == name]


async def eventually(log: Path, name: str, **expected: str) -> dict:
    for _ in range(50):
        for entry in security_events(log, name):
            if all(entry.get(key) == value for key, value in expected.items()):
                return entry
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {name} {expected} in {log}")


async def test_a_known_identity_joins_another_institution_only_by_accepting(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        a = await sign_up(gateway, "Rejoindre-A", verified_with=stack.mail_api)
        b = await sign_up(gateway, "Rejoindre-B", verified_with=stack.mail_api)
        b_members = f"/api/v1/accounts/{b.account_id}/members"
        typed = a.email.upper()
        added = await gateway.post(b_members, json={"members": [{"name": "C. M.", "email": typed}]}, headers=b.auth)
        unknown = await gateway.post(
            b_members, json={"members": [{"name": "Léa", "email": "lea-" + a.email}]}, headers=b.auth
        )
        assert added.json() == unknown.json() == {"invited": 1, "already_members": 0, "rejected": []}
        listed = (await gateway.get(b_members, headers=b.auth)).json()
        [asked] = [m for m in listed["members"] if m["email"].lower() == a.email.lower()]
        assert (asked["name"], asked["status"]) == ("C. M.", "invited"), "B sees what it typed, nothing more"
        pending = (await gateway.get("/api/v1/me/invitations", headers=a.auth)).json()
        assert [p["account_id"] for p in pending] == [b.account_id]

        mail = await wait_for_mail(stack.mail_api, a.email, subject_contains="rejoindre")
        page = await gateway.get(link_path(mail, "join"))
        assert page.status_code == 200
        forged = await gateway.post("/join", data={"token": hidden_fields(page.text)["token"]})
        assert forged.status_code == 403
        joined = await gateway.post("/join", data=hidden_fields(page.text))
        assert joined.status_code == 200 and 'id="joined"' in joined.text
        [now_member] = [
            m
            for m in (await gateway.get(b_members, headers=b.auth)).json()["members"]
            if m["member_id"] == asked["member_id"]
        ]
        assert (now_member["email"], now_member["status"]) == (a.email, "active")
        assert (await gateway.get("/api/v1/me/invitations", headers=a.auth)).json() == []

    csrf = await eventually(system.log_dir / "gateway.log", "csrf_refused", path="/join")
    assert csrf["source"] == "127.0.0.1" and csrf["outcome"] == "refused"


async def test_refusals_are_logged_with_the_actor_and_the_client_address_and_logs_are_private(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        a = await sign_up(gateway, "Journal-A", verified_with=stack.mail_api)
        b = await sign_up(gateway, "Journal-B", verified_with=stack.mail_api)
        a_id = (await gateway.get("/api/v1/me", headers=a.auth)).json()["user_id"]
        b_id = (await gateway.get("/api/v1/me", headers=b.auth)).json()["user_id"]
        denied = await gateway.get(f"/api/v1/accounts/{b.account_id}/profile", headers=a.auth)
        assert denied.status_code == 404
        change = "/api/v1/me/password"
        guess = {"current_password": MEMBER_PASSWORD, "new_password": MEMBER_PASSWORD}
        for _ in range(5):  # login's per-user limit
            wrong = await gateway.post(change, json=guess, headers=a.auth)
            assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_password")
        right = {"current_password": PASSWORD, "new_password": MEMBER_PASSWORD}
        locked = await gateway.post(change, json=right, headers=a.auth)
        assert (locked.status_code, locked.json()["code"]) == (429, "too_many_attempts")
        assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
        failed = await gateway.post("/api/v1/sessions", json={"email": b.email, "password": MEMBER_PASSWORD})
        assert failed.status_code == 401

    accounts_log = system.log_dir / "accounts.log"
    access = await eventually(accounts_log, "access_denied", user_id=a_id, account_id=b.account_id)
    assert (access["outcome"], access["source"], access["method"]) == ("not_found", "127.0.0.1", "GET")
    recheck = await eventually(accounts_log, "password_recheck_failed", user_id=a_id)
    assert (recheck["action"], recheck["source"]) == ("password_change", "127.0.0.1")
    login = await eventually(accounts_log, "login_failed", user_id=b_id)
    assert (login["outcome"], login["source"]) == ("refused", "127.0.0.1")

    for directory in (system.log_dir, Path(stack.log_dir)):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        files = [path for path in directory.rglob("*") if path.is_file()]
        assert files and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files), directory
    for log in system.log_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert PASSWORD not in text and MEMBER_PASSWORD not in text and "$argon2" not in text, log
