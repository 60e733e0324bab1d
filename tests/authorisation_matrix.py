"""The authorisation matrix: for every route of the gateway (method and path template, exactly as the gateway's route
table writes them), the answer each of five callers must get. `tests/test_authorisation_matrix.py` walks the
route table and fails on a route without an entry here, on an entry without a route, and on every answer that
differs from its entry.

The callers (`CALLERS`): `anonymous` (no session), `member_a` (a member of institution A), `manager_a` (A's
manager), `manager_b` (the manager of another institution, B) and `organiser` (the back-office; a manager of an
institution of their own, never of A). API calls carry the caller's session as `Authorization: Bearer`, page
calls as the portal's session cookie; every form post carries a valid CSRF token.

Each caller sends a *valid* request (real ids, a body the route accepts, a live mailed token...): a refusal
for bad input would hide a missing authorisation check. A call that changes or destroys something gets a fresh
target of its own (`Call` built by the entry's `call`), so that one caller's call never spoils the next.

Adding a route: add one line to `ENTRIES`.
- A JSON API route: `api("GET", "/api/v1/accounts/{account_id:uuid}/things", **READ)` — the presets say the
  usual answers (`READ`: the account's people and organisers; `EDIT`/`MANAGE`: its managers only, members and
  organisers 403, others 404; `ORGANISERS`: organisers only; `SELF`: any signed-in person, about themself).
  Give `call=` a function `(scene, caller) -> Call` when the default (A's account id, A's member, no body) is
  not a valid request, and `after=N` when a wrong answer (a missing check) would spoil the other calls: it then
  runs in round N, after every call of the rounds before (1: may close A; 2: changes the callers' passwords,
  ending their other sessions; 3: ends every session of the callers).
- A page: `page("GET", "/account/members", anonymous=303, member_a=200, ...)`, or `public_page(path)` for a
  page everyone sees, `signed_in_page(path)` for one that any signed-in person sees (the anonymous are sent
  to the login page: 303). A form: `page("POST", path, ..., call=...)` with `Call(form={...})`.
- Anything the same for everyone (health, schema, assets): `everyone(method, path, status, call=...)`.
Expected answers are what the design says (docs/accounts.md, "Who may do what"), not what the code happens to
do: if a route answers otherwise, fix the route, or mark the entry with `bug=` and say so.
"""

import asyncio
import secrets
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from api_world import MEMBER_PASSWORD, PASSWORD, grant_organiser, link_path, unique_email
from identifiers import new_uai
from mail import wait_for_mail

CALLERS = ("anonymous", "member_a", "manager_a", "manager_b", "organiser")
SESSION_COOKIE = "vp_session"  # gateway.web: the portal's session cookie holds the same token as the API's bearer
CSRF_COOKIE = "csrftoken"  # Litestar's CSRF middleware: cookie, and the header that may carry the same token
CSRF_HEADER = "x-csrftoken"
NEW_PASSWORD = "copper violins hum beneath frozen rivers"
# Each caller (and the scene's own set-up) calls from a loopback address of its own: per-source limits
# (resets, sign-ups, logins) then count this test's calls apart from every other test's.
SOURCES = {name: f"127.0.0.{80 + i}" for i, name in enumerate(("setup", *CALLERS))}
# Every call gets a client of its own (no cookie carried from one call to the next), and httpx spends ~35 ms of
# CPU making each new client's TLS context: they share this one (the gateway is plain HTTP here anyway).
TLS_CONTEXT = ssl.create_default_context()

# The usual answers, by who may act on account A (accounts.access; docs/accounts.md "Who may do what").
READ = {"anonymous": 401, "member_a": 200, "manager_a": 200, "manager_b": 404, "organiser": 200}
EDIT = {"anonymous": 401, "member_a": 403, "manager_a": 200, "manager_b": 404, "organiser": 403}
MANAGE = EDIT  # the account's people: managers only
LIST = {"anonymous": 401, "member_a": 403, "manager_a": 200, "manager_b": 404, "organiser": 200}
ORGANISERS = {"anonymous": 401, "member_a": 403, "manager_a": 403, "manager_b": 403, "organiser": 200}
# "Mon compte" pages act on the institution the caller looks at (their own): a member may not edit it, and a form
# that worked redirects (303), as does the anonymous caller's, to the login page; a new API token's page is 200.
PAGE_EDIT = {"anonymous": 303, "member_a": 403, "manager_a": 303, "manager_b": 303, "organiser": 303}
PAGE_MANAGE = {"anonymous": 303, "member_a": 403, "manager_a": 200, "manager_b": 200, "organiser": 200}
# A form on one of A's people (its member id in the path): someone looking at another institution finds nothing.
A_MEMBER_PAGE = {"anonymous": 303, "member_a": 403, "manager_a": 303, "manager_b": 404, "organiser": 404}
BACK_OFFICE_PAGE = {"anonymous": 303, "member_a": 404, "manager_a": 404, "manager_b": 404}
ENROLMENT = "/api/v1/accounts/{account_id:uuid}/enrolments/{enrollment_id:uuid}"  # one of A's, and what it has


def ok(expected: Mapping[str, int], status: int) -> dict[str, int]:
    """A preset with the status of success (e.g. 202, 204) in place of 200."""
    return {caller: status if answer == 200 else answer for caller, answer in expected.items()}


def SELF(status: int = 200, anonymous: int = 401) -> dict[str, int]:
    """Any signed-in person, about themself."""
    return {caller: anonymous if caller == "anonymous" else status for caller in CALLERS}


@dataclass
class Person:
    email: str
    password: str
    user_id: str
    account_id: str  # the institution they signed up, or were first invited to
    token: str  # their session's token


@dataclass
class Call:
    """One request, as the entry builds it for one caller."""

    values: dict[str, str] = field(default_factory=dict)  # path parameters, by name
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None
    form: dict[str, str] | None = None
    query: dict[str, str] | None = None
    token: str | None = None  # a session standing in for the caller's own (same role), when the call ends it
    anonymous: bool = False  # send no session at all
    headers: dict[str, str] = field(default_factory=dict)  # more headers (e.g. a webhook's signature)
    cookies: dict[str, str] = field(default_factory=dict)  # more cookies (e.g. the institution a page shows)


@dataclass
class Scene:
    """Institutions A and B and the five callers, plus two verified managers of set-up accounts (`host`,
    `host2`) who invite people for the calls that need a mailed token or a pending request."""

    url: str
    mail_api: str
    system: Any
    people: dict[str, Person]  # every caller but the anonymous
    account_a: str
    account_b: str
    invited_a: str  # a member of A who has not accepted yet (sending the invitation again, role changes)
    host: Person
    host2: Person

    def client(self, source: str = "setup") -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=SOURCES[source], verify=TLS_CONTEXT)
        return httpx.AsyncClient(base_url=self.url, transport=transport, timeout=60)

    def values(self) -> dict[str, str]:
        """The default path values: A's account, A's member (the caller `member_a`), an organiser."""
        return {
            "account_id": self.account_a,
            "member_id": self.people["member_a"].user_id,
            "user_id": self.people["organiser"].user_id,
        }

    # --- people and mailed tokens, made fresh for one call --------------------------------------------------

    async def sign_up(self, label: str, *, verified: bool = False) -> Person:
        async with self.client() as gateway:
            for _ in range(3):  # a stand-in for one call: a sign-up that timed out on the loaded machine is done again
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
                if created.status_code != 503:
                    break
            assert created.status_code == 201, created.text
            if verified:
                token = await self.mailed_token(email, "Confirmez votre adresse", "verify-email")
                verified_answer = await gateway.post("/api/v1/accounts/verification", json={"token": token})
                assert verified_answer.status_code == 200, verified_answer.text
            return await self.log_in(email, PASSWORD, created.json()["account_id"])

    async def log_in(self, email: str, password: str, account_id: str) -> Person:
        async with self.client() as gateway:
            opened = await gateway.post("/api/v1/sessions", json={"email": email, "password": password})
            assert opened.status_code == 201, opened.text
            session = opened.json()
            return Person(email, password, session["identity"]["user_id"], account_id, session["token"])

    async def mailed_token(self, to: str, subject: str, page: str) -> str:
        mail = await wait_for_mail(self.mail_api, to, subject_contains=subject)
        return link_path(mail, page).split("token=", 1)[1]

    async def invite(self, host: Person, email: str) -> None:
        async with self.client() as gateway:
            added = await gateway.post(
                f"/api/v1/accounts/{host.account_id}/members",
                json={"members": [{"name": "Léa Petit", "email": email}]},
                headers=bearer(host.token),
            )
            assert added.status_code == 200 and added.json()["rejected"] == [], added.text

    async def member_of_a(self, label: str) -> str:
        """A new invited member of A, for one call that changes or removes them: their member id."""
        email = unique_email(label)
        manager = self.people["manager_a"]
        await self.invite(manager, email)
        async with self.client() as gateway:
            listed = await gateway.get(
                f"/api/v1/accounts/{self.account_a}/members", params={"limit": 1000}, headers=bearer(manager.token)
            )
        [member_id] = [m["member_id"] for m in listed.json()["members"] if m["email"] == email]
        return str(member_id)

    async def verification_token(self) -> str:
        person = await self.sign_up("verify")
        return await self.mailed_token(person.email, "Confirmez votre adresse", "verify-email")

    async def reset_token(self) -> str:
        person = await self.sign_up("reset")
        async with self.client() as gateway:
            asked = await gateway.post("/api/v1/password-resets", json={"email": person.email})
            assert asked.status_code == 202, asked.text
        return await self.mailed_token(person.email, "Réinitialisez", "reset-password")

    async def invitation_token(self) -> str:
        email = unique_email("invited")
        await self.invite(self.host, email)
        return await self.mailed_token(email, "vous invite", "accept-invitation")

    async def join_token(self) -> str:
        person = await self.sign_up("joiner")
        await self.invite(self.host, person.email)
        return await self.mailed_token(person.email, "Invitation à rejoindre", "join")

    async def email_change(self) -> tuple[Person, str, str]:
        """(the person, their new address, the token that confirms it)."""
        person = await self.sign_up("mover")
        new_email = unique_email("moved")
        async with self.client() as gateway:
            asked = await gateway.post(
                "/api/v1/me/email-change",
                json={"password": person.password, "new_email": new_email},
                headers=bearer(person.token),
            )
            assert asked.status_code == 202, asked.text
        return person, new_email, await self.mailed_token(new_email, "nouvelle adresse", "confirm-email")

    async def email_change_token(self) -> str:
        return (await self.email_change())[2]

    async def reversal_token(self) -> str:
        person, _, token = await self.email_change()
        async with self.client() as gateway:
            confirmed = await gateway.post("/api/v1/email-changes/confirmation", json={"token": token})
            assert confirmed.status_code == 200, confirmed.text
        return await self.mailed_token(person.email, "a été modifiée", "revert-email")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


Build = Callable[[Scene, str], Awaitable[Call]]


async def default_call(scene: Scene, caller: str) -> Call:
    return Call(scene.values())


@dataclass(frozen=True)
class Entry:
    method: str
    path: str  # the route's template, as the gateway's route table writes it
    expected: Mapping[str, int]
    call: Build = default_call
    after: int = 0  # 0, or the later round it runs in: calls that could spoil the others' run after them
    bug: str | None = None  # a known wrong answer, reported rather than encoded

    def __post_init__(self) -> None:
        assert set(self.expected) == set(CALLERS), f"{self.method} {self.path}: every caller needs an answer"


def api(method: str, path: str, expected: Mapping[str, int], call: Build = default_call, after: int = 0) -> Entry:
    return Entry(method, path, dict(expected), call, after)


def everyone(method: str, path: str, status: int = 200, call: Build = default_call) -> Entry:
    return Entry(method, path, dict.fromkeys(CALLERS, status), call)


def page(method: str, path: str, call: Build = default_call, **expected: int) -> Entry:
    return Entry(method, path, expected, call)


def public_page(path: str, method: str = "GET", call: Build = default_call) -> Entry:
    return everyone(method, path, 200, call)


def signed_in_page(path: str, method: str = "GET", call: Build = default_call, status: int = 200) -> Entry:
    return Entry(method, path, SELF(status, anonymous=303), call)


# --- the valid request of each route that needs more than the default ------------------------------------------


def body(build: Callable[[Scene, str], Awaitable[Any]]) -> Build:
    """A JSON body built for one call (default path values)."""

    async def call(scene: Scene, caller: str) -> Call:
        return Call(scene.values(), json=await build(scene, caller))

    return call


def form(build: Callable[[Scene, str], Awaitable[dict[str, str]]]) -> Build:
    async def call(scene: Scene, caller: str) -> Call:
        return Call(scene.values(), form=await build(scene, caller))

    return call


def fixed(**json: Any) -> Build:
    async def call(scene: Scene, caller: str) -> Call:
        return Call(scene.values(), json=json)

    return call


async def sign_up_body(scene: Scene, caller: str) -> dict[str, Any]:
    return {
        "institution_name": f"Lycée {caller}",
        "institution_kind": "school",
        "institution_identifier": new_uai(),
        "contact_name": "Camille Martin",
        "email": unique_email(caller),
        "password": PASSWORD,
    }


async def a_new_email(scene: Scene, caller: str) -> dict[str, str]:
    return {"email": unique_email(caller)}


async def host_credentials(scene: Scene, caller: str) -> dict[str, str]:
    return {"email": scene.host.email, "password": PASSWORD}


async def verification(scene: Scene, caller: str) -> dict[str, str]:
    return {"token": await scene.verification_token()}


async def reset(scene: Scene, caller: str) -> dict[str, str]:
    return {"token": await scene.reset_token(), "new_password": NEW_PASSWORD}


async def invitation(scene: Scene, caller: str) -> dict[str, str]:
    return {"token": await scene.invitation_token(), "new_password": NEW_PASSWORD}


async def join(scene: Scene, caller: str) -> dict[str, str]:
    return {"token": await scene.join_token()}


async def email_confirmation(scene: Scene, caller: str) -> dict[str, str]:
    return {"token": await scene.email_change_token()}


async def email_reversal(scene: Scene, caller: str) -> dict[str, str]:
    return {"token": await scene.reversal_token()}


async def own_password(scene: Scene, caller: str) -> dict[str, str]:
    return {"password": scene.people[caller].password if caller != "anonymous" else PASSWORD}


async def password_change(scene: Scene, caller: str) -> dict[str, str]:
    return {"current_password": (await own_password(scene, caller))["password"], "new_password": NEW_PASSWORD}


async def email_change(scene: Scene, caller: str) -> dict[str, str]:
    return {**await own_password(scene, caller), "new_email": unique_email(f"{caller}-new")}


async def new_members(scene: Scene, caller: str) -> dict[str, Any]:
    return {"members": [{"name": "Léa Petit", "email": unique_email(f"{caller}-added")}]}


async def csv_import(scene: Scene, caller: str) -> Call:
    rows = f"Prénom;Nom;E-mail\r\nLéa;Petit;{unique_email(f'{caller}-imported')}\r\n"
    return Call(scene.values(), content=rows.encode(), content_type="text/csv")


async def new_member_form(scene: Scene, caller: str) -> dict[str, str]:
    return {"name": "Léa Petit", "email": unique_email(f"{caller}-page-added")}


async def several_members_form(scene: Scene, caller: str) -> dict[str, str]:
    return {"people": f"Léa Petit ; {unique_email(f'{caller}-page-batch')}"}


async def page_csv_import(scene: Scene, caller: str) -> Call:
    """The import form as a browser sends it: multipart, the file in its `file` field."""
    rows = f"Prénom;Nom;E-mail\r\nLéa;Petit;{unique_email(f'{caller}-page-imported')}\r\n"
    boundary = "visiopass-matrix"
    part = 'Content-Disposition: form-data; name="file"; filename="membres.csv"\r\nContent-Type: text/csv\r\n\r\n'
    content = f"--{boundary}\r\n{part}{rows}\r\n--{boundary}--\r\n".encode()
    return Call(scene.values(), content=content, content_type=f"multipart/form-data; boundary={boundary}")


async def page_correction(scene: Scene, caller: str) -> Call:
    member_id = await scene.member_of_a(f"{caller}-page-misspelt")
    return Call(scene.values() | {"member_id": member_id}, form={"email": unique_email(f"{caller}-page-corrected")})


async def page_role_of_invited(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"member_id": scene.invited_a}, form={"role": "member"})


async def role_of_invited(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"member_id": scene.invited_a}, json={"role": "member"})


async def invited_of_a(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"member_id": scene.invited_a})


async def removable_member(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"member_id": await scene.member_of_a(f"{caller}-removed")})


async def closure(scene: Scene, caller: str) -> Call:
    """A's manager closes an account of their own made for this call (A must stay open); the others try A."""
    if caller != "manager_a":
        return Call(scene.values(), json=await own_password(scene, caller))
    stand_in = await scene.sign_up("closing")
    return Call(scene.values() | {"account_id": stand_in.account_id}, json={"password": PASSWORD}, token=stand_in.token)


async def another_session(scene: Scene, caller: str) -> Call:
    """A second session of the caller, which the call ends."""
    if caller == "anonymous":
        return Call(anonymous=True)
    person = scene.people[caller]
    return Call(token=(await scene.log_in(person.email, person.password, person.account_id)).token)


def pending_request(host_of: Callable[[Scene], Person]) -> Build:
    """An institution (`host_of(scene)`) asks the caller to join; the call answers it."""

    async def call(scene: Scene, caller: str) -> Call:
        host = host_of(scene)
        if caller != "anonymous":
            await scene.invite(host, scene.people[caller].email)
        return Call({"account_id": host.account_id})

    return call


async def new_user(scene: Scene, caller: str) -> Call:
    """Someone to make an organiser."""
    return Call({"user_id": (await scene.sign_up(f"{caller}-promoted")).user_id})


async def new_organiser(scene: Scene, caller: str) -> Call:
    """An organiser (besides the caller `organiser`) to take the role from."""
    person = await scene.sign_up(f"{caller}-demoted")
    await grant_organiser(scene.system, person.email)
    return Call({"user_id": person.user_id})


async def csrf_token(scene: Scene, caller: str) -> str:
    async with scene.client(caller) as gateway:
        return (await gateway.get("/")).cookies[CSRF_COOKIE]


async def asset(scene: Scene, caller: str) -> Call:
    return Call({"name": "swagger-ui.css"})


async def schema_page(scene: Scene, caller: str) -> Call:
    return Call({"path": "openapi.json"})


async def forgot(scene: Scene, caller: str) -> dict[str, str]:
    return {"email": unique_email(caller)}


async def sign_up_form(scene: Scene, caller: str) -> dict[str, str]:
    return {key: str(value) for key, value in (await sign_up_body(scene, caller)).items()}


async def language(scene: Scene, caller: str) -> dict[str, str]:
    return {"language": "fr", "next": "/"}


async def log_out_page(scene: Scene, caller: str) -> Call:
    return await another_session(scene, caller)


async def stand_in(scene: Scene, caller: str) -> Call:
    """Someone else's session, for a call about oneself that would end all of the caller's sessions."""
    if caller == "anonymous":
        return Call(anonymous=True)
    return Call(token=(await scene.sign_up(f"{caller}-stand-in")).token)


async def new_api_token(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), json={"name": f"Export {caller}", "scope": "read"})


async def revocable_api_token(scene: Scene, caller: str) -> Call:
    """A token of A made for this call by A's manager."""
    async with scene.client() as gateway:
        made = await gateway.post(
            f"/api/v1/accounts/{scene.account_a}/api-tokens",
            json={"name": f"Revoked by {caller}", "scope": "read"},
            headers=bearer(scene.people["manager_a"].token),
        )
        assert made.status_code == 201, made.text
    return Call(scene.values() | {"token_id": made.json()["token_id"]})


async def organiser_by_email(scene: Scene, caller: str) -> Call:
    return Call(json={"email": (await scene.sign_up(f"{caller}-promoted")).email})


async def switch_to_a(scene: Scene, caller: str) -> dict[str, str]:
    return {"account_id": scene.account_a, "next": "/account"}


async def institution_form(scene: Scene, caller: str) -> dict[str, str]:
    """Mes informations as sent for the institution the caller looks at (their own)."""
    return {"name": f"Lycée {caller}", "city": "Lyon", "contact_name": "Camille Martin"}


async def settings_form(scene: Scene, caller: str) -> dict[str, str]:
    return {"name": "Camille Martin", "language": "fr"}


async def password_change_stand_in(scene: Scene, caller: str) -> Call:
    """A new person's session changes their own password (the callers' passwords are changed in round 2)."""
    fields = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    if caller == "anonymous":
        return Call(anonymous=True, form=fields)
    return Call(token=(await scene.sign_up(f"{caller}-new-password")).token, form=fields)


async def api_token_form(scene: Scene, caller: str) -> dict[str, str]:
    return {"token_name": f"Export {caller}", "scope": "read", "expires_in_days": ""}


async def page_closure(scene: Scene, caller: str) -> Call:
    """A manager closes an account of their own made for this call (A, B and the organiser's stay open); A's
    member tries A with their own password."""
    if caller in ("anonymous", "member_a"):
        return Call(form=await own_password(scene, caller))
    stand_in = await scene.sign_up(f"{caller}-closing")
    return Call(form={"password": PASSWORD}, token=stand_in.token)


asked_by_host2 = pending_request(lambda s: s.host2)  # a join request the caller answers from the dashboard


async def organiser_form(scene: Scene, caller: str) -> dict[str, str]:
    return {"email": (await scene.sign_up(f"{caller}-promoted-page")).email}


async def static_file(scene: Scene, caller: str) -> Call:
    return Call({"file_path": "portal.css"})


# --- the billing back-office: price items, purchase orders and invoices made for one call -------------------------


async def as_organiser(scene: Scene, method: str, path: str, json: Any = None) -> Any:
    """The set-up's own call to the back-office's API, as the caller `organiser`."""
    async with scene.client() as gateway:
        answer = await gateway.request(method, path, json=json, headers=bearer(scene.people["organiser"].token))
        assert answer.status_code in (200, 201), answer.text
        return answer.json()


def price_item_body(caller: str) -> dict[str, Any]:
    """An item nobody is offered (inactive), so that the price list the other tests see stays as it is."""
    return {
        "code": f"matrix-{caller.replace('_', '-')}-{uuid.uuid4().hex[:8]}",
        "label_fr": "Jeton de test",
        "label_en": "Test token",
        "tokens": 1,
        "bonus_tokens": 0,
        "net_cents": 6000,
        "vat_rate_bp": 2000,
        "validity": "24_months",
        "purchase_order_allowed": True,
        "active": False,
        "position": 99,
    }


def price_item_form(body: dict[str, Any]) -> dict[str, str]:
    """The back-office's form for an item, as typed (euros and percent)."""
    return {
        "code": body["code"],
        "label_fr": body["label_fr"],
        "label_en": body["label_en"],
        "tokens": str(body["tokens"]),
        "bonus_tokens": str(body["bonus_tokens"]),
        "net": "60,00",
        "vat_rate": "20",
        "validity": body["validity"],
        "purchase_order_allowed": "on",
        "position": str(body["position"]),
    }


async def new_price_item(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), json=price_item_body(caller))


async def page_new_price_item(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), form=price_item_form(price_item_body(caller)))


async def changed_price_item(scene: Scene, caller: str) -> Call:
    item = await as_organiser(scene, "POST", "/api/v1/back-office/price-list", price_item_body(caller))
    return Call(scene.values() | {"item_id": item["id"]}, json=price_item_body(caller) | {"code": item["code"]})


async def page_changed_price_item(scene: Scene, caller: str) -> Call:
    item = await as_organiser(scene, "POST", "/api/v1/back-office/price-list", price_item_body(caller))
    return Call(scene.values() | {"item_id": item["id"]}, form=price_item_form(price_item_body(caller)))


async def purchase_order(scene: Scene, signed: bool = False) -> dict[str, Any]:
    """A purchase order of one token, placed by the set-up's manager `host` (with the signed PDF when `signed`)."""
    host = scene.host
    async with scene.client() as gateway:
        items = (await gateway.get("/api/v1/price-list")).json()["items"]
        [unit] = [item["id"] for item in items if item["code"] == "unit"]
        body = {
            "lines": [{"item_id": unit, "quantity": 1}],
            "buyer_order_number": f"BC-{uuid.uuid4().hex[:8]}",
            "service_code": "MATRIX",
        }
        placed = await gateway.post(
            f"/api/v1/accounts/{host.account_id}/purchase-orders", json=body, headers=bearer(host.token)
        )
        assert placed.status_code == 201, placed.text
        order: dict[str, Any] = placed.json()
        if signed:
            attached = await gateway.put(
                f"/api/v1/accounts/{host.account_id}/orders/{order['id']}/signed-order",
                content=b"%PDF-1.4\n%%EOF\n",
                headers=bearer(host.token) | {"Content-Type": "application/pdf"},
            )
            assert attached.status_code == 204, attached.text
    return order


async def pending_order(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"order_id": (await purchase_order(scene))["id"]})


async def order_to_refuse(scene: Scene, caller: str) -> Call:
    order = await purchase_order(scene)
    return Call(scene.values() | {"order_id": order["id"]}, json={"reason": f"Refused by {caller}"})


async def page_order_to_refuse(scene: Scene, caller: str) -> Call:
    order = await purchase_order(scene)
    return Call(scene.values() | {"order_id": order["id"]}, form={"reason": f"Refused by {caller}"})


async def signed_order(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"order_id": (await purchase_order(scene, signed=True))["id"]})


async def invoice(scene: Scene) -> str:
    """An invoice payable by transfer: a purchase order validated by the organiser; its id."""
    order = await purchase_order(scene)
    validated = await as_organiser(scene, "POST", f"/api/v1/back-office/orders/{order['id']}/validation")
    return str(validated["invoice"]["id"])


async def an_invoice(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"document_id": await invoice(scene)})


async def invoice_paid(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"document_id": await invoice(scene)}, json={})


async def page_invoice_paid(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"document_id": await invoice(scene)}, form={"received_on": ""})


async def invoice_to_credit(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"document_id": await invoice(scene)}, json={"reason": f"Credited by {caller}"})


async def page_invoice_to_credit(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"document_id": await invoice(scene)}, form={"reason": f"Credited by {caller}"})


# --- A's tokens, orders and invoices: orders placed by A's manager for one call, and one paid order shared -------

SIGNED_PDF = b"%PDF-1.4\n%%EOF\n"
_paid_orders: dict[int, Any] = {}  # per scene: A's order paid by card (its invoice issued), made once


async def as_manager_a(scene: Scene, method: str, path: str, **options: Any) -> Any:
    async with scene.client() as gateway:
        answer = await gateway.request(method, path, headers=bearer(scene.people["manager_a"].token), **options)
        assert answer.status_code in (200, 201, 202, 204), answer.text
        return answer.json() if answer.content else None


async def unit_item(scene: Scene) -> str:
    async with scene.client() as gateway:
        items = (await gateway.get("/api/v1/price-list")).json()["items"]
    [unit] = [item["id"] for item in items if item["code"] == "unit"]
    return str(unit)


async def card_lines(scene: Scene, caller: str) -> dict[str, Any]:
    return {"lines": [{"item_id": await unit_item(scene), "quantity": 1}]}


async def purchase_order_body(scene: Scene, caller: str) -> dict[str, Any]:
    return await card_lines(scene, caller) | {"buyer_order_number": f"BC-{caller}", "service_code": "MATRIX"}


async def card_order_of_a(scene: Scene) -> dict[str, Any]:
    """A card order of A awaiting its payment: tokens enough for every enrolment the entries make (each would be
    rejected for want of a token otherwise, and then no longer cancellable)."""
    path = f"/api/v1/accounts/{scene.account_a}/orders"
    lines = {"lines": [{"item_id": await unit_item(scene), "quantity": 30}]}
    order: dict[str, Any] = await as_manager_a(scene, "POST", path, json=lines)
    return order


async def paid_order_of_a(scene: Scene) -> dict[str, Any]:
    """A's order paid through the sandbox provider's page (made once per scene)."""
    if id(scene) not in _paid_orders:
        _paid_orders[id(scene)] = asyncio.ensure_future(_pay(scene, await card_order_of_a(scene)))
    order: dict[str, Any] = await asyncio.shield(_paid_orders[id(scene)])
    return order


async def _pay(scene: Scene, order: dict[str, Any]) -> dict[str, Any]:
    checkout = "/payments/sandbox/" + order["checkout_url"].rsplit("/", 1)[1]
    async with scene.client() as browser:
        page = await browser.get(checkout)
        token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
        paid = await browser.post(checkout, data={"_csrf_token": token, "action": "pay"})
        assert paid.status_code == 303, paid.text
    for _ in range(150):
        shown = await as_manager_a(scene, "GET", f"/api/v1/accounts/{scene.account_a}/orders/{order['id']}")
        if shown["status"] == "paid" and shown["invoice"]:
            return dict(shown)
        await asyncio.sleep(0.2)
    raise AssertionError(f"A's order was not paid: {shown}")


async def a_paid_order(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"order_id": (await paid_order_of_a(scene))["id"]}, cookies=looking_at_a(scene))


def looking_at_a(scene: Scene) -> dict[str, str]:
    """The portal shows A to whoever belongs to it (A's member joins other institutions in other calls); to
    anyone else, their own institution (gateway.web.current_account ignores an institution not theirs)."""
    return {"vp_account": scene.account_a}


async def a_invoice(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"document_id": (await paid_order_of_a(scene))["invoice"]["id"]})


async def a_invoice_file(scene: Scene, caller: str) -> Call:
    return Call({"file_name": (await paid_order_of_a(scene))["invoice"]["id"] + ".pdf"}, cookies=looking_at_a(scene))


async def a_card_order(scene: Scene, caller: str) -> Call:
    """A card order of A's, awaiting its payment, that the call abandons."""
    return Call(scene.values() | {"order_id": (await card_order_of_a(scene))["id"]}, cookies=looking_at_a(scene))


async def a_purchase_order_pdf(scene: Scene, caller: str) -> Call:
    """A purchase order of A's, the signed PDF the call attaches."""
    path = f"/api/v1/accounts/{scene.account_a}/purchase-orders"
    order = await as_manager_a(scene, "POST", path, json=await purchase_order_body(scene, caller))
    return Call(scene.values() | {"order_id": order["id"]}, content=SIGNED_PDF, content_type="application/pdf")


async def a_checkout(scene: Scene, caller: str) -> Call:
    return Call({"checkout_id": (await card_order_of_a(scene))["checkout_url"].rsplit("/", 1)[1]})


async def a_checkout_declined(scene: Scene, caller: str) -> Call:
    return Call((await a_checkout(scene, caller)).values, form={"action": "decline"})


async def cart_form(scene: Scene, caller: str) -> dict[str, str]:
    return {f"quantity-{await unit_item(scene)}": "1", "action": "pay"}


async def purchase_order_form(scene: Scene, caller: str) -> dict[str, str]:
    """Sent for the institution the caller looks at (their own: schools, public buyers)."""
    body = await purchase_order_body(scene, caller)
    return {
        "item_id": body["lines"][0]["item_id"],
        "quantity": "1",
        "buyer_order_number": body["buyer_order_number"],
        "service_code": "MATRIX",
    }


async def signed_webhook(scene: Scene, caller: str) -> Call:
    """An event of a kind billing acknowledges without acting, signed with the provider's secret as Stripe signs."""
    import hashlib
    import hmac
    import json
    import time

    event = {
        "id": f"evt_matrix_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "customer.created",
        "created": int(time.time()),
        "data": {"object": {"id": "cus_matrix", "object": "customer"}},
    }
    content = json.dumps(event).encode()
    at = int(time.time())
    digest = hmac.new(scene.system.webhook_secret.encode(), f"{at}.".encode() + content, hashlib.sha256).hexdigest()
    return Call(content=content, content_type="application/json", headers={"Stripe-Signature": f"t={at},v1={digest}"})


# --- notifications: unsubscribe links, bounce reports, bouncing addresses (gateway.notifications) -----------------


async def an_unsubscribe_link(scene: Scene, caller: str) -> Call:
    """A reminder's link, signed with the notifier's key, for an institution of its own (it only stops reminders)."""
    from notifier.preferences import UnsubscribeLinks

    return Call({"token": UnsubscribeLinks(scene.system.unsubscribe_key, scene.url).token(uuid.uuid4())})


async def a_bounce_report(scene: Scene, caller: str) -> Call:
    """A provider's hard-bounce report for an address nobody uses, with the bearer token the gateway expects."""
    return Call(
        json={"recipient": unique_email("bounced"), "type": "hard", "reason": "550 5.1.1 no such user"},
        headers={"Authorization": f"Bearer {scene.system.bounce_webhook_token}"},
    )


async def reminders_form(scene: Scene, caller: str) -> dict[str, str]:
    return {"reminders": "on"}


async def a_bouncing_address_of_a(scene: Scene, caller: str) -> Call:
    """An address of A (a member invited by A's manager, the invitation mailed) reported bouncing."""
    email = unique_email("bouncing")
    await scene.invite(scene.people["manager_a"], email)
    await wait_for_mail(scene.mail_api, email, subject_contains="vous invite")
    headers = {"X-Internal-Token": scene.system.internal_token}
    async with httpx.AsyncClient(base_url=scene.system.url("notifier"), headers=headers, timeout=30) as notifier:
        marked = await notifier.post("/internal/bounces", json={"recipient": email, "reason": "550 5.1.1"})
        assert marked.status_code == 200, marked.text
    return Call(form={"address": email})


# --- the public planning: one session published for the scene through the catalogue's internal API ---------------

_published_sessions: dict[int, Any] = {}  # per scene: the id of a published session of a theme of its own


async def published_session(scene: Scene) -> str:
    if id(scene) not in _published_sessions:
        _published_sessions[id(scene)] = asyncio.ensure_future(_publish_a_session(scene))
    session_id: str = await asyncio.shield(_published_sessions[id(scene)])
    return session_id


async def _publish_a_session(scene: Scene) -> str:
    headers = {"X-Internal-Token": scene.system.internal_token}
    async with httpx.AsyncClient(base_url=scene.system.url("catalogue"), headers=headers, timeout=60) as catalogue:
        theme = await catalogue.post("/internal/back-office/themes", json={"title": f"Matrice {uuid.uuid4().hex[:8]}"})
        assert theme.status_code == 201, theme.text
        body = {
            "theme_id": theme.json()["id"],
            "title": "Session de la matrice",
            "local_start": f"{datetime.now(UTC).year + 1}-02-10T14:00",
        }
        made = await catalogue.post("/internal/back-office/sessions", json=body)
        assert made.status_code == 201, made.text
        published = await catalogue.post(f"/internal/back-office/sessions/{made.json()['id']}/publish")
        assert published.status_code == 200, published.text
    return str(made.json()["id"])


async def a_published_session(scene: Scene, caller: str) -> Call:
    return Call({"session_id": await published_session(scene)})


# --- enrolments (gateway.enrolment, gateway.enrolment_pages): A's enrolments in the scene's published session ------

_known_sessions: dict[int, Any] = {}  # per scene: the published session, once enrollment's copy of it has arrived


async def enrollable_session(scene: Scene) -> str:
    if id(scene) not in _known_sessions:
        _known_sessions[id(scene)] = asyncio.ensure_future(_known_to_enrollment(scene))
    session_id: str = await asyncio.shield(_known_sessions[id(scene)])
    return session_id


async def _known_to_enrollment(scene: Scene) -> str:
    return await known_to_enrollment(scene, await published_session(scene))


async def known_to_enrollment(scene: Scene, session_id: str) -> str:
    """`session_id` once enrollment's copy of the session has arrived (from catalogue's events)."""
    headers = {"X-Internal-Token": scene.system.internal_token}
    async with httpx.AsyncClient(base_url=scene.system.url("enrollment"), headers=headers, timeout=30) as enrollment:
        for _ in range(300):
            if (await enrollment.get(f"/internal/sessions/{session_id}/enrolments")).status_code == 200:
                return session_id
            await asyncio.sleep(0.1)
    raise AssertionError(f"enrollment never learnt of session {session_id}")


async def an_enrolment_request(scene: Scene, caller: str) -> Call:
    """Enrol in the scene's session: only A's manager gets through (once: A then is enrolled)."""
    body = {"session_id": await enrollable_session(scene), "expected_participants": 2}
    return Call(scene.values(), json=body)


_form_sessions: dict[int, Any] = {}  # per scene: the session the page's form enrols in (not the API's: A is in it)


async def an_enrolment_form(scene: Scene, caller: str) -> Call:
    """The session page's form: each caller enrols the institution they look at (member_a may not)."""
    if id(scene) not in _form_sessions:
        _form_sessions[id(scene)] = asyncio.ensure_future(fresh_session(scene))
    values = {"session_id": await asyncio.shield(_form_sessions[id(scene)])}
    return Call(values, form={"expected_participants": "2", "action": "enrol"})


async def enrolment_of_a(scene: Scene) -> str:
    """A fresh pending enrolment of A (A holds tokens from its paid order: it turns confirmed), in a session of its
    own so that it never meets the scene's."""
    await paid_order_of_a(scene)
    session_id = await fresh_session(scene)
    path = f"/api/v1/accounts/{scene.account_a}/enrolments"
    asked = await as_manager_a(scene, "POST", path, json={"session_id": session_id, "expected_participants": 3})
    return str(asked["id"])


async def fresh_session(scene: Scene) -> str:
    """A session of its own, published and known to enrollment."""
    headers = {"X-Internal-Token": scene.system.internal_token}
    async with httpx.AsyncClient(base_url=scene.system.url("catalogue"), headers=headers, timeout=60) as catalogue:
        theme = await catalogue.post("/internal/back-office/themes", json={"title": f"Matrice {uuid.uuid4().hex[:8]}"})
        body = {"theme_id": theme.json()["id"], "title": "Inscription", "local_start": catalogue_start()}
        made = await catalogue.post("/internal/back-office/sessions", json=body)
        assert made.status_code == 201, made.text
        published = await catalogue.post(f"/internal/back-office/sessions/{made.json()['id']}/publish")
        assert published.status_code == 200, published.text
    return await known_to_enrollment(scene, str(made.json()["id"]))


async def an_enrolment_of_a(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"enrollment_id": await enrolment_of_a(scene)})


async def a_waiting_list_request(scene: Scene, caller: str) -> Call:
    """The scene's session has places: A's manager gets past the gateway and is told `places_available` (409)."""
    values = scene.values() | {"session_id": await enrollable_session(scene)}
    return Call(values, json={"expected_participants": 2})


async def a_waiting_list_entry(scene: Scene, caller: str) -> Call:
    """No entry of A's by that id: A's manager gets past the gateway and enrollment finds none (404)."""
    return Call(scene.values() | {"entry_id": str(uuid.uuid4()), "session_id": await enrollable_session(scene)})


# --- taking part (gateway.participation, gateway.participation_pages): confirmed enrolments of A, one per use ------

_confirmed: dict[tuple[int, str], Any] = {}  # per scene and use: a confirmed enrolment of A


async def confirmed_enrolment_of_a(scene: Scene, use: str) -> str:
    """A confirmed enrolment of A (so it has a participation link), one per `use`: reading, the link's re-issue and
    revocation, its sharing never meet."""
    key = (id(scene), use)
    if key not in _confirmed:
        _confirmed[key] = asyncio.ensure_future(_confirmed_enrolment(scene))
    enrollment_id: str = await asyncio.shield(_confirmed[key])
    return enrollment_id


async def _confirmed_enrolment(scene: Scene) -> str:
    enrollment_id = await enrolment_of_a(scene)
    for _ in range(300):
        path = f"/api/v1/accounts/{scene.account_a}/enrolments/{enrollment_id}"
        if (await as_manager_a(scene, "GET", path))["status"] == "confirmed":
            return enrollment_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"A's enrolment {enrollment_id} never confirmed")


def a_confirmed_enrolment(use: str, **more: Any) -> Build:
    """A's confirmed enrolment for `use`, with a JSON body (`json`) or a form (`form`) if given; its pages show A to
    A's people (looking_at_a)."""

    async def call(scene: Scene, caller: str) -> Call:
        values = scene.values() | {"enrollment_id": await confirmed_enrolment_of_a(scene, use)}
        return Call(values, cookies=looking_at_a(scene), **more)

    return call


async def a_participation_link(scene: Scene, caller: str) -> Call:
    """The link of A's confirmed enrolment: its page is the same for anyone who has it (no login)."""
    enrollment_id = await confirmed_enrolment_of_a(scene, "read")
    headers = {"X-Internal-Token": scene.system.internal_token}
    async with httpx.AsyncClient(base_url=scene.system.url("enrollment"), headers=headers, timeout=30) as enrollment:
        path = f"/internal/enrolments/{enrollment_id}/link"
        link = await enrollment.get(path, params={"account_id": scene.account_a})
    assert link.status_code == 200, link.text
    return Call({"token": link.json()["token"]})


def a_token_opening_nothing(**more: Any) -> Build:
    """A well-formed token no link or certificate has: everyone gets the same 404, whatever the form says."""

    async def call(scene: Scene, caller: str) -> Call:
        return Call({"token": secrets.token_urlsafe(32)}, **more)

    return call


async def a_room_end_unsigned(scene: Scene, caller: str) -> Call:
    """BigBlueButton's end callback without the signature catalogue puts in the URL: nobody else can end a room."""
    return Call({"session_id": str(uuid.uuid4())})


async def a_jitsi_event(scene: Scene, caller: str) -> Call:
    """An event of Jitsi's webhook the gateway has no use for, with its bearer token: acknowledged."""
    return Call(
        json={"eventType": "ROOM_CREATED", "sessionId": str(uuid.uuid4()), "fqn": "visiopass/room", "data": {}},
        headers={"Authorization": f"Bearer {scene.system.jitsi_webhook_token}"},
    )


async def a_scheduled_share(scene: Scene, caller: str) -> Call:
    """A sending of A's link scheduled for tomorrow, fresh for each caller (only A's manager cancels it)."""
    enrollment_id = await confirmed_enrolment_of_a(scene, "share")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {"recipients": [{"channel": "email", "address": unique_email("share")}], "send_at": tomorrow}
    path = f"/api/v1/accounts/{scene.account_a}/enrolments/{enrollment_id}/link/shares"
    [share] = (await as_manager_a(scene, "POST", path, json=body))["items"]
    return Call(scene.values() | {"enrollment_id": enrollment_id, "share_id": share["id"]})


async def no_certificate_of_a(scene: Scene, caller: str) -> Call:
    """No certificate of A's by that id (its session has not ended): A's people get past the gateway and find none."""
    values = {"enrollment_id": await confirmed_enrolment_of_a(scene, "read"), "certificate_id": str(uuid.uuid4())}
    return Call(scene.values() | values)


async def a_session_known_to_enrollment(scene: Scene, caller: str) -> Call:
    return Call({"session_id": await enrollable_session(scene)})


SHARE_BODY = {"recipients": [{"channel": "email", "address": "matrice@example.org", "name": "Léa Petit"}]}


# --- the catalogue back-office: themes, sessions, series and permanent rooms made for one call -------------------


def catalogue_start() -> str:
    """A start well ahead, whatever today is (a wall clock in Paris)."""
    return f"{datetime.now(UTC).year + 1}-05-12T10:00"


def catalogue_theme_body(caller: str) -> dict[str, Any]:
    return {"title": f"Matrice {caller} {uuid.uuid4().hex[:8]}", "tags": ["matrice"]}


async def catalogue_theme(scene: Scene) -> str:
    return str((await as_organiser(scene, "POST", "/api/v1/back-office/themes", catalogue_theme_body("setup")))["id"])


def catalogue_session_body(theme_id: str) -> dict[str, Any]:
    return {"theme_id": theme_id, "title": "Séance de la matrice", "local_start": catalogue_start()}


def catalogue_session_form(theme_id: str) -> dict[str, str]:
    """The back-office's session form, as typed."""
    day, clock = catalogue_start().split("T")
    return {
        "theme_id": theme_id,
        "title": "Séance de la matrice",
        "local_date": day,
        "local_time": clock,
        "timezone": "Europe/Paris",
        "duration": "60",
        "capacity_mode": "unlimited",
        "price_tokens": "1",
        "access": "open",
    }


async def draft_session(scene: Scene) -> str:
    body = catalogue_session_body(await catalogue_theme(scene))
    return str((await as_organiser(scene, "POST", "/api/v1/back-office/sessions", body))["id"])


def catalogue_series_body(theme_id: str) -> dict[str, Any]:
    return {
        "theme_id": theme_id,
        "recurrence": {"frequency": "weekly", "weekdays": ["TU"], "count": 2},
        "local_start": catalogue_start(),
        "template": {"title": "Série de la matrice"},
    }


def catalogue_series_form(theme_id: str) -> dict[str, str]:
    return catalogue_session_form(theme_id) | {"frequency": "weekly", "weekday_TU": "on", "end": "count", "count": "2"}


async def catalogue_series(scene: Scene) -> dict[str, Any]:
    body = catalogue_series_body(await catalogue_theme(scene))
    series: dict[str, Any] = await as_organiser(scene, "POST", "/api/v1/back-office/series", body)
    return series


async def permanent_room(scene: Scene) -> dict[str, Any]:
    room: dict[str, Any] = await as_organiser(
        scene, "POST", "/api/v1/back-office/rooms", {"name": "Salle de la matrice"}
    )
    return room


async def a_catalogue_theme(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"theme_id": await catalogue_theme(scene)})


async def new_catalogue_theme(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), json=catalogue_theme_body(caller))


async def page_new_catalogue_theme(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), form={"title": catalogue_theme_body(caller)["title"], "tags": "matrice"})


async def changed_catalogue_theme(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"theme_id": await catalogue_theme(scene)}, json=catalogue_theme_body(caller))


async def page_changed_catalogue_theme(scene: Scene, caller: str) -> Call:
    values = scene.values() | {"theme_id": await catalogue_theme(scene)}
    return Call(values, form={"title": catalogue_theme_body(caller)["title"]})


async def a_draft_session(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"session_id": await draft_session(scene)})


async def new_catalogue_session(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), json=catalogue_session_body(await catalogue_theme(scene)))


async def page_new_catalogue_session(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), form=catalogue_session_form(await catalogue_theme(scene)))


async def changed_catalogue_session(scene: Scene, caller: str) -> Call:
    theme_id = await catalogue_theme(scene)
    made = await as_organiser(scene, "POST", "/api/v1/back-office/sessions", catalogue_session_body(theme_id))
    return Call(scene.values() | {"session_id": made["id"]}, json=catalogue_session_body(theme_id) | {"title": caller})


async def page_changed_catalogue_session(scene: Scene, caller: str) -> Call:
    theme_id = await catalogue_theme(scene)
    made = await as_organiser(scene, "POST", "/api/v1/back-office/sessions", catalogue_session_body(theme_id))
    return Call(scene.values() | {"session_id": made["id"]}, form=catalogue_session_form(theme_id))


async def session_to_move(scene: Scene, caller: str) -> Call:
    later = catalogue_start().replace("T10:00", "T15:00")
    return Call(scene.values() | {"session_id": await draft_session(scene)}, json={"local_start": later})


async def page_session_to_move(scene: Scene, caller: str) -> Call:
    day = catalogue_start().split("T")[0]
    form = {"local_date": day, "local_time": "15:00", "timezone": "Europe/Paris", "duration": "60", "confirm": "on"}
    return Call(scene.values() | {"session_id": await draft_session(scene)}, form=form)


async def session_to_cancel(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"session_id": await draft_session(scene)}, json={"reason": f"Cancelled by {caller}"})


async def page_session_to_cancel(scene: Scene, caller: str) -> Call:
    form = {"reason": f"Cancelled by {caller}", "confirm": "on"}
    return Call(scene.values() | {"session_id": await draft_session(scene)}, form=form)


async def a_catalogue_series(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"series_id": (await catalogue_series(scene))["id"]})


async def new_catalogue_series(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), json=catalogue_series_body(await catalogue_theme(scene)))


async def page_new_catalogue_series(scene: Scene, caller: str) -> Call:
    return Call(scene.values(), form=catalogue_series_form(await catalogue_theme(scene)))


async def changed_catalogue_series(scene: Scene, caller: str) -> Call:
    series = await catalogue_series(scene)
    return Call(scene.values() | {"series_id": series["id"]}, json=catalogue_series_body(series["theme_id"]))


async def page_changed_catalogue_series(scene: Scene, caller: str) -> Call:
    series = await catalogue_series(scene)
    return Call(scene.values() | {"series_id": series["id"]}, form=catalogue_series_form(series["theme_id"]))


async def series_to_cancel(scene: Scene, caller: str) -> Call:
    series = await catalogue_series(scene)
    return Call(scene.values() | {"series_id": series["id"]}, json={"reason": f"Cancelled by {caller}"})


async def page_series_to_cancel(scene: Scene, caller: str) -> Call:
    series = await catalogue_series(scene)
    return Call(scene.values() | {"series_id": series["id"]}, form={"reason": f"By {caller}", "confirm": "on"})


async def a_permanent_room(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"room_id": (await permanent_room(scene))["id"]})


async def a_room_link(scene: Scene, caller: str) -> Call:
    return Call({"link_token": (await permanent_room(scene))["link_token"]})


async def room_form(scene: Scene, caller: str) -> dict[str, str]:
    return {"name": f"Salle de {caller}", "provider": ""}


async def a_room_to_join(scene: Scene, caller: str) -> Call:
    return Call({"link_token": (await permanent_room(scene))["link_token"]}, form={"name": "Léa Petit"})


def starting_soon() -> str:
    """A start within the hour (in 30 minutes, a wall clock in Paris): the session's room is open already."""
    return (datetime.now(UTC) + timedelta(minutes=30)).astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M")


async def session_starting_soon(scene: Scene) -> str:
    """A published session whose room is open, for the animator's way in."""
    body = catalogue_session_body(await catalogue_theme(scene)) | {"local_start": starting_soon()}
    made = await as_organiser(scene, "POST", "/api/v1/back-office/sessions", body)
    await as_organiser(scene, "POST", f"/api/v1/back-office/sessions/{made['id']}/publish")
    return str(made["id"])


async def session_to_join(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"session_id": await session_starting_soon(scene)}, json={"name": "Claire Martin"})


async def page_session_to_join(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"session_id": await session_starting_soon(scene)}, form={"name": "Claire Martin"})


async def room_to_host(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"room_id": (await permanent_room(scene))["id"]}, json={"name": "Support"})


async def page_room_to_host(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"room_id": (await permanent_room(scene))["id"]}, form={"name": "Support"})


# --- A's outgoing webhooks (gateway.webhooks, gateway.webhook_pages): endpoints registered by A's manager -----------

WEBHOOK_URL = "https://hooks.example.com/matrix"  # never reached: its deliveries stay pending
_webhooks_of_a: dict[int, Any] = {}  # per scene: one endpoint of A's that every call but a deletion acts on


async def new_webhook_of_a(scene: Scene) -> str:
    path = f"/api/v1/accounts/{scene.account_a}/webhooks"
    made = await as_manager_a(scene, "POST", path, json={"url": WEBHOOK_URL, "events": ["invoice.issued"]})
    return str(made["id"])


async def webhook_of_a(scene: Scene) -> str:
    if id(scene) not in _webhooks_of_a:
        _webhooks_of_a[id(scene)] = asyncio.ensure_future(new_webhook_of_a(scene))
    webhook_id: str = await asyncio.shield(_webhooks_of_a[id(scene)])
    return webhook_id


async def a_webhook(scene: Scene, caller: str) -> Call:
    return Call(scene.values() | {"webhook_id": await webhook_of_a(scene)})


async def a_webhook_to_delete(scene: Scene, caller: str) -> Call:
    """A's manager deletes an endpoint made for this call; the others try the shared one (refused, it stays): an
    account has 10 endpoints at most."""
    webhook_id = await new_webhook_of_a(scene) if caller == "manager_a" else await webhook_of_a(scene)
    return Call(scene.values() | {"webhook_id": webhook_id})


def with_webhook(json: Any = None, form: dict[str, str] | None = None) -> Build:
    async def call(scene: Scene, caller: str) -> Call:
        return Call(scene.values() | {"webhook_id": await webhook_of_a(scene)}, json=json, form=form)

    return call


WEBHOOK_FORM = {"url": WEBHOOK_URL, "events": "invoice.issued", "description": "Matrice"}


async def webhook_form(scene: Scene, caller: str) -> dict[str, str]:
    return dict(WEBHOOK_FORM)


ENTRIES: list[Entry] = [
    # public API: the same answer for everyone, signed in or not
    everyone("POST", "/api/v1/accounts", 201, body(sign_up_body)),
    everyone("POST", "/api/v1/accounts/verification", 200, body(verification)),
    everyone("POST", "/api/v1/accounts/verification/resend", 202, body(a_new_email)),
    everyone("POST", "/api/v1/password-resets", 202, body(a_new_email)),
    everyone("POST", "/api/v1/password-resets/confirmation", 200, body(reset)),
    everyone("POST", "/api/v1/sessions", 201, body(host_credentials)),
    everyone("POST", "/api/v1/email-changes/confirmation", 200, body(email_confirmation)),
    everyone("POST", "/api/v1/email-changes/reversal", 200, body(email_reversal)),
    everyone("POST", "/api/v1/invitations/acceptance", 200, body(invitation)),
    everyone("POST", "/api/v1/join-requests/acceptance", 200, body(join)),
    everyone("GET", "/api/v1/member-import-template", 200),
    # oneself
    api("GET", "/api/v1/me", SELF()),
    api("PATCH", "/api/v1/me", SELF(), fixed(language="fr")),
    api("POST", "/api/v1/me/password", SELF(), body(password_change), after=2),
    api("POST", "/api/v1/me/email-change", SELF(202), body(email_change)),
    api("GET", "/api/v1/me/invitations", SELF()),
    api("POST", "/api/v1/me/invitations/{account_id:uuid}/acceptance", SELF(), pending_request(lambda s: s.host)),
    api("DELETE", "/api/v1/me/invitations/{account_id:uuid}", SELF(204), pending_request(lambda s: s.host2)),
    api("DELETE", "/api/v1/sessions/current", SELF(204), another_session),
    api("POST", "/api/v1/sessions/logout-everywhere", SELF(204), after=3),
    # institution A
    api("GET", "/api/v1/accounts/{account_id:uuid}/profile", READ),
    api("PATCH", "/api/v1/accounts/{account_id:uuid}/profile", EDIT, fixed(city="Lyon")),
    api("GET", "/api/v1/accounts/{account_id:uuid}/export", EDIT),
    api("POST", "/api/v1/accounts/{account_id:uuid}/closure", EDIT, closure, after=1),
    api("GET", "/api/v1/accounts/{account_id:uuid}/dashboard", READ),
    # A's people
    api("GET", "/api/v1/accounts/{account_id:uuid}/members", LIST),
    api("POST", "/api/v1/accounts/{account_id:uuid}/members", MANAGE, body(new_members)),
    api("POST", "/api/v1/accounts/{account_id:uuid}/members/import", MANAGE, csv_import),
    api("PATCH", "/api/v1/accounts/{account_id:uuid}/members/{member_id:uuid}", MANAGE, role_of_invited),
    api("DELETE", "/api/v1/accounts/{account_id:uuid}/members/{member_id:uuid}", ok(MANAGE, 204), removable_member),
    api(
        "POST", "/api/v1/accounts/{account_id:uuid}/members/{member_id:uuid}/invitation", ok(MANAGE, 202), invited_of_a
    ),
    api("POST", "/api/v1/accounts/{account_id:uuid}/members/{member_id:uuid}/password-reset", ok(MANAGE, 202)),
    # the back-office
    api("PUT", "/api/v1/organisers/{user_id:uuid}", ok(ORGANISERS, 204), new_user),
    api("DELETE", "/api/v1/organisers/{user_id:uuid}", ok(ORGANISERS, 204), new_organiser),
    api("GET", "/api/v1/back-office/deliveries", ORGANISERS),
    api("GET", "/api/v1/organisers", ORGANISERS),
    api("POST", "/api/v1/organisers", ok(ORGANISERS, 204), organiser_by_email),
    # the billing back-office (gateway.back_office_billing_api)
    api("GET", "/api/v1/back-office/price-list", ORGANISERS),
    api("POST", "/api/v1/back-office/price-list", ok(ORGANISERS, 201), new_price_item),
    api("PUT", "/api/v1/back-office/price-list/{item_id:uuid}", ORGANISERS, changed_price_item),
    api("GET", "/api/v1/back-office/orders", ORGANISERS),
    api("POST", "/api/v1/back-office/orders/{order_id:uuid}/validation", ORGANISERS, pending_order),
    api("POST", "/api/v1/back-office/orders/{order_id:uuid}/refusal", ORGANISERS, order_to_refuse),
    api("GET", "/api/v1/back-office/orders/{order_id:uuid}/signed-order", ORGANISERS, signed_order),
    api("GET", "/api/v1/back-office/documents", ORGANISERS),
    api("GET", "/api/v1/back-office/documents/{document_id:uuid}/pdf", ORGANISERS, an_invoice),
    api("POST", "/api/v1/back-office/documents/{document_id:uuid}/payment", ORGANISERS, invoice_paid),
    api("POST", "/api/v1/back-office/documents/{document_id:uuid}/credit-note", ok(ORGANISERS, 201), invoice_to_credit),
    api("GET", "/api/v1/back-office/documents.csv", ORGANISERS),
    api("GET", "/api/v1/back-office/payments", ORGANISERS),
    api("GET", "/api/v1/back-office/revenue", ORGANISERS),
    # the catalogue back-office (gateway.back_office_catalogue_api)
    api("GET", "/api/v1/back-office/themes", ORGANISERS),
    api("POST", "/api/v1/back-office/themes", ok(ORGANISERS, 201), new_catalogue_theme),
    api("PUT", "/api/v1/back-office/themes/{theme_id:uuid}", ORGANISERS, changed_catalogue_theme),
    api("POST", "/api/v1/back-office/themes/{theme_id:uuid}/archive", ORGANISERS, a_catalogue_theme),
    api("POST", "/api/v1/back-office/themes/{theme_id:uuid}/restore", ORGANISERS, a_catalogue_theme),
    api("GET", "/api/v1/back-office/sessions", ORGANISERS),
    api("POST", "/api/v1/back-office/sessions", ok(ORGANISERS, 201), new_catalogue_session),
    api("GET", "/api/v1/back-office/sessions/{session_id:uuid}", ORGANISERS, a_draft_session),
    api("PUT", "/api/v1/back-office/sessions/{session_id:uuid}", ORGANISERS, changed_catalogue_session),
    api("POST", "/api/v1/back-office/sessions/{session_id:uuid}/publish", ORGANISERS, a_draft_session),
    api("POST", "/api/v1/back-office/sessions/{session_id:uuid}/reschedule", ORGANISERS, session_to_move),
    api("POST", "/api/v1/back-office/sessions/{session_id:uuid}/cancel", ORGANISERS, session_to_cancel),
    api("POST", "/api/v1/back-office/sessions/{session_id:uuid}/join", ORGANISERS, session_to_join),
    api("GET", "/api/v1/back-office/series", ORGANISERS),
    api("POST", "/api/v1/back-office/series", ok(ORGANISERS, 201), new_catalogue_series),
    api("GET", "/api/v1/back-office/series/{series_id:uuid}", ORGANISERS, a_catalogue_series),
    api("PUT", "/api/v1/back-office/series/{series_id:uuid}", ORGANISERS, changed_catalogue_series),
    api("POST", "/api/v1/back-office/series/{series_id:uuid}/publish", ORGANISERS, a_catalogue_series),
    api("POST", "/api/v1/back-office/series/{series_id:uuid}/cancel", ORGANISERS, series_to_cancel),
    api("GET", "/api/v1/back-office/rooms", ORGANISERS),
    api("POST", "/api/v1/back-office/rooms", ok(ORGANISERS, 201), fixed(name="Salle de la matrice")),
    api("POST", "/api/v1/back-office/rooms/{room_id:uuid}/join", ORGANISERS, room_to_host),
    api("POST", "/api/v1/back-office/rooms/{room_id:uuid}/close", ORGANISERS, a_permanent_room),
    # A's outgoing webhooks: its managers only (the notifier keeps them; an endpoint of A's is not B's)
    everyone("GET", "/api/v1/webhook-event-types"),
    api("GET", "/api/v1/accounts/{account_id:uuid}/webhooks", MANAGE),
    api(
        "POST",
        "/api/v1/accounts/{account_id:uuid}/webhooks",
        ok(MANAGE, 201),
        fixed(url=WEBHOOK_URL, events=["tokens.credited"]),
    ),
    api("GET", "/api/v1/accounts/{account_id:uuid}/webhooks/{webhook_id:uuid}", MANAGE, a_webhook),
    api(
        "PATCH",
        "/api/v1/accounts/{account_id:uuid}/webhooks/{webhook_id:uuid}",
        MANAGE,
        with_webhook(json={"description": "Matrice"}),
    ),
    api(
        "DELETE",
        "/api/v1/accounts/{account_id:uuid}/webhooks/{webhook_id:uuid}",
        ok(MANAGE, 204),
        a_webhook_to_delete,
    ),
    api(
        "POST",
        "/api/v1/accounts/{account_id:uuid}/webhooks/{webhook_id:uuid}/rotate-secret",
        MANAGE,
        with_webhook(json={"overlap_hours": 0}),
    ),
    api("POST", "/api/v1/accounts/{account_id:uuid}/webhooks/{webhook_id:uuid}/test", ok(MANAGE, 202), a_webhook),
    api("GET", "/api/v1/accounts/{account_id:uuid}/webhooks/{webhook_id:uuid}/deliveries", MANAGE, a_webhook),
    # "Webhooks" in Mon compte: the institution the caller looks at (its managers add; A's endpoint: 404 to others)
    signed_in_page("/account/webhooks"),
    page("POST", "/account/webhooks", form(webhook_form), **PAGE_MANAGE),
    page(
        "GET",
        "/account/webhooks/{webhook_id:uuid}",
        a_webhook,
        anonymous=303,
        member_a=403,
        manager_a=200,
        manager_b=404,
        organiser=404,
    ),
    page("POST", "/account/webhooks/{webhook_id:uuid}", with_webhook(form=WEBHOOK_FORM), **A_MEMBER_PAGE),
    page(
        "POST", "/account/webhooks/{webhook_id:uuid}/status", with_webhook(form={"status": "active"}), **A_MEMBER_PAGE
    ),
    page("POST", "/account/webhooks/{webhook_id:uuid}/test", a_webhook, **A_MEMBER_PAGE),
    page(
        "POST",
        "/account/webhooks/{webhook_id:uuid}/rotation",
        with_webhook(form={"overlap_hours": "0"}),
        anonymous=303,
        member_a=403,
        manager_a=200,  # the new secret's page
        manager_b=404,
        organiser=404,
    ),
    page("POST", "/account/webhooks/{webhook_id:uuid}/removal", a_webhook_to_delete, **A_MEMBER_PAGE),
    # A's personal API tokens: its managers only
    api("GET", "/api/v1/accounts/{account_id:uuid}/api-tokens", MANAGE),
    api("POST", "/api/v1/accounts/{account_id:uuid}/api-tokens", ok(MANAGE, 201), new_api_token),
    api(
        "DELETE", "/api/v1/accounts/{account_id:uuid}/api-tokens/{token_id:uuid}", ok(MANAGE, 204), revocable_api_token
    ),
    # "Mon compte": the pages show the caller's own institution (the organiser manages one of their own)
    signed_in_page("/account"),
    signed_in_page("/account/switch", "POST", form(switch_to_a), status=303),
    signed_in_page("/account/invitations/{account_id:uuid}/acceptance", "POST", asked_by_host2, 303),
    signed_in_page("/account/invitations/{account_id:uuid}/refusal", "POST", asked_by_host2, 303),
    signed_in_page("/account/information"),
    page("POST", "/account/information", form(institution_form), **PAGE_EDIT),
    signed_in_page("/account/me"),
    signed_in_page("/account/me", "POST", form(settings_form), status=303),
    signed_in_page("/account/me/email", "POST", form(email_change), status=303),
    signed_in_page("/account/me/password", "POST", password_change_stand_in, status=303),
    page("POST", "/account/me/api-tokens", form(api_token_form), **PAGE_MANAGE),
    page(
        "POST",
        "/account/me/api-tokens/{token_id:uuid}/revocation",
        revocable_api_token,
        anonymous=303,
        member_a=403,
        manager_a=303,
        manager_b=404,  # A's token is not of the account B's manager looks at
        organiser=404,
    ),
    # "Membres": the people of the institution shown; its managers act on them (A's member ids: 404 to others)
    signed_in_page("/account/members"),
    page("POST", "/account/members/add", form(new_member_form), **PAGE_EDIT),
    page("POST", "/account/members/batch", form(several_members_form), **PAGE_MANAGE),
    page("POST", "/account/members/import", page_csv_import, **PAGE_MANAGE),
    page("POST", "/account/members/{member_id:uuid}/email", page_correction, **A_MEMBER_PAGE),
    page("POST", "/account/members/{member_id:uuid}/invitation", invited_of_a, **A_MEMBER_PAGE),
    page("POST", "/account/members/{member_id:uuid}/password-reset", **A_MEMBER_PAGE),
    page("POST", "/account/members/{member_id:uuid}/role", page_role_of_invited, **A_MEMBER_PAGE),
    page("POST", "/account/members/{member_id:uuid}/removal", removable_member, **A_MEMBER_PAGE),
    signed_in_page("/account/privacy"),
    page("GET", "/account/privacy/export", **PAGE_MANAGE),
    Entry("POST", "/account/privacy/closure", PAGE_EDIT, page_closure, after=1),
    public_page("/account-closed"),
    # "Mon compte" > Notifications, and the dashboard's "try this address again" (A's bouncing address)
    signed_in_page("/account/notifications"),
    page("POST", "/account/notifications", form(reminders_form), **PAGE_EDIT),
    page("POST", "/account/bounces/retry", a_bouncing_address_of_a, **A_MEMBER_PAGE),
    # a reminder's unsubscribe link (no login: the signed token is the key) and the provider's bounce reports
    public_page("/unsubscribe/{token:str}", call=an_unsubscribe_link),
    public_page("/unsubscribe/{token:str}", "POST", an_unsubscribe_link),
    everyone("POST", "/hooks/mail/bounces", 202, a_bounce_report),
    # the back-office's pages: they do not exist for anyone but organisers
    page("GET", "/back-office", **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/organisers", **BACK_OFFICE_PAGE, organiser=200),
    page("POST", "/back-office/organisers", form(organiser_form), **BACK_OFFICE_PAGE, organiser=303),
    page("POST", "/back-office/organisers/{user_id:uuid}/revocation", new_organiser, **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/deliveries", **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/price-list", **BACK_OFFICE_PAGE, organiser=200),
    page("POST", "/back-office/price-list", page_new_price_item, **BACK_OFFICE_PAGE, organiser=303),
    page("POST", "/back-office/price-list/{item_id:uuid}", page_changed_price_item, **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/purchase-orders", **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST",
        "/back-office/purchase-orders/{order_id:uuid}/validation",
        pending_order,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page(
        "POST",
        "/back-office/purchase-orders/{order_id:uuid}/refusal",
        page_order_to_refuse,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page(
        "GET",
        "/back-office/purchase-orders/{order_id:uuid}/signed-order",
        signed_order,
        **BACK_OFFICE_PAGE,
        organiser=200,
    ),
    page("GET", "/back-office/payments", **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST",
        "/back-office/payments/{document_id:uuid}/received",
        page_invoice_paid,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page("GET", "/back-office/invoices", **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST",
        "/back-office/invoices/{document_id:uuid}/credit-note",
        page_invoice_to_credit,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page("GET", "/back-office/invoices/{document_id:uuid}/pdf", an_invoice, **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/invoices.csv", **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/revenue", **BACK_OFFICE_PAGE, organiser=200),
    # the catalogue back-office's pages (gateway.back_office_themes, _sessions, _series, _rooms)
    page("GET", "/back-office/themes", **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/themes/new", **BACK_OFFICE_PAGE, organiser=200),
    page("POST", "/back-office/themes", page_new_catalogue_theme, **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/themes/{theme_id:uuid}", a_catalogue_theme, **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST", "/back-office/themes/{theme_id:uuid}", page_changed_catalogue_theme, **BACK_OFFICE_PAGE, organiser=303
    ),
    page("POST", "/back-office/themes/{theme_id:uuid}/archive", a_catalogue_theme, **BACK_OFFICE_PAGE, organiser=303),
    page("POST", "/back-office/themes/{theme_id:uuid}/restore", a_catalogue_theme, **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/sessions", **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/sessions/calendar", **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/sessions/new", **BACK_OFFICE_PAGE, organiser=200),
    page("POST", "/back-office/sessions", page_new_catalogue_session, **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/sessions/{session_id:uuid}", a_draft_session, **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/sessions/{session_id:uuid}/edit", a_draft_session, **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST",
        "/back-office/sessions/{session_id:uuid}",
        page_changed_catalogue_session,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page("POST", "/back-office/sessions/{session_id:uuid}/publish", a_draft_session, **BACK_OFFICE_PAGE, organiser=303),
    page(
        "GET", "/back-office/sessions/{session_id:uuid}/reschedule", a_draft_session, **BACK_OFFICE_PAGE, organiser=200
    ),
    page(
        "POST",
        "/back-office/sessions/{session_id:uuid}/reschedule",
        page_session_to_move,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page("GET", "/back-office/sessions/{session_id:uuid}/cancel", a_draft_session, **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST",
        "/back-office/sessions/{session_id:uuid}/cancel",
        page_session_to_cancel,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page(
        "POST", "/back-office/sessions/{session_id:uuid}/join", page_session_to_join, **BACK_OFFICE_PAGE, organiser=303
    ),
    page("GET", "/back-office/series", **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/series/new", **BACK_OFFICE_PAGE, organiser=200),
    page("POST", "/back-office/series", page_new_catalogue_series, **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/series/{series_id:uuid}", a_catalogue_series, **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/series/{series_id:uuid}/edit", a_catalogue_series, **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST",
        "/back-office/series/{series_id:uuid}",
        page_changed_catalogue_series,
        **BACK_OFFICE_PAGE,
        organiser=303,
    ),
    page("POST", "/back-office/series/{series_id:uuid}/publish", a_catalogue_series, **BACK_OFFICE_PAGE, organiser=303),
    page("GET", "/back-office/series/{series_id:uuid}/cancel", a_catalogue_series, **BACK_OFFICE_PAGE, organiser=200),
    page(
        "POST", "/back-office/series/{series_id:uuid}/cancel", page_series_to_cancel, **BACK_OFFICE_PAGE, organiser=303
    ),
    page("GET", "/back-office/rooms", **BACK_OFFICE_PAGE, organiser=200),
    page("POST", "/back-office/rooms", form(room_form), **BACK_OFFICE_PAGE, organiser=303),
    page("POST", "/back-office/rooms/{room_id:uuid}/join", page_room_to_host, **BACK_OFFICE_PAGE, organiser=303),
    page("POST", "/back-office/rooms/{room_id:uuid}/close", a_permanent_room, **BACK_OFFICE_PAGE, organiser=303),
    # a permanent room's perpetual link: the link is the key (gateway.back_office_rooms.RoomPages)
    public_page("/rooms/{link_token:str}", call=a_room_link),
    # participation links, certificates' feedback links and verification, the rooms' hooks (gateway.join_pages):
    # no login; the token (or the hook's signature) is the key, and everyone gets the same answer
    public_page("/join/{token:str}", call=a_participation_link),
    everyone("POST", "/join/{token:str}", 404, a_token_opening_nothing(form={"name": "Léa Petit"})),
    everyone("POST", "/join/{token:str}/entry-code", 404, a_token_opening_nothing(form={"code": "1234"})),
    everyone(
        "POST", "/join/{token:str}/feedback", 404, a_token_opening_nothing(form={"name": "Léa Petit", "rating": "5"})
    ),
    everyone("GET", "/feedback/{token:str}", 404, a_token_opening_nothing()),
    everyone("POST", "/feedback/{token:str}", 404, a_token_opening_nothing(form={"rating": "5"})),
    public_page("/certificates/verify"),
    everyone("GET", "/hooks/rooms/{session_id:uuid}/ended", 404, a_room_end_unsigned),
    everyone("POST", "/hooks/rooms/{session_id:uuid}/ended", 404, a_room_end_unsigned),
    everyone("POST", "/hooks/rooms/jitsi", 204, a_jitsi_event),
    everyone("POST", "/rooms/{link_token:str}", 303, a_room_to_join),
    # A's tokens, orders and invoices (gateway.billing): its people read, its managers buy; others find nothing
    everyone("GET", "/api/v1/price-list"),
    api("GET", "/api/v1/accounts/{account_id:uuid}/wallet", READ),
    api("GET", "/api/v1/accounts/{account_id:uuid}/ledger", READ),
    api("GET", "/api/v1/accounts/{account_id:uuid}/orders", READ),
    api("GET", "/api/v1/accounts/{account_id:uuid}/orders/{order_id:uuid}", READ, a_paid_order),
    api("GET", "/api/v1/accounts/{account_id:uuid}/documents", READ),
    api("GET", "/api/v1/accounts/{account_id:uuid}/documents/{document_id:str}/pdf", READ, a_invoice),
    api("POST", "/api/v1/accounts/{account_id:uuid}/orders", ok(EDIT, 201), body(card_lines)),
    api("POST", "/api/v1/accounts/{account_id:uuid}/purchase-orders", ok(EDIT, 201), body(purchase_order_body)),
    api(
        "PUT",
        "/api/v1/accounts/{account_id:uuid}/orders/{order_id:uuid}/signed-order",
        ok(EDIT, 204),
        a_purchase_order_pdf,
    ),
    api("POST", "/api/v1/accounts/{account_id:uuid}/orders/{order_id:uuid}/cancel", EDIT, a_card_order),
    everyone("POST", "/api/v1/payments/webhook", 200, signed_webhook),  # public: the provider's signature is its key
    # "Achat de jetons", orders, "Mes factures": the institution the caller looks at (its managers buy)
    signed_in_page("/account/tokens"),
    page("POST", "/account/tokens/cart", form(cart_form), **PAGE_EDIT),
    page("POST", "/account/tokens/purchase-order", form(purchase_order_form), **PAGE_EDIT),
    signed_in_page("/account/tokens/history"),
    signed_in_page("/account/orders"),
    page(
        "GET",
        "/account/orders/{order_id:uuid}",
        a_paid_order,
        anonymous=303,
        member_a=200,
        manager_a=200,
        manager_b=404,
        organiser=404,
    ),
    page("POST", "/account/orders/{order_id:uuid}/cancel", a_card_order, **A_MEMBER_PAGE),
    signed_in_page("/account/invoices"),
    page(
        "GET",
        "/account/invoices/{file_name:str}",
        a_invoice_file,
        anonymous=303,
        member_a=200,
        manager_a=200,
        manager_b=404,
        organiser=404,
    ),
    # the sandbox provider's payment page: reached by the checkout's unguessable id alone, like a provider's page
    everyone("GET", "/payments/sandbox/{checkout_id:str}", 200, a_checkout),
    everyone("POST", "/payments/sandbox/{checkout_id:str}", 303, a_checkout_declined),
    # enrolments (gateway.enrolment): A's people read, its managers act; for the waiting-list routes A's manager gets
    # past the gateway's check and is answered by enrollment (no full session, no entry of A's: 409, 404)
    api("POST", "/api/v1/accounts/{account_id:uuid}/enrolments", ok(EDIT, 202), an_enrolment_request),
    api("GET", "/api/v1/accounts/{account_id:uuid}/enrolments", READ),
    api("GET", "/api/v1/accounts/{account_id:uuid}/enrolments/{enrollment_id:uuid}", READ, an_enrolment_of_a),
    api(
        "POST",
        "/api/v1/accounts/{account_id:uuid}/enrolments/{enrollment_id:uuid}/cancellation",
        EDIT,
        an_enrolment_of_a,
    ),
    api(
        "POST",
        "/api/v1/accounts/{account_id:uuid}/sessions/{session_id:uuid}/waiting-list",
        EDIT | {"manager_a": 409},
        a_waiting_list_request,
    ),
    api(
        "DELETE",
        "/api/v1/accounts/{account_id:uuid}/sessions/{session_id:uuid}/waiting-list",
        EDIT | {"manager_a": 404},
        a_waiting_list_entry,
    ),
    api(
        "POST",
        "/api/v1/accounts/{account_id:uuid}/waiting-list/{entry_id:uuid}/confirmation",
        EDIT | {"manager_a": 404},
        a_waiting_list_entry,
    ),
    api("GET", "/api/v1/back-office/sessions/{session_id:uuid}/enrolments", ORGANISERS, a_published_session),
    signed_in_page("/account/webvisio"),
    page("POST", "/planning/sessions/{session_id:uuid}/enrolment", an_enrolment_form, **PAGE_EDIT),
    page("POST", "/account/webvisio/{enrollment_id:uuid}/cancellation", an_enrolment_of_a, **A_MEMBER_PAGE),
    page(
        "POST",
        "/account/webvisio/waiting-list/{entry_id:uuid}/confirmation",
        a_waiting_list_entry,
        anonymous=303,
        member_a=403,
        manager_a=404,
        manager_b=404,
        organiser=404,
    ),
    page(
        "POST",
        "/account/webvisio/sessions/{session_id:uuid}/waiting-list/leave",
        a_waiting_list_entry,
        anonymous=303,
        member_a=403,
        manager_a=404,
        manager_b=404,
        organiser=404,
    ),
    # taking part (gateway.participation): A's people read the link, attendance and certificates, its managers act on
    # the link and its sendings; the feedback (not before the end: 409) is its people's; certificates: none yet (404)
    api("GET", f"{ENROLMENT}/link", READ, a_confirmed_enrolment("read")),
    api("POST", f"{ENROLMENT}/link/reissue", EDIT, a_confirmed_enrolment("link")),
    api("POST", f"{ENROLMENT}/link/revoke", ok(EDIT, 204), a_confirmed_enrolment("link")),
    api("GET", f"{ENROLMENT}/link/shares", MANAGE, a_confirmed_enrolment("share")),
    api("POST", f"{ENROLMENT}/link/shares", ok(EDIT, 201), a_confirmed_enrolment("share", json=SHARE_BODY)),
    api("DELETE", f"{ENROLMENT}/link/shares/{{share_id:uuid}}", ok(EDIT, 204), a_scheduled_share),
    api("GET", f"{ENROLMENT}/attendance", READ, a_confirmed_enrolment("read")),
    api(
        "POST",
        f"{ENROLMENT}/feedback",
        {"anonymous": 401, "member_a": 409, "manager_a": 409, "manager_b": 404, "organiser": 403},
        a_confirmed_enrolment("read", json={"rating": 4}),
    ),
    api("GET", f"{ENROLMENT}/certificates", READ, a_confirmed_enrolment("read")),
    api(
        "GET",
        f"{ENROLMENT}/certificates/{{certificate_id:uuid}}/pdf",
        {"anonymous": 401, "member_a": 404, "manager_a": 404, "manager_b": 404, "organiser": 404},
        no_certificate_of_a,
    ),
    api("GET", "/api/v1/back-office/sessions/{session_id:uuid}/attendance", ORGANISERS, a_session_known_to_enrollment),
    api("GET", "/api/v1/back-office/sessions/{session_id:uuid}/feedback", ORGANISERS, a_session_known_to_enrollment),
    api("GET", "/api/v1/back-office/statistics", ORGANISERS),
    api("GET", "/api/v1/back-office/statistics.csv", ORGANISERS),
    page(
        "GET",
        "/account/webvisio/{enrollment_id:uuid}",
        a_confirmed_enrolment("read"),
        anonymous=303,
        member_a=200,
        manager_a=200,
        manager_b=404,
        organiser=404,
    ),
    page("POST", "/account/webvisio/{enrollment_id:uuid}/link/reissue", a_confirmed_enrolment("link"), **A_MEMBER_PAGE),
    page("POST", "/account/webvisio/{enrollment_id:uuid}/link/revoke", a_confirmed_enrolment("link"), **A_MEMBER_PAGE),
    page(
        "POST",
        "/account/webvisio/{enrollment_id:uuid}/shares",
        a_confirmed_enrolment("share", form={"recipients": "matrice@example.org", "when": "now"}),
        **A_MEMBER_PAGE,
    ),
    page(
        "POST",
        "/account/webvisio/{enrollment_id:uuid}/shares/{share_id:uuid}/cancellation",
        a_scheduled_share,
        **A_MEMBER_PAGE,
    ),
    page(
        "POST",
        "/account/webvisio/{enrollment_id:uuid}/feedback",
        a_confirmed_enrolment("read", form={"rating": "4"}),
        anonymous=303,
        member_a=409,
        manager_a=409,
        manager_b=404,
        organiser=404,
    ),
    page(
        "GET",
        "/account/webvisio/{enrollment_id:uuid}/certificates/{certificate_id:uuid}/pdf",
        no_certificate_of_a,
        anonymous=303,
        member_a=404,
        manager_a=404,
        manager_b=404,
        organiser=404,
    ),
    page("GET", "/back-office/statistics", **BACK_OFFICE_PAGE, organiser=200),
    page("GET", "/back-office/statistics.csv", **BACK_OFFICE_PAGE, organiser=200),
    # the public planning (gateway.catalogue, gateway.planning_pages): anyone, signed in or not
    everyone("GET", "/api/v1/planning"),
    everyone("GET", "/api/v1/planning/sessions/{session_id:uuid}", 200, a_published_session),
    everyone("GET", "/api/v1/themes"),
    everyone("GET", "/api/v1/planning.ics"),
    public_page("/planning"),
    public_page("/planning/sessions/{session_id:uuid}", call=a_published_session),
    public_page("/planning/sessions/{session_id:uuid}/calendar.ics", call=a_published_session),
    public_page("/planning.ics"),
    # portal pages opened from mailed links: public; their forms act only with the mailed token
    public_page("/"),
    public_page("/help"),
    everyone("POST", "/language", 303, form(language)),
    public_page("/signup"),
    public_page("/signup", "POST", form(sign_up_form)),
    public_page("/verification/resend"),
    public_page("/verification/resend", "POST", form(forgot)),
    page("GET", "/login", anonymous=200, member_a=303, manager_a=303, manager_b=303, organiser=303),
    everyone("POST", "/login", 303, form(host_credentials)),
    everyone("POST", "/logout", 303, log_out_page),
    everyone("POST", "/logout-everywhere", 303, stand_in),
    everyone("GET", "/static/{file_path:path}", 200, static_file),
    everyone("HEAD", "/static/{file_path:path}", 200, static_file),
    public_page("/verify-email"),
    public_page("/verify-email", "POST", form(verification)),
    public_page("/forgot-password"),
    public_page("/forgot-password", "POST", form(forgot)),
    public_page("/reset-password"),
    public_page("/reset-password", "POST", form(reset)),
    public_page("/accept-invitation"),
    public_page("/accept-invitation", "POST", form(invitation)),
    public_page("/join"),
    public_page("/join", "POST", form(join)),
    public_page("/confirm-email"),
    public_page("/confirm-email", "POST", form(email_confirmation)),
    public_page("/revert-email"),
    public_page("/revert-email", "POST", form(email_reversal)),
    # health, the OpenAPI document and its page
    everyone("GET", "/health/live"),
    everyone("GET", "/health/ready"),
    everyone("GET", "/schema"),
    everyone("GET", "/schema/openapi.json"),
    everyone("GET", "/schema/{path:str}", 200, schema_page),
    everyone("GET", "/schema/oauth2-redirect.html"),
    everyone("GET", "/schema/assets/{name:str}", 200, asset),
]


async def build_scene(url: str, mail_api: str, system: Any) -> Scene:
    """A and B, their managers (verified), A's member (accepted) and an invited one, an organiser, two hosts."""
    bare = Scene(url, mail_api, system, {}, "", "", "", None, None)  # type: ignore[arg-type]
    manager_a, manager_b, organiser, host, host2 = await asyncio.gather(
        *(bare.sign_up(label, verified=True) for label in ("Hugo", "Zola", "Voltaire", "Colette", "Sand"))
    )
    await grant_organiser(system, organiser.email)
    member_email, invited_email = unique_email("member-a"), unique_email("invited-a")
    await asyncio.gather(bare.invite(manager_a, member_email), bare.invite(manager_a, invited_email))
    accept_token = await bare.mailed_token(member_email, "vous invite", "accept-invitation")
    async with bare.client() as gateway:
        accepted = await gateway.post(
            "/api/v1/invitations/acceptance", json={"token": accept_token, "new_password": MEMBER_PASSWORD}
        )
        assert accepted.status_code == 200, accepted.text
        listed = await gateway.get(f"/api/v1/accounts/{manager_a.account_id}/members", headers=bearer(manager_a.token))
    [invited_a] = [m["member_id"] for m in listed.json()["members"] if m["email"] == invited_email]
    member_a = await bare.log_in(member_email, MEMBER_PASSWORD, manager_a.account_id)
    people = {
        "member_a": member_a,
        "manager_a": manager_a,
        "manager_b": manager_b,
        "organiser": organiser,
    }
    return Scene(url, mail_api, system, people, manager_a.account_id, manager_b.account_id, str(invited_a), host, host2)


async def send(scene: Scene, entry: Entry, caller: str) -> httpx.Response:
    """Build the entry's request for the caller, and send it the way that caller would."""
    call = await entry.call(scene, caller)
    path = entry.path
    for name, value in call.values.items():
        for kind in ("uuid", "str", "path"):
            path = path.replace(f"{{{name}:{kind}}}", value)
    assert "{" not in path, f"{entry.method} {entry.path}: no value for {path}"
    token = None if caller == "anonymous" or call.anonymous else call.token or scene.people[caller].token
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if path.startswith("/api/"):
        if token:
            headers |= bearer(token)
    elif token:
        cookies[SESSION_COOKIE] = token
    if entry.method not in ("GET", "HEAD") and not path.startswith("/api/"):
        cookies[CSRF_COOKIE] = csrf = await csrf_token(scene, caller)
        headers[CSRF_HEADER] = csrf
    if call.content_type:
        headers["Content-Type"] = call.content_type
    headers |= call.headers
    cookies |= call.cookies
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    async with scene.client(caller) as gateway:
        return await gateway.request(
            entry.method,
            path,
            json=call.json,
            content=call.content,
            data=call.form,
            params=call.query,
            headers=headers,
            follow_redirects=False,
        )
