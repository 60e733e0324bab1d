"""No usable secret travels on Kafka: after every flow that mails a single-use link (sign-up verification, a
new verification link, password reset, member invitation, email change confirmation and its revert link) and
a personal API token made, used and refused, a plain Kafka client reads every topic and its dead letters, and
finds none of these tokens in any record's key, value or headers; the sealed values it does find do not work
as tokens; the services' logs do not hold the tokens either."""

import asyncio
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from api_world import unique_email
from contracts import TOPICS
from contracts.secrets import is_sealed
from identifiers import new_uai
from mail import links_in, mails_to
from servicekit.kafka import topic_partitions

pytestmark = pytest.mark.infra

PASSWORD = "violet tramway under nineteen lanterns"
NEW_PASSWORD = "seven copper herons over the loire"


def tampered(token: str) -> str:
    """The token with its last character changed: never the same token (replacing it with "A" would keep one
    token in 64 unchanged)."""
    return token[:-1] + ("B" if token.endswith("A") else "A")


async def mailed_token(mail_api: str, to: str, page: str, seen: set[str], timeout: float = 30) -> str:
    """The token of the first link to `/page` mailed to `to` that is not in `seen` (waits for it)."""
    deadline = time.monotonic() + timeout
    while True:
        for mail in await mails_to(mail_api, to):
            for link in links_in(mail["text"]):
                parts = urlsplit(link)
                if parts.path == f"/{page}" and (token := parse_qs(parts.query).get("token", [""])[0]):
                    if token not in seen:
                        seen.add(token)
                        return token
        if time.monotonic() > deadline:
            raise AssertionError(f"no new /{page} link mailed to {to} within {timeout}s")
        await asyncio.sleep(0.2)


async def every_record(bootstrap: str) -> list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    """Every record of every topic of the contracts and of their dead-letter topics, from the beginning."""
    names = [name for topic in TOPICS.values() for name in (topic.name, topic.dlq)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [tp for name in names for tp in await topic_partitions(bootstrap, name)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for r in batch:
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]:
                        found.append((r.topic, r.key, r.value, list(r.headers or ())))
        return found
    finally:
        await consumer.stop()


def sealed_values(value: bytes | None) -> dict[str, str]:
    """The sealed fields of a record's JSON value: name -> sealed value."""
    try:
        data = json.loads(value or b"")
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if is_sealed(v)} if isinstance(data, dict) else {}


async def test_no_mailed_token_can_be_read_on_kafka_or_in_the_logs(system, stack, kafka):
    mail_api = stack.mail_api
    seen: set[str] = set()
    tokens: dict[str, str] = {}
    email = unique_email("secret")
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        created = await gateway.post(
            "/api/v1/accounts",
            json={
                "institution_name": "Lycée Secret",
                "institution_kind": "school",
                "institution_identifier": new_uai(),
                "contact_name": "Camille Martin",
                "email": email,
                "password": PASSWORD,
                "language": "fr",
            },
        )
        assert created.status_code == 201, created.text
        account_id = created.json()["account_id"]
        tokens["sign-up verification"] = await mailed_token(mail_api, email, "verify-email", seen)

        resent = await gateway.post("/api/v1/accounts/verification/resend", json={"email": email})
        assert resent.status_code in (200, 202, 204), resent.text
        tokens["resent verification"] = await mailed_token(mail_api, email, "verify-email", seen)
        verified = await gateway.post("/api/v1/accounts/verification", json={"token": tokens["resent verification"]})
        assert verified.status_code == 200, verified.text

        asked = await gateway.post("/api/v1/password-resets", json={"email": email})
        assert asked.status_code in (200, 202, 204), asked.text
        tokens["password reset"] = await mailed_token(mail_api, email, "reset-password", seen)

        auth = {"Authorization": f"Bearer {await session_token(gateway, email)}"}
        member = unique_email("membre")
        added = await gateway.post(
            f"/api/v1/accounts/{account_id}/members",
            json={"members": [{"name": "Léa Petit", "email": member}]},
            headers=auth,
        )
        assert added.status_code == 200, added.text
        tokens["member invitation"] = await mailed_token(mail_api, member, "accept-invitation", seen)

        made = await gateway.post(
            f"/api/v1/accounts/{account_id}/api-tokens", json={"name": "Export", "scope": "read"}, headers=auth
        )
        assert made.status_code == 201, made.text
        api_token = made.json()["token"]
        tokens["personal API token's secret"] = api_token[38:]  # after "vpat_", the id and "_"
        assert (await gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {api_token}"})).status_code == 200
        refused = await gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {tampered(api_token)}"})
        assert refused.status_code == 401, refused.text

        new_email = unique_email("nouvelle")
        change = await gateway.post(
            "/api/v1/me/email-change", json={"password": PASSWORD, "new_email": new_email}, headers=auth
        )
        assert change.status_code == 202, change.text
        tokens["email change confirmation"] = await mailed_token(mail_api, new_email, "confirm-email", seen)
        confirmed = await gateway.post(
            "/api/v1/email-changes/confirmation", json={"token": tokens["email change confirmation"]}
        )
        assert confirmed.status_code == 200, confirmed.text
        tokens["email change revert"] = await mailed_token(mail_api, email, "revert-email", seen)

        records = await every_record(kafka)
        assert any(key == account_id.encode() for _, key, _, _ in records), "the account's events are read"
        for topic, key, value, headers in records:
            raw = b" ".join([key or b"", value or b"", *(name.encode() + b"=" + v for name, v in headers)])
            for flow, token in tokens.items():
                assert token.encode() not in raw, f"the {flow} token is readable on {topic}"

        # what the bus does carry is sealed, and a sealed value is no token
        ours = [sealed_values(value) for _, key, value, _ in records if key == account_id.encode()]
        sealed = {name: value for fields in ours for name, value in fields.items()}
        assert {"verification_token", "reset_token", "invitation_token", "confirmation_token", "revert_token"} <= set(
            sealed
        ), sorted(sealed)
        stolen = [
            ("/api/v1/password-resets/confirmation", {"token": sealed["reset_token"], "new_password": NEW_PASSWORD}),
            ("/api/v1/invitations/acceptance", {"token": sealed["invitation_token"], "new_password": NEW_PASSWORD}),
            ("/api/v1/email-changes/reversal", {"token": sealed["revert_token"]}),
            ("/api/v1/accounts/verification", {"token": sealed["verification_token"]}),
        ]
        for path, body in stolen:
            refused = await gateway.post(path, json=body)
            assert refused.status_code in (400, 422), f"{path}: {refused.status_code} {refused.text}"
        # while the mailed token itself still works: the sealed one was refused for what it is
        reset = await gateway.post(
            "/api/v1/password-resets/confirmation",
            json={"token": tokens["password reset"], "new_password": NEW_PASSWORD},
        )
        assert reset.status_code == 200, reset.text

    logs = {path.name: path.read_text(errors="replace") for path in system.log_dir.glob("*.log")}
    for name, text in logs.items():
        for flow, token in tokens.items():
            assert token not in text, f"the {flow} token is in {name}"
        assert not re.search(r'"(verification|reset|invitation|confirmation|revert|join)_token": "v1\.', text), (
            f"{name} prints an event's value"
        )


async def session_token(gateway: httpx.AsyncClient, email: str) -> str:
    created = await gateway.post("/api/v1/sessions", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    return str(created.json()["token"])
