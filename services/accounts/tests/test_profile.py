"""Profile and authorisation: an institution's people see it, its managers edit it, nobody else sees it."""

from datetime import timedelta

import pytest
from sqlalchemy import text

from accounts import access, errors, profile
from accounts import service as accounts
from identifiers import new_uai
from servicekit.outbox import Outbox

pytestmark = pytest.mark.infra

ORGANISER = "INSERT INTO users (id, email, name, is_organiser) VALUES (gen_random_uuid(), 'o@visiopass.fr', 'O', true)"


async def institution(db, email):
    form = accounts.SignUp(
        "Lycée Hugo",
        "school",
        "Camille Martin",
        email,
        "violet tramway under nineteen lanterns",
        institution_identifier=new_uai(),
    )
    async with db.transaction() as session:
        return await accounts.sign_up(session, Outbox("accounts"), form, verification_ttl=timedelta(hours=48))


async def actor_for(db, email):
    async with db.transaction() as session:
        user_id = await session.scalar(text("SELECT id FROM users WHERE email = :e"), {"e": email})
        return await access.actor(session, user_id)


async def test_a_manager_reads_and_edits_its_own_institution_only(db):
    a = await institution(db, "a@lycee-a.fr")
    b = await institution(db, "b@lycee-b.fr")
    manager_a = await actor_for(db, "a@lycee-a.fr")
    async with db.transaction() as session:
        edited = await profile.edit_profile(
            session, manager_a, a, {"phone": "01 42 34 56 78", "vat_number": "FR 40 303 265 045", "city": "Lyon"}
        )
        assert (edited["phone"], edited["vat_number"], edited["city"]) == ("+33142345678", "FR40303265045", "Lyon")
        for attempt in (profile.read_profile(session, manager_a, b), profile.edit_profile(session, manager_a, b, {})):
            with pytest.raises(errors.NotFound):
                await attempt


async def test_a_member_reads_but_does_not_edit_and_an_organiser_reads_all(db):
    a = await institution(db, "a@lycee-a.fr")
    async with db.transaction() as session:
        await session.execute(text(ORGANISER))
        member = access.Actor((await actor_for(db, "a@lycee-a.fr")).user_id, False, {a: "member"})
    organiser = await actor_for(db, "o@visiopass.fr")
    async with db.transaction() as session:
        read_by_member = await profile.read_profile(session, member, a)
        assert read_by_member["account_id"] == a and read_by_member["member_count"] == 1
        assert "member_counts" not in read_by_member, "the detailed counts are the managers' (as the members' list)"
        with pytest.raises(errors.Forbidden):
            await profile.edit_profile(session, member, a, {"city": "Paris"})
        read_by_organiser = await profile.read_profile(session, organiser, a)
        assert read_by_organiser["name"] == "Lycée Hugo"
        assert read_by_organiser["member_counts"] == {"total": 1, "active": 1, "invited": 0, "managers": 1}
        with pytest.raises(errors.Forbidden):
            await profile.edit_profile(session, organiser, a, {"city": "Paris"})


@pytest.mark.parametrize(
    ("changes", "code"), [({"phone": "12"}, "phone_invalid"), ({"vat_number": "FR41303265045"}, "vat_invalid")]
)
async def test_invalid_phone_or_vat_is_refused_and_nothing_changes(db, changes, code):
    a = await institution(db, "a@lycee-a.fr")
    manager = await actor_for(db, "a@lycee-a.fr")
    with pytest.raises(accounts.InvalidField) as refused:
        async with db.transaction() as session:
            await profile.edit_profile(session, manager, a, {"city": "Nice", **changes})
    assert refused.value.failure.code == code
    async with db.transaction() as session:
        assert (await profile.read_profile(session, manager, a))["city"] is None
