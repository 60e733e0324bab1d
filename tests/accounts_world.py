"""Helpers for the accounts service's tests against its real database: institutions, actors, members and
the events they left in the outbox."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from accounts import access, members
from accounts import service as accounts
from accounts.csv_import import MemberRow
from contracts import TOPICS
from contracts.examples import EXAMPLE_KEYRING
from contracts.secrets import is_sealed, secret_context, secret_fields, unseal
from identifiers import new_uai
from servicekit.outbox import Outbox

PASSWORD = "violet tramway under nineteen lanterns"
MEMBER_PASSWORD = "seven quiet herons over the canal"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
OUTBOX = Outbox("accounts")


async def institution(db, email, name="Lycée Hugo", *, verified=True):
    """A new account and its manager's id; the manager's address is verified unless `verified` is False
    (only a verified manager invites people)."""
    form = accounts.SignUp(name, "school", "Camille Martin", email, PASSWORD, institution_identifier=new_uai())
    async with db.transaction() as session:
        account_id = await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))
        user_id = await session.scalar(text("SELECT id FROM users WHERE email = :e"), {"e": email})
        if verified:
            await session.execute(text("UPDATE users SET email_verified_at = now() WHERE id = :id"), {"id": user_id})
    return account_id, user_id


async def actor(db, user_id):
    async with db.transaction() as session:
        return await access.actor(session, user_id)


async def add(db, manager, account_id, *people):
    rows = [MemberRow(i, name, email) for i, (name, email) in enumerate(people, start=1)]
    async with db.transaction() as session:
        return await members.add_members(session, OUTBOX, await actor(db, manager), account_id, rows, NOW)


async def events(db, event_type):
    """The outbox's events of `event_type` (any version), as JSON, their sealed tokens opened."""
    async with db.transaction() as session:
        rows = await session.execute(text("SELECT headers, value FROM outbox ORDER BY id"))
        found = []
        for headers, value in rows:
            if dict(headers).get("ce_type", "").rpartition(".v")[0].endswith(f".{event_type}"):
                found.append(opened(json.loads(value)))
        return found


def opened(event):
    """An accounts event's JSON with its sealed tokens replaced by the plain ones, opened with the tests'
    keyring (services/accounts/tests/conftest.py); fails if a token is not sealed."""
    [model] = [m for m in TOPICS["accounts.account"].events if m.event_name() == event["type"]]
    plain = dict(event)
    for name in secret_fields(model):
        if event.get(name) is not None:
            assert is_sealed(event[name]), f"{event['type']}.{name} is not sealed"
            context = secret_context(model, name, event["account_id"])
            plain[name] = unseal(event[name], EXAMPLE_KEYRING, context)
    return plain


async def invitation_token(db, email):
    [invited] = [event for event in await events(db, "MemberInvited") if event["email"] == email][-1:]
    return invited["invitation_token"]
