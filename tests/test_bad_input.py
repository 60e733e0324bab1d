"""Bad input never makes a 5xx and is never stored: every route of the public API (walked from the gateway's
OpenAPI document, so a new route is covered without editing this file), and every route of accounts' internal
API behind it (defence in depth), get each class of bad input: a NUL or control character in each text field,
a field one character longer than it may be, a wrong type, integers beyond 64 bits in the query and the body,
JSON nested 1,000 deep, a body that is not UTF-8 or not JSON. Each is a 400 problem from the edge naming the
field, and the accounts database is unchanged afterwards.

Also the client's address (finding 3): X-Forwarded-For from a peer that is not a trusted proxy is ignored, so
it neither bypasses nor aims the per-source login throttle, and a session records a real address."""

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from billing_world import paid_order
from join_world import enrolled_link, starting_soon
from portal_world import csrf_token

from api_world import PASSWORD, World, make_world, stored_counts, unique_email

pytestmark = pytest.mark.infra

HUGE = 2**70
EDGE_CODES = {"invalid_request", "invalid_body"}
METHODS = ("get", "post", "put", "patch", "delete")
Path = tuple[Any, ...]  # where a field is in a body: keys and list positions

# Values that pass every check at the edge, so that a mutated field is the only thing wrong with a body.
REALISTIC: dict[str, Any] = {
    "institution_name": "Association Les Hérons",
    "institution_kind": "other",
    "contact_name": "Camille Martin",
    "password": PASSWORD,
    "current_password": PASSWORD,
    "new_password": "amber kites over the quiet canal",
    "language": "fr",
    "institution_identifier": "ASSO-2026-17",
    "city": "Lyon",
    "postal_address": "3 rue des Lilas",
    "billing_address": "3 rue des Lilas",
    "name": "Camille Martin",
    "phone": "+33612345678",
    "vat_number": "FR40303265045",
    "token": "t" * 43,
    "role": "member",
    "source": "192.0.2.10",
}


# The catalogue's ids in paths: none names anything (the manager sweeping is no organiser anyway).
CATALOGUE_IDS = {name: str(uuid.uuid4()) for name in ("theme_id", "session_id", "series_id", "room_id")}
# A webhook endpoint's id in paths: none of the account's (nothing passes the edge anyway).
WEBHOOK_IDS = {"webhook_id": str(uuid.uuid4())}
# An enrolment's, a waiting-list entry's, a link sending's and a certificate's ids in paths: none of the account's.
ENROLMENT_IDS = {name: str(uuid.uuid4()) for name in ("enrollment_id", "entry_id", "share_id", "certificate_id")}


@pytest.fixture(scope="module")
async def world(system) -> World:
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        return await make_world(gateway, system.stack.mail_api, "bad-input")


class Api:
    """One service's HTTP API as its OpenAPI document describes it, with what a call needs to get past
    authentication: headers and real ids for the path parameters."""

    def __init__(self, base_url: str, prefix: str, headers: dict[str, str], ids: dict[str, str]) -> None:
        self.base_url, self.prefix, self.headers, self.ids = base_url, prefix, headers, ids
        self.spec: dict[str, Any] = {}

    async def load(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{self.base_url}/schema/openapi.json")
        assert response.status_code == 200
        self.spec = response.json()

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.spec["components"]["schemas"][name]
        return schema

    def concrete(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema itself, or the one alternative of an optional (anyOf / oneOf with null) that is not null."""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(s) for s in schema[key] if self.resolve(s).get("type") != "null"]
                return self.concrete(options[0]) if options else {"type": "null"}
        return schema

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.spec["paths"].items():
            if path.startswith(self.prefix):
                for method in METHODS:
                    if method in item:
                        yield method.upper(), path, item[method]

    def url(self, path: str) -> str:
        for name, value in self.ids.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"no real id for a parameter of {path}"
        return self.base_url + path

    def body_schema(self, operation: dict[str, Any]) -> dict[str, Any] | None:
        content = operation.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return self.concrete(schema) if schema else None

    def example(self, schema: dict[str, Any], name: str = "") -> Any:
        schema = self.concrete(schema)
        if name in REALISTIC:
            return REALISTIC[name]
        if "enum" in schema:
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        kind = schema.get("type")
        if kind == "object":
            return {key: self.example(sub, key) for key, sub in schema.get("properties", {}).items()}
        if kind == "array":
            return [self.example(schema.get("items", {}), name)]
        if kind == "integer":
            return schema.get("minimum", 1)
        if kind == "boolean":
            return True
        if schema.get("format") == "email" or "email" in name:
            return unique_email("edge")
        if schema.get("format") == "uuid" or name.endswith("_id"):
            return str(uuid.uuid4())
        return "x" * max(schema.get("minLength", 1), 1)

    def leaves(
        self, schema: dict[str, Any], at: tuple[Any, ...] = ()
    ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Every field of a body (nested objects and the first item of lists too), with its schema."""
        schema = self.concrete(schema)
        if schema.get("type") == "object":
            for key, sub in schema.get("properties", {}).items():
                yield (*at, key), self.concrete(sub)
                yield from self.leaves(sub, (*at, key))
        elif schema.get("type") == "array":
            yield from self.leaves(schema.get("items", {}), (*at, 0))


def with_value(body: Any, at: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(body)
    target = changed
    for step in at[:-1]:
        target = target[step]
    target[at[-1]] = value
    return changed


def field_mutations(name: Any, schema: dict[str, Any], base: Any) -> Iterator[tuple[str, Any]]:
    """(what, value) for each bad value field `name` of this schema may be given. A password may hold control
    characters (it is never stored as text), not a NUL."""
    kind = schema.get("type")
    if kind == "string":
        text = base if isinstance(base, str) else "abc"
        yield "NUL", text[:1] + "\x00" + text[1:]
        if "password" not in str(name):
            yield "control character", text[:1] + "\x1b[2J" + text[1:]
        if "maxLength" in schema:
            yield "one character too many", "x" * (schema["maxLength"] + 1)
        yield "an integer beyond 64 bits", HUGE
        yield "an object", {"$gt": ""}
        yield "a list", [text]
    elif kind == "integer":
        yield "an integer beyond 64 bits", HUGE
        yield "a negative integer beyond 64 bits", -HUGE
        yield "a string", "many"
    elif kind in ("object", "array"):
        yield "a string", "\x00"
        yield "an integer beyond 64 bits", HUGE
    elif kind == "boolean":
        yield "a string", "yes\x00"


def assert_refused_at_edge(response: httpx.Response, what: str, field: Any = None) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    assert 400 <= response.status_code < 500, f"{what}: accepted ({response.status_code})"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    problem = response.json()
    assert problem["code"] in EDGE_CODES, f"{what}: {problem}"
    if field is not None:
        named = " ".join(str(error.get("key", "")) for error in problem.get("errors", []))
        assert str(field) in named, f"{what}: the problem does not name {field}: {problem}"


async def sweep(api: Api, client: httpx.AsyncClient) -> int:
    """Every bad input to every route of `api`; the number of requests sent."""
    sent = 0
    for method, path, operation in api.operations():
        url = api.url(path)
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and api.concrete(parameter.get("schema", {})).get("type") == "integer":
                for value in (str(HUGE), str(-HUGE), "1e400", "0x10"):
                    response = await client.request(method, url, params={parameter["name"]: value}, headers=api.headers)
                    assert_refused_at_edge(response, f"{method} {path}?{parameter['name']}={value}", parameter["name"])
                    sent += 1
        schema = api.body_schema(operation)
        if schema is None:
            continue
        json_headers = {**api.headers, "Content-Type": "application/json"}
        whole = {
            "JSON 1,000 deep": b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}",
            "not UTF-8": b'{"email": "caf\xe9\xff@example.fr", "name": "\xc3\x28"}',
            "not JSON": b'{"email": ',
            "a list instead of an object": b"[1, 2, 3]",
            "a huge integer instead of an object": str(HUGE).encode(),
        }
        for what, content in whole.items():
            response = await client.request(method, url, content=content, headers=json_headers)
            assert_refused_at_edge(response, f"{method} {path}: {what}")
            sent += 1
        base = api.example(schema)
        for at, leaf in api.leaves(schema):
            original: Any = base
            for step in at:
                original = original[step]
            for what, value in field_mutations(at[-1], leaf, original):
                response = await client.request(method, url, json=with_value(base, at, value), headers=api.headers)
                assert_refused_at_edge(response, f"{method} {path}: {what} in {'.'.join(map(str, at))}", at[-1])
                sent += 1
    return sent


async def test_bad_input_to_every_public_route_is_a_400_and_stores_nothing(system, world):
    ids = world.path_values() | CATALOGUE_IDS | WEBHOOK_IDS | ENROLMENT_IDS
    gateway = Api(system.url("gateway"), "/api/", world.auth, ids)
    async with httpx.AsyncClient(timeout=30) as client:
        await gateway.load(client)
        before = await stored_counts(system.stack.database_url("accounts"))
        sent = await sweep(gateway, client)
        assert await stored_counts(system.stack.database_url("accounts")) == before
        assert (await client.get(f"{gateway.base_url}/api/v1/me", headers=world.auth)).status_code == 200
    assert sent > 200  # every route was walked (the document lists them all)


async def test_bad_input_to_every_internal_route_of_accounts_is_a_400_and_stores_nothing(system, world):
    headers = {"X-Internal-Token": system.internal_token, "X-Actor-Id": world.manager_id}
    accounts = Api(
        system.url("accounts"), "/internal/", headers, world.path_values() | {"session_id": str(uuid.uuid4())}
    )
    async with httpx.AsyncClient(timeout=30) as client:
        await accounts.load(client)
        before = await stored_counts(system.stack.database_url("accounts"))
        sent = await sweep(accounts, client)
        assert await stored_counts(system.stack.database_url("accounts")) == before
    assert sent > 200


async def test_text_as_long_as_the_api_allows_is_stored(system):
    """The API's lengths are the columns': a free-text identifier of 64 characters (kind "other") is kept."""
    email = unique_email("long-identifier")
    body = {
        "institution_name": "A" * 200,
        "institution_kind": "other",
        "institution_identifier": "RNA-" + "7" * 60,
        "contact_name": "C" * 200,
        "email": email,
        "password": PASSWORD,
        "city": "L" * 100,
        "postal_address": "3 rue des Lilas\n" + "B" * 484,
    }
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        created = await gateway.post("/api/v1/accounts", json=body)
        assert created.status_code == 201, created.text
        opened = await gateway.post("/api/v1/sessions", json={"email": email, "password": PASSWORD})
        auth = {"Authorization": f"Bearer {opened.json()['token']}"}
        profile = await gateway.get(f"/api/v1/accounts/{created.json()['account_id']}/profile", headers=auth)
        assert profile.status_code == 200
        assert "RNA-" + "7" * 60 in profile.text


def from_address(address: str) -> httpx.AsyncHTTPTransport:
    """Requests from another loopback address (Linux answers on all of 127.0.0.0/8): a source of their own."""
    return httpx.AsyncHTTPTransport(local_address=address)


async def test_x_forwarded_for_from_an_untrusted_peer_neither_bypasses_nor_aims_the_login_throttle(system):
    url = system.url("gateway")
    async with (
        httpx.AsyncClient(base_url=url, timeout=30, transport=from_address("127.0.0.77")) as attacker,
        httpx.AsyncClient(base_url=url, timeout=30, transport=from_address("127.0.0.99")) as victim,
    ):
        manager = await make_world(victim, system.stack.mail_api, "xff-victim")
        statuses = []
        for attempt in range(31):
            response = await attacker.post(
                "/api/v1/sessions",
                json={"email": unique_email(f"nobody-{attempt}"), "password": "wrong password, wrong again"},
                headers={"X-Forwarded-For": f"198.51.100.{attempt}, 127.0.0.99"},
            )
            statuses.append(response.status_code)
        assert statuses[:30] == [401] * 30
        assert statuses[30] == 429, "a new X-Forwarded-For each time must not reset the per-source count"
        # the victim's address, named in X-Forwarded-For, was not locked out
        opened = await victim.post("/api/v1/sessions", json={"email": manager.email, "password": PASSWORD})
        assert opened.status_code == 201, opened.text


async def test_a_session_records_the_peer_address_never_the_text_of_x_forwarded_for(system):
    url = system.url("gateway")
    async with httpx.AsyncClient(base_url=url, timeout=30, transport=from_address("127.0.0.55")) as client:
        manager = await make_world(client, system.stack.mail_api, "xff-source")
        for forwarded in ("<script>alert(1)</script>", "x" * 5000, "203.0.113.9"):
            opened = await client.post(
                "/api/v1/sessions",
                json={"email": manager.email, "password": PASSWORD},
                headers={"X-Forwarded-For": forwarded},
            )
            assert opened.status_code == 201, opened.text
        export = await client.get(f"/api/v1/accounts/{manager.account_id}/export", headers=manager.auth)
        assert export.status_code == 200
        assert "<script>" not in export.text and "203.0.113.9" not in export.text and "xxxxx" not in export.text
    connection = await asyncpg.connect(system.stack.database_url("accounts").replace("+asyncpg", ""))
    try:
        sources = await connection.fetch(
            "SELECT DISTINCT s.source FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1",
            manager.email,
        )
    finally:
        await connection.close()
    assert [row["source"] for row in sources] == ["127.0.0.55"]


async def test_accounts_takes_only_an_ip_address_as_a_source(system):
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("accounts"), timeout=30) as accounts:
        before = await stored_counts(system.stack.database_url("accounts"))
        for source in ("<script>alert(1)</script>", "unknown", "x" * 5000, "", "10.0.0.1, 10.0.0.2"):
            body = {"email": unique_email("src"), "password": "wrong password, wrong again", "source": source}
            response = await accounts.post("/internal/sessions", json=body, headers=headers)
            assert_refused_at_edge(response, f"source {source[:20]!r}", "source")
            for path in ("/internal/password-resets", "/internal/accounts/verification/resend"):
                response = await accounts.post(path, json={"email": body["email"], "source": source}, headers=headers)
                assert_refused_at_edge(response, f"{path} with source {source[:20]!r}", "source")
        assert await stored_counts(system.stack.database_url("accounts")) == before


async def test_bad_input_to_the_public_join_forms_and_hooks_is_refused_without_a_5xx(system):
    """The join page's forms (name, entry code, feedback), the certificate check and the rooms' hooks: control
    characters, text too long, a body that is not UTF-8, JSON nested 1,000 deep... a 4xx, never a 5xx."""
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as browser:
        manager = await make_world(browser, system.stack.mail_api, "bad-input-join")
        await paid_order(system.url("gateway"), manager.auth, manager.account_id)
        session_id, _, token = await enrolled_link(system, manager)
        await bad_input_to_a_join_link(browser, system, session_id, token)


async def bad_input_to_a_join_link(browser: httpx.AsyncClient, system: Any, session_id: str, token: str) -> None:
    page = f"/join/{token}"
    shown = await browser.get(page)
    csrf = csrf_token(shown.text)
    await starting_soon(system, session_id, token)
    bad_values = ["\x00", "a\x1b[2Jb", "x" * 5000]
    for field in ("name", "email"):
        for value in bad_values:
            answer = await browser.post(page, data={"_csrf_token": csrf, "name": "Camille", field: value})
            assert answer.status_code == 400, (field, value[:10], answer.status_code)
    for path, fields in ((f"{page}/entry-code", ("code",)), (f"{page}/feedback", ("name", "rating", "comment"))):
        for field in fields:
            for value in bad_values:
                answer = await browser.post(path, data={"_csrf_token": csrf, field: value})
                assert 300 <= answer.status_code < 500, (path, field, answer.status_code)
    not_utf8 = await browser.post(
        page,
        content=b"_csrf_token=" + csrf.encode() + b"&name=caf\xe9\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code < 500  # decoded by the framework as best it can: a name like another
    assert (await browser.post(page, data={"name": "Camille"})).status_code == 403  # no CSRF token
    for code in ("\x00", "x" * 5000, "é" * 30):
        assert (await browser.get("/certificates/verify", params={"code": code})).status_code == 404
    bearer = {"Authorization": f"Bearer {system.jitsi_webhook_token}", "Content-Type": "application/json"}
    for body in (
        b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"eventType": "caf\xe9\xff"}',
        b'{"eventType": ',
        b"[1, 2, 3]",
        b'{"eventType": "PARTICIPANT_LEFT", "timestamp": 1180591620717411303424}',
        b'{"eventType": "PARTICIPANT_LEFT\\u0000"}',
    ):
        answer = await browser.post("/hooks/rooms/jitsi", content=body, headers=bearer)
        assert answer.status_code == 400, (body[:40], answer.status_code, answer.text[:200])
    odd = {"eventType": "PARTICIPANT_LEFT", "room": "visiopass-not-a-uuid", "data": {"id": "someone"}}
    assert (await browser.post("/hooks/rooms/jitsi", json=odd, headers=bearer)).status_code == 204
    assert (await browser.get(f"/hooks/rooms/{session_id}/ended?sig=%00")).status_code == 404
