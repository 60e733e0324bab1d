"""Helpers for the accounts service's tests against its real database: institutions, actors, members and
the events they left in the outbox."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from accounts import access, members
from accounts import service as accounts
from accounts.csv_import import MemberRow
from identifiers import new_uai
from servicekit.outbox import Outbox

PASSWORD = "violet tramway under nineteen lanterns"
MEMBER_PASSWORD = "seven quiet herons over the canal"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
OUTBOX = Outbox("accounts")


async def institution(db, email, name="Lycée Hugo"):
    form = accounts.SignUp(name, "school", "Camille Martin", email, PASSWORD, institution_identifier=new_uai())
    async with db.transaction() as session:
        account_id = await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))
        user_id = await session.scalar(text("SELECT id FROM users WHERE email = :e"), {"e": email})
    return account_id, user_id


async def actor(db, user_id):
    async with db.transaction() as session:
        return await access.actor(session, user_id)


async def add(db, manager, account_id, *people):
    rows = [MemberRow(i, name, email) for i, (name, email) in enumerate(people, start=1)]
    async with db.transaction() as session:
        return await members.add_members(session, OUTBOX, await actor(db, manager), account_id, rows, NOW)


async def events(db, event_type):
    async with db.transaction() as session:
        rows = await session.execute(text("SELECT headers, value FROM outbox ORDER BY id"))
        found = []
        for headers, value in rows:
            if dict(headers).get("ce_type", "").endswith(f".{event_type}.v1"):
                found.append(json.loads(value))
        return found


async def invitation_token(db, email):
    [invited] = [event for event in await events(db, "MemberInvited") if event["email"] == email][-1:]
    return invited["invitation_token"]
