"""Sign-up rules against a real PostgreSQL."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from accounts import service as accounts
from accounts_world import opened
from identifiers import new_siret, new_uai
from servicekit.outbox import Outbox

pytestmark = pytest.mark.infra

PASSWORD = "violet tramway under nineteen lanterns"


async def sign_up(db, **changes):
    fields = {
        "institution_name": "Lycée Victor Hugo",
        "institution_kind": "school",
        "contact_name": "Camille Martin",
        "email": "camille@lycee-hugo.fr",
        "password": PASSWORD,
        "institution_identifier": new_uai(),
    } | changes
    async with db.transaction() as session:
        return await accounts.sign_up(
            session, Outbox("accounts"), accounts.SignUp(**fields), verification_ttl=timedelta(hours=48)
        )


async def test_a_second_account_for_the_same_institution_is_refused(db):
    uai = new_uai()
    await sign_up(db, institution_identifier=uai)
    with pytest.raises(accounts.InstitutionExists):
        await sign_up(db, email="other@lycee-hugo.fr", institution_identifier=f" {uai[:3]} {uai[3:].lower()} ")
    siret = new_siret()
    await sign_up(db, email="a@acme.fr", institution_kind="company", institution_identifier=siret)
    with pytest.raises(accounts.InstitutionExists):
        await sign_up(db, email="b@acme.fr", institution_kind="company", institution_identifier=siret)


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"institution_identifier": None}, "institution_identifier", "uai_required"),
        ({"institution_identifier": "0750652A"}, "institution_identifier", "uai_checksum"),
        (
            {"institution_kind": "company", "institution_identifier": "73282932000075"},
            "institution_identifier",
            "siret_checksum",
        ),
        ({"email": "camille@localhost"}, "email", "email_invalid"),
        ({"password": "short one"}, "password", "password_too_short"),
        ({"password": "Motdepasse2024!"}, "password", "password_common"),
        ({"password": "camille martin is my password"}, "password", "password_personal"),
    ],
)
async def test_each_rule_is_refused_with_its_code(db, changes, field, code):
    if changes.get("institution_identifier") == "0750652A":
        uai = new_uai()
        changes = {"institution_identifier": uai[:7] + ("B" if uai[7] == "A" else "A")}
    with pytest.raises(accounts.InvalidField) as refused:
        await sign_up(db, **changes)
    assert (refused.value.field, refused.value.failure.code) == (field, code)
    async with db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM institutions")) == 0, "nothing half-stored"


async def test_a_valid_sign_up_stores_the_normalised_email_and_identifier_and_one_event(db):
    uai = new_uai()
    await sign_up(db, email="Camille@LYCEE-HUGO.fr", institution_identifier=uai.lower())
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT email FROM users"))).scalar() == "Camille@lycee-hugo.fr"
        assert (await conn.execute(text("SELECT identifier FROM institutions"))).scalar() == uai
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 1


async def resend(db, email, now):
    async with db.transaction() as session:
        await accounts.resend_verification(
            session, Outbox("accounts"), email, "192.0.2.1", now, verification_ttl=timedelta(hours=48)
        )


async def outbox_events(db, event_type):
    async with db.engine.connect() as conn:
        values = (await conn.execute(text("SELECT value FROM outbox ORDER BY id"))).scalars()
        return [opened(event) for event in map(json.loads, values) if event["type"] == event_type]


async def test_a_new_verification_link_voids_the_old_one_and_is_silently_limited(db):
    await sign_up(db)
    [registered] = await outbox_events(db, "AccountRegistered")
    now = datetime.now(UTC)
    await resend(db, "nobody@lycee-hugo.fr", now)
    for minute in range(5):
        await resend(db, "camille@lycee-hugo.fr", now + timedelta(minutes=minute))
    links = await outbox_events(db, "VerificationLinkRequested")
    assert len(links) == accounts.RESENDS_PER_EMAIL.max_failures
    with pytest.raises(accounts.InvalidToken):
        async with db.transaction() as session:
            await accounts.verify_email(session, Outbox("accounts"), registered["verification_token"])
    async with db.transaction() as session:
        await accounts.verify_email(session, Outbox("accounts"), links[-1]["verification_token"])
    await resend(db, "camille@lycee-hugo.fr", now + timedelta(hours=3))
    assert len(await outbox_events(db, "VerificationLinkRequested")) == len(links), "verified: nothing more to send"
