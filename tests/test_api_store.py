"""The gateway's shared store (gateway.store) through real gateway processes, accounts and PostgreSQL:
- rate limits hold across two gateway processes sharing the store, answer 429 with Retry-After, count per client
  (address, or user whichever session they use) and start afresh with the next window;
- Idempotency-Key replays the first answer without a second creation, refuses the key with another request,
  belongs to its client, and lets only one of concurrent requests with one key run.
Windows are a few seconds long here; the tests wait for a fresh window before counting, so that a burst is not cut
in two by a window's end."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from api_world import PASSWORD, log_in, sign_up, unique_email
from identifiers import new_uai
from system import System

pytestmark = pytest.mark.infra

WINDOW = 10  # seconds of every limited class below: room for a burst on a busy machine
LIMITS = {
    "GATEWAY_RATE_LIMIT_MAIL": f"6/{WINDOW}",
    "GATEWAY_RATE_LIMIT_READ": f"20/{WINDOW}",
    "GATEWAY_RATE_LIMIT_LOGIN": f"100000/{WINDOW}",
    "GATEWAY_RATE_LIMIT_WRITE": f"100000/{WINDOW}",
    "GATEWAY_RATE_LIMIT_FLUSH_SECONDS": "0.1",
    "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",  # each test's client is an X-Forwarded-For address of its own
}
FLUSHED = 0.5  # seconds: several flush intervals
TEMPLATE = "/api/v1/member-import-template"  # an anonymous read


STORE = "gateway_limits_test"  # the limited replicas' database


@pytest.fixture(scope="module")
async def limited(system) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:  # type: ignore[no-untyped-def]
    """Two gateway processes (two replicas) with small limits, sharing a store of their own."""
    database = STORE
    admin = await asyncpg.connect(system.stack.database_url("postgres").replace("+asyncpg", ""))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()
    await asyncio.to_thread(system.stack.ensure_database, database)
    settings = {**system.settings, **LIMITS, "GATEWAY_DATABASE_URL": system.stack.database_url(database)}
    replicas = []
    for shift in (21, 22):
        ports = {**system.ports, "gateway": system.ports["gateway"] + shift}
        log_dir = Path(system.log_dir) / f"limited-gateway-{shift}"
        replicas.append(
            System(system.stack, log_dir, ports, system.internal_token, system.secret_key, settings=settings)
        )
    try:
        for replica in replicas:
            await asyncio.to_thread(replica.start, ("gateway",))
        async with (
            httpx.AsyncClient(base_url=replicas[0].url("gateway"), timeout=10) as first,
            httpx.AsyncClient(base_url=replicas[1].url("gateway"), timeout=10) as second,
        ):
            yield first, second
    finally:
        for replica in replicas:
            await asyncio.to_thread(replica.stop)


async def fresh_window() -> None:
    """Wait for the start of the next window (windows are aligned on the epoch)."""
    await asyncio.sleep(WINDOW - time.time() % WINDOW + 0.05)


def client(number: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"192.0.2.{number}"}


async def test_an_exact_limit_holds_across_two_gateways_answers_429_and_resets_with_the_window(limited):
    first, second = limited
    await fresh_window()
    # sign-ups are `mail` (counted exactly, in the store); an empty form is refused (400) after being counted
    answers = [await (first, second)[i % 2].post("/api/v1/accounts", json={}, headers=client(10)) for i in range(8)]
    assert [a.status_code for a in answers] == [400] * 6 + [429] * 2, [a.text for a in answers]
    refused = answers[6]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= WINDOW and refused.json()["retry_after"] == wait

    assert (await second.post("/api/v1/accounts", json={}, headers=client(11))).status_code == 400  # another client

    await asyncio.sleep(wait)
    assert (await first.post("/api/v1/accounts", json={}, headers=client(10))).status_code == 400
    assert (await second.post("/api/v1/accounts", json={}, headers=client(10))).status_code == 400


async def read_until_refused(gateway: httpx.AsyncClient, headers: dict[str, str], at_most: int = 40) -> int:
    for count in range(at_most):
        answer = await gateway.get(TEMPLATE, headers=headers)
        if answer.status_code == 429:
            assert answer.json()["code"] == "rate_limited" and int(answer.headers["Retry-After"]) >= 1
            return count
        assert answer.status_code == 200, answer.text
    raise AssertionError(f"no 429 after {at_most} reads")


async def test_a_batched_limit_holds_across_two_gateways_within_one_flush(limited):
    first, second = limited
    await fresh_window()
    for _ in range(12):
        assert (await first.get(TEMPLATE, headers=client(20))).status_code == 200
    await asyncio.sleep(FLUSHED)  # the first gateway has added its 12 reads to the shared count
    # The second learns the shared total when it first sends a count of its own: one read until then.
    assert (await second.get(TEMPLATE, headers=client(20))).status_code == 200
    await asyncio.sleep(FLUSHED)
    assert await read_until_refused(second, client(20)) == 20 - 12 - 1
    # The first last heard 12: it admits until it hears the second's reads, at most two flush intervals later.
    await first.get(TEMPLATE, headers=client(20))
    await asyncio.sleep(FLUSHED)
    assert (await first.get(TEMPLATE, headers=client(20))).status_code == 429
    assert (await first.get(TEMPLATE, headers=client(21))).status_code == 200  # another client


async def test_an_authenticated_client_is_the_user_whichever_session(system, stack, limited):
    first, _ = limited
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Quota")
        other_session = await log_in(gateway, manager.email)
    await fresh_window()
    for auth in (manager.auth, other_session) * 10:
        assert (await first.get("/api/v1/me", headers={**auth, **client(30)})).status_code == 200
    for auth in (manager.auth, other_session):
        refused = await first.get("/api/v1/me", headers={**auth, **client(30)})
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited", refused.text
    assert (await first.get(TEMPLATE, headers=client(30))).status_code == 200  # the address itself is another client


def sign_up_form(email: str) -> dict[str, str]:
    return {
        "institution_name": "Lycée Idempotent",
        "institution_kind": "school",
        "institution_identifier": new_uai(),
        "contact_name": "Camille Martin",
        "email": email,
        "password": PASSWORD,
    }


async def users_with_email(system, email: str) -> int:  # type: ignore[no-untyped-def]
    connection = await asyncpg.connect(system.stack.database_url("accounts").replace("+asyncpg", ""))
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
        return count
    finally:
        await connection.close()


async def test_the_same_key_replays_the_first_answer_and_refuses_another_request(system):
    email = unique_email("idem")
    form, key = sign_up_form(email), {"Idempotency-Key": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        created = await gateway.post("/api/v1/accounts", json=form, headers=key)
        assert created.status_code == 201, created.text
        assert "Idempotency-Replayed" not in created.headers
        again = await gateway.post("/api/v1/accounts", json=form, headers=key)
        assert again.status_code == 201 and again.json() == created.json()
        assert again.headers["Idempotency-Replayed"] == "true"
        assert again.headers["content-type"] == created.headers["content-type"]
        assert await users_with_email(system, email) == 1

        other = await gateway.post("/api/v1/accounts", json={**form, "city": "Lyon"}, headers=key)
        assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused", other.text

        without_key = await gateway.post("/api/v1/accounts", json=form)  # what the retry would have met
        assert without_key.status_code == 409, without_key.text
        assert await users_with_email(system, email) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "clé"])
async def test_a_malformed_key_is_refused_and_nothing_is_created(system, key):
    email = unique_email("idem-bad")
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        answer = await gateway.post(
            "/api/v1/accounts", json=sign_up_form(email), headers=[("Idempotency-Key", key.encode())]
        )
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_idempotency_key", answer.text
    assert await users_with_email(system, email) == 0


async def member_count(gateway: httpx.AsyncClient, manager, email: str) -> int:  # type: ignore[no-untyped-def]
    listed = await gateway.get(f"/api/v1/accounts/{manager.account_id}/members", headers=manager.auth)
    assert listed.status_code == 200, listed.text
    return sum(1 for member in listed.json()["members"] if member["email"] == email)


async def test_keys_belong_to_their_client(system, stack):
    key = {"Idempotency-Key": "shared-by-chance"}
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        one = await sign_up(gateway, "Cle-Un", verified_with=stack.mail_api)
        two = await sign_up(gateway, "Cle-Deux", verified_with=stack.mail_api)
        first_email, second_email = unique_email("membre-un"), unique_email("membre-deux")
        for manager, email in ((one, first_email), (two, second_email)):
            added = await gateway.post(
                f"/api/v1/accounts/{manager.account_id}/members",
                json={"members": [{"name": "Léa Petit", "email": email}]},
                headers={**manager.auth, **key},
            )
            assert added.status_code == 200 and added.json()["invited"] == 1, added.text
            assert "Idempotency-Replayed" not in added.headers  # not the other client's answer, nor refused
        assert await member_count(gateway, one, first_email) == 1
        assert await member_count(gateway, two, second_email) == 1


async def test_concurrent_requests_with_one_key_run_once(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Concurrence", verified_with=stack.mail_api)
        email = unique_email("membre-concurrent")
        request = {
            "url": f"/api/v1/accounts/{manager.account_id}/members",
            "json": {"members": [{"name": "Léa Petit", "email": email}]},
            "headers": {**manager.auth, "Idempotency-Key": str(uuid.uuid4())},
        }
        answers = await asyncio.gather(*(gateway.post(**request) for _ in range(5)))
        ran = [a for a in answers if a.status_code == 200 and "Idempotency-Replayed" not in a.headers]
        assert len(ran) == 1, [(a.status_code, a.text) for a in answers]
        for answer in answers:
            if answer.status_code == 409:
                assert answer.json()["code"] == "idempotency_key_in_use" and answer.headers["Retry-After"]
            else:
                assert answer.status_code == 200 and answer.json() == ran[0].json()
        replayed = await gateway.post(**request)
        assert replayed.headers["Idempotency-Replayed"] == "true" and replayed.json() == ran[0].json()
        assert await member_count(gateway, manager, email) == 1


async def test_the_members_list_is_paged_with_its_total_and_links(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Pages", verified_with=stack.mail_api)
        members = f"/api/v1/accounts/{manager.account_id}/members"
        people = [{"name": f"Membre {n}", "email": unique_email(f"page-{n}")} for n in range(3)]
        added = await gateway.post(members, json={"members": people}, headers=manager.auth)
        assert added.status_code == 200 and added.json()["invited"] == 3, added.text

        first = await gateway.get(members, params={"limit": 2}, headers=manager.auth)
        assert first.status_code == 200, first.text
        assert (first.json()["total"], first.json()["limit"], first.json()["offset"]) == (4, 2, 0)
        assert len(first.json()["members"]) == 2
        assert first.headers["Link"] == f'<{members}?limit=2&offset=2>; rel="next"'

        last = await gateway.get(members, params={"limit": 2, "offset": 2}, headers=manager.auth)
        assert len(last.json()["members"]) == 2 and last.json()["offset"] == 2
        assert last.headers["Link"] == f'<{members}?limit=2&offset=0>; rel="prev"'
        shown = {m["member_id"] for m in first.json()["members"] + last.json()["members"]}
        assert len(shown) == 4

        whole = await gateway.get(members, headers=manager.auth)
        assert whole.json()["limit"] == 100 and "Link" not in whole.headers

        for wrong in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
            refused = await gateway.get(members, params=wrong, headers=manager.auth)
            assert refused.status_code == 400, refused.text


async def test_without_its_store_a_gateway_limits_on_its_own_and_refuses_idempotency_keys(system, limited):
    """The module's last test with the replicas: it drops their store."""
    first, _ = limited
    admin = await asyncpg.connect(system.stack.database_url("postgres").replace("+asyncpg", ""))
    try:
        await admin.execute(f'DROP DATABASE "{STORE}" WITH (FORCE)')
    finally:
        await admin.close()
    await fresh_window()
    answers = [(await first.post("/api/v1/accounts", json={}, headers=client(40))).status_code for _ in range(8)]
    assert answers == [400] * 6 + [429] * 2  # `mail`, counted in the process alone now
    assert await read_until_refused(first, client(41)) == 20

    keyed = await first.post(
        "/api/v1/accounts",
        json=sign_up_form(unique_email("sans-store")),
        headers={"Idempotency-Key": str(uuid.uuid4()), **client(42)},
    )
    assert keyed.status_code == 503 and keyed.json()["code"] == "idempotency_unavailable", keyed.text
    assert int(keyed.headers["Retry-After"]) >= 1
    log = (Path(system.log_dir) / "limited-gateway-21" / "gateway.log").read_text().split("\n=== ")[-1]  # this run
    assert log.count("gateway store unavailable") == 1, "the outage is logged once, not per request"
