"""A small real world behind the public API, for the tests that walk every route: a verified manager with an
open session, their account and one invited member, and the accounts database to count what is stored."""

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

from identifiers import new_uai
from mail import links_in, wait_for_mail

PASSWORD = "violet tramway under nineteen lanterns"
# what accounts keeps: a request refused at the edge changes none of these counts
STORED = ("institutions", "users", "memberships", "sessions", "action_tokens", "login_throttle", "outbox")


@dataclass
class World:
    account_id: str
    manager_id: str
    member_id: str
    email: str
    auth: dict[str, str]

    def path_values(self) -> dict[str, str]:
        """Real ids for the path parameters of the API (`user_id` is the manager's own)."""
        return {"account_id": self.account_id, "member_id": self.member_id, "user_id": self.manager_id}


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@lycee-test.fr"


async def make_world(gateway: httpx.AsyncClient, mail_api: str, label: str) -> World:
    email = unique_email(label)
    body = {
        "institution_name": f"Lycée {label}",
        "institution_kind": "school",
        "institution_identifier": new_uai(),
        "contact_name": "Camille Martin",
        "email": email,
        "password": PASSWORD,
        "language": "fr",
    }
    created = await gateway.post("/api/v1/accounts", json=body)
    assert created.status_code == 201, created.text
    account_id = created.json()["account_id"]
    mail = await wait_for_mail(mail_api, email, subject_contains="Confirmez votre adresse")
    [link] = [link for link in links_in(mail["text"]) if "/verify-email?" in link]
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert (await gateway.post("/api/v1/accounts/verification", json={"token": token})).status_code == 200
    opened = await gateway.post("/api/v1/sessions", json={"email": email, "password": PASSWORD})
    assert opened.status_code == 201, opened.text
    auth = {"Authorization": f"Bearer {opened.json()['token']}"}
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
