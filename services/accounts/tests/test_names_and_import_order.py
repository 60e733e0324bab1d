"""The one rule for names (validators.normalise_name) wherever a name comes in; a CSV import checks who sends
it before reading the file; a profile's name cannot be set to null."""

import uuid
from datetime import timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.di import Provide
from sqlalchemy import text

from accounts import errors, me, profile
from accounts import service as accounts
from accounts.api import EXCEPTION_HANDLERS, AccountController, MembersController, UsersController
from accounts.csv_import import MemberRow, RowError, check_member, parse_members_csv
from accounts.settings import AccountsSettings
from accounts.validators import InvalidName, ValidationFailure, normalise_name
from accounts_world import OUTBOX, PASSWORD, actor, institution
from identifiers import new_uai
from servicekit.http import problem_response
from servicekit.runtime import Service

# --- The rule ----------------------------------------------------------------------------------------------

INVISIBLE_ONLY = [
    "\u200b",  # zero-width space
    "\u2060",  # word joiner
    "\ufeff",  # byte-order mark
    "\u200b\u2060\ufeff",
    "\u200d",  # a lone zero-width joiner
    "\u0301",  # a combining mark alone
    "\u0301\u0308\u0327",
    "\u3164",  # Hangul filler (a "letter" that shows nothing)
    "\u115f\u1160",
    "\u034f",  # combining grapheme joiner
    "\u2800",  # braille blank
    "\U000e0041\U000e0042",  # tag characters
    "-",
    "...",
    "\u00ad",  # soft hyphen
]
CONTROLS = [
    "Jean\u202eDupont",  # right-to-left override
    "\u202aJean",
    "Jean\u202b",
    "Jean\u202c",
    "Jean\u202d",
    "Jean\u2066Dupont\u2069",  # isolates
    "Jean\u2067",
    "Jean\u2068",
    "Jean\u200fDupont",  # right-to-left mark
    "Jean\x00",
    "Jean\x07Dupont",
    "Jean\x1bDupont",
    "Jean\x1fDupont",
    "Jean\x7f",
    "Jean\x85Dupont",  # C1
    "Jean\x9bDupont",
    "Jean\u200bDupont",  # an invisible space inside a name
    "Jean\ue000",  # private use
    "Jean\U0010ffff",
    "\u0301Jean",  # a mark with nothing to sit on
    "Jean \u0301Dupont",
]
WHITESPACE_ONLY = ["", " ", "   ", "\t", "\r\n", "\u00a0", "\u3000", "\u2028", " \u2003 "]


@pytest.mark.parametrize("value", INVISIBLE_ONLY + CONTROLS)
def test_invisible_and_control_characters_are_refused(value: str) -> None:
    with pytest.raises(InvalidName) as refused:
        normalise_name(value)
    assert refused.value.code == "name_invalid" and refused.value.message


@pytest.mark.parametrize("value", WHITESPACE_ONLY)
def test_whitespace_only_is_a_missing_name(value: str) -> None:
    with pytest.raises(InvalidName) as refused:
        normalise_name(value)
    assert refused.value.code == "name_missing"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Camille   Martin ", "Camille Martin"),
        ("Lycée\u00a0Victor-Hugo", "Lycée Victor-Hugo"),
        ("Jean\r\nDupont", "Jean Dupont"),  # a quoted CSV cell on two lines
        ("Jean\tDupont", "Jean Dupont"),
        ("E\u0301lodie", "Élodie"),  # NFC
        ("42", "42"),  # the school "42"
        ("O'Brien & Fils", "O'Brien & Fils"),
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        ("李小龍", "李小龍"),
        (
            "\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627",
            "\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627",
        ),  # Persian: the zero-width non-joiner is part of its spelling
        ("Zoë 👩\u200d🏫", "Zoë 👩\u200d🏫"),
        ("x" * 200, "x" * 200),
    ],
)
def test_real_names_are_kept_normalised(value: str, expected: str) -> None:
    assert normalise_name(value) == expected


def test_length_is_counted_after_normalisation() -> None:
    assert normalise_name(" " + "x" * 200 + " ") == "x" * 200
    with pytest.raises(InvalidName) as refused:
        normalise_name("x" * 201)
    assert refused.value.code == "name_too_long"


@given(st.text(max_size=60))
def test_any_text_gives_a_clean_name_or_a_validation_failure(value: str) -> None:
    try:
        name = normalise_name(value)
    except ValidationFailure as exc:
        assert exc.code in ("name_invalid", "name_missing", "name_too_long")
        return
    assert name == name.strip() and "  " not in name and 1 <= len(name) <= 200
    assert all(c.isprintable() or c in "\u200c\u200d" for c in name)


# --- Members added one by one and imported: the same rule, as row problems -----------------------------


@pytest.mark.parametrize("value", ["\u200b", "\u202eevil", "Jean\x1bDupont", "\u0301"])
def test_a_member_row_with_an_invalid_name_is_reported(value: str) -> None:
    assert check_member(3, value, "a@example.com", {}) == RowError(3, "name_invalid", normalise_error(value))


def normalise_error(value: str) -> str:
    with pytest.raises(InvalidName) as refused:
        normalise_name(value)
    return refused.value.message


def test_an_imported_file_reports_invisible_and_control_names_and_keeps_the_others() -> None:
    rows = ["Nom;E-mail", "\u200b\u2060;a@example.com", "Jean\u202eDupont;b@example.com", "Léa Roux;c@example.com"]
    report = parse_members_csv("\r\n".join(rows).encode())
    assert [(e.line, e.code) for e in report.errors] == [(2, "name_invalid"), (3, "name_invalid")]
    assert report.rows == [MemberRow(4, "Léa Roux", "c@example.com")]


# --- Every other way in: sign-up, one's own name, the institution's profile ------------------------------


@pytest.mark.infra
@pytest.mark.parametrize("field", ["institution_name", "contact_name"])
@pytest.mark.parametrize("value", ["\u200b", "Lycée\u202eHugo", "\u3164", "   "])
async def test_sign_up_refuses_invalid_names_and_creates_nothing(db, field, value):
    names = {"institution_name": "Lycée Hugo", "contact_name": "Camille Martin", field: value}
    form = accounts.SignUp(
        names["institution_name"],
        "school",
        names["contact_name"],
        "c@lycee.fr",
        PASSWORD,
        institution_identifier=new_uai(),
    )
    with pytest.raises(errors.InvalidField) as refused:
        async with db.transaction() as session:
            await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))
    assert refused.value.field == field
    assert refused.value.code == ("name_missing" if not value.strip() else "name_invalid")
    async with db.transaction() as session:
        assert await session.scalar(text("SELECT count(*) FROM institutions")) == 0


@pytest.mark.infra
async def test_sign_up_stores_names_normalised(db):
    form = accounts.SignUp(
        " Lyce\u0301e  Hugo ", "school", "Camille\u00a0Martin", "c@lycee.fr", PASSWORD, institution_identifier=new_uai()
    )
    async with db.transaction() as session:
        await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))
        assert await session.scalar(text("SELECT name FROM institutions")) == "Lycée Hugo"
        assert await session.scalar(text("SELECT name FROM users")) == "Camille Martin"


@pytest.mark.infra
async def test_ones_own_name_follows_the_rule(db):
    _, manager = await institution(db, "camille@lycee.fr")
    for value in ("\u2060", "Camille\u2066"):
        with pytest.raises(errors.InvalidField) as refused:
            async with db.transaction() as session:
                await me.update_settings(session, manager, name=value)
        assert (refused.value.field, refused.value.code) == ("name", "name_invalid")
    async with db.transaction() as session:
        await me.update_settings(session, manager, name="  Camille  Dubois ")
        assert await session.scalar(text("SELECT name FROM users WHERE id = :id"), {"id": manager}) == "Camille Dubois"


@pytest.mark.infra
@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"name": "\ufeff"}, "name", "name_invalid"),
        ({"name": "Lycée\u202e"}, "name", "name_invalid"),
        ({"name": " "}, "name", "name_missing"),
        ({"name": None}, "name", "name_missing"),
        ({"contact_name": "\u200b"}, "contact_name", "name_invalid"),
    ],
)
async def test_the_profile_names_follow_the_rule_and_a_null_name_is_a_field_error(db, changes, field, code):
    account_id, manager = await institution(db, "camille@lycee.fr")
    with pytest.raises(errors.InvalidField) as refused:
        async with db.transaction() as session:
            await profile.edit_profile(session, await actor(db, manager), account_id, {"city": "Nice", **changes})
    assert (refused.value.field, refused.value.code) == (field, code)
    async with db.transaction() as session:
        edited = await profile.edit_profile(
            session, await actor(db, manager), account_id, {"name": " Lycée  Hugo ", "contact_name": None}
        )
    assert (edited["name"], edited["contact_name"], edited["city"]) == ("Lycée Hugo", None, None)


# --- Through the internal HTTP API ---------------------------------------------------------------------


@pytest.fixture
async def http(db):
    """The accounts routes under test over HTTP, on the real database (no Kafka: the outbox is only written)."""
    service = Service.__new__(Service)  # its database only: nothing is started
    service.db, service.outbox, service.settings = db, OUTBOX, AccountsSettings()
    app = Litestar(
        route_handlers=[AccountController, MembersController, UsersController],
        dependencies={"service": Provide(lambda: service, sync_to_thread=False)},
        exception_handlers={Exception: problem_response, **EXCEPTION_HANDLERS},
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://accounts") as client:
        yield client  # in the test's own event loop, the database's


BINARY = b"\x00\x01\x02 not a CSV file"


@pytest.mark.infra
async def test_a_csv_import_checks_who_sends_it_before_reading_the_file(db, http):
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    _, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    member_a = uuid.uuid4()  # a member of A who is not a manager
    async with db.transaction() as session:
        await session.execute(
            text("INSERT INTO users (id, email, name) VALUES (:id, 'paul@lycee-a.fr', 'Paul Durand')"), {"id": member_a}
        )
        await session.execute(
            text("INSERT INTO memberships (institution_id, user_id, role) VALUES (:a, :id, 'member')"),
            {"a": a, "id": member_a},
        )

    def post(account_id, actor_id, content):
        headers = {"X-Actor-Id": str(actor_id), "Content-Type": "text/csv"}
        return http.post(f"/internal/accounts/{account_id}/members/import", content=content, headers=headers)

    for content in (BINARY, b"", b"no header here\n", b"x" * (6 * 1024 * 1024)):
        outsider = await post(a, manager_b, content)
        assert (outsider.status_code, outsider.json()["code"]) == (404, "not_found"), outsider.text
        member = await post(a, member_a, content)
        assert (member.status_code, member.json()["code"]) == (403, "forbidden"), member.text
    refused = await post(a, manager_a, BINARY)
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (400, "file_binary", "file")
    imported = await post(a, manager_a, "Nom;E-mail\r\n\u200b;x@lycee-a.fr\r\nZoé;zoe@lycee-a.fr\r\n".encode())
    assert imported.status_code == 200, imported.text
    assert imported.json()["invited"] == 1
    assert [(r["line"], r["code"]) for r in imported.json()["rejected"]] == [(2, "name_invalid")]


@pytest.mark.infra
async def test_a_null_or_invisible_profile_name_is_a_400_with_its_field(db, http):
    account_id, manager = await institution(db, "camille@lycee.fr")
    path, headers = f"/internal/accounts/{account_id}/profile", {"X-Actor-Id": str(manager)}
    for body, code in (({"name": None}, "name_missing"), ({"name": "\u200b\u200b"}, "name_invalid")):
        answer = await http.patch(path, json=body, headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert (answer.json()["code"], answer.json()["field"]) == (code, "name")
    assert (await http.get(path, headers=headers)).json()["name"] == "Lycée Hugo"


@pytest.mark.infra
async def test_members_added_by_the_api_and_ones_own_name_follow_the_rule(db, http):
    account_id, manager = await institution(db, "camille@lycee.fr")
    headers = {"X-Actor-Id": str(manager)}
    added = await http.post(
        f"/internal/accounts/{account_id}/members",
        json={"members": [{"name": "\u2066\u2069", "email": "a@lycee.fr"}, {"name": "Léa", "email": "lea@lycee.fr"}]},
        headers=headers,
    )
    assert added.status_code == 200, added.text
    assert (added.json()["invited"], [r["code"] for r in added.json()["rejected"]]) == (1, ["name_invalid"])
    renamed = await http.patch(f"/internal/users/{manager}", json={"name": "\u202eCamille"})
    assert (renamed.status_code, renamed.json()["code"], renamed.json()["field"]) == (400, "name_invalid", "name")
