"""The public API's test world: sign up and log in through the gateway; for the tests that walk every route, a
verified manager with an open session, their account and one invited member, and the accounts database to count
what is stored."""

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import httpx

from identifiers import new_uai
from mail import links_in, wait_for_mail

PASSWORD = "violet tramway under nineteen lanterns"
MEMBER_PASSWORD = "seven quiet herons over the canal"
# what accounts keeps: a request refused at the edge changes none of these counts
STORED = (
    "institutions",
    "users",
    "memberships",
    "sessions",
    "action_tokens",
    "login_throttle",
    "api_tokens",
    "outbox",
)


@dataclass
class World:
    account_id: str
    manager_id: str
    member_id: str
    email: str
    auth: dict[str, str]

    def path_values(self) -> dict[str, str]:
        """Real ids for the path parameters of the API (`user_id` is the manager's own; `token_id` names no API
        token: revoking it is a 404; nor do the billing ids name anything of this account's)."""
        nothing = str(uuid.uuid5(uuid.NAMESPACE_URL, self.account_id))
        return {
            "account_id": self.account_id,
            "member_id": self.member_id,
            "user_id": self.manager_id,
            "token_id": nothing,
            "item_id": nothing,
            "order_id": nothing,
            "document_id": nothing,
        }


@dataclass
class Manager:
    account_id: str
    email: str
    uai: str
    auth: dict[str, str]


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@lycee-test.fr"


async def log_in(gateway: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    created = await gateway.post("/api/v1/sessions", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']}"}


async def sign_up(
    gateway: httpx.AsyncClient,
    label: str,
    uai: str | None = None,
    email: str | None = None,
    *,
    verified_with: str | None = None,
) -> Manager:
    """A new account and its manager, logged in; `verified_with` (the mail API) confirms the manager's address
    with the mailed link first (only a verified manager invites people)."""
    email = email or unique_email(label)
    uai = uai or new_uai()
    body = {
        "institution_name": f"Lycée {label}",
        "institution_kind": "school",
        "institution_identifier": uai,
        "contact_name": "Camille Martin",
        "email": email,
        "password": PASSWORD,
        "language": "fr",
    }
    created = await gateway.post("/api/v1/accounts", json=body)
    assert created.status_code == 201, created.text
    if verified_with:
        mail = await wait_for_mail(verified_with, email, subject_contains="Confirmez votre adresse")
        token = link_path(mail, "verify-email").split("token=")[1]
        assert (await gateway.post("/api/v1/accounts/verification", json={"token": token})).status_code == 200
    return Manager(created.json()["account_id"], email, uai, await log_in(gateway, email))


async def grant_organiser(system, email: str) -> None:  # type: ignore[no-untyped-def]
    """Make `email`'s identity an organiser the way an operator does: accounts' command line."""
    env = {**os.environ, "ACCOUNTS_DATABASE_URL": system.stack.database_url("accounts")}
    command = [sys.executable, "-m", "accounts.admin", "grant-organiser", email]
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    assert "now an organiser" in done.stdout, done.stdout + done.stderr


def link_path(mail: dict[str, str], page: str) -> str:
    [link] = [link for link in links_in(mail["text"]) if f"/{page}?" in link]
    return urlsplit(link).path + "?" + urlsplit(link).query


async def make_world(gateway: httpx.AsyncClient, mail_api: str, label: str) -> World:
    manager = await sign_up(gateway, label, verified_with=mail_api)
    account_id, email, auth = manager.account_id, manager.email, manager.auth
    member_email = unique_email(f"{label}-member")
    members = f"/api/v1/accounts/{account_id}/members"
    added = await gateway.post(members, json={"members": [{"name": "Léa Petit", "email": member_email}]}, headers=auth)
    assert added.status_code == 200 and added.json()["invited"] == 1, added.text
    listed = (await gateway.get(members, headers=auth)).json()["members"]
    [member_id] = [m["member_id"] for m in listed if m["email"] == member_email]
    manager_id = (await gateway.get("/api/v1/me", headers=auth)).json()["user_id"]
    return World(account_id, manager_id, member_id, email, auth)


async def stored_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in STORED}
    finally:
        await connection.close()
