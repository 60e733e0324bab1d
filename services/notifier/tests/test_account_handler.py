"""The accounts-event handler against a real notifier database: deliveries planned once per recipient,
and a closed account's mails erased."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from contracts import Envelope
from contracts.events.accounts import AccountClosed, MemberInvited, MemberRemoved, PasswordChanged
from contracts.examples import EXAMPLE_KEYRING, EXAMPLE_TOKENS, example
from contracts.secrets import seal, secret_context
from notifier.handlers import account_handlers, account_mails
from notifier.models import deliveries
from notifier.settings import NotifierSettings
from servicekit.db import Database
from servicekit.migrations import upgrade

pytestmark = pytest.mark.infra

BASE_URL = "https://visiopass.example"
handle = account_handlers(NotifierSettings(public_base_url=BASE_URL, event_secret_keys=EXAMPLE_KEYRING.to_text()))


@pytest.fixture
async def db(fresh_database):
    database = Database(fresh_database)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


def envelope(event):
    return Envelope(
        id=uuid.uuid4(),
        source="/visiopass/accounts",
        type=type(event).ce_type(),
        time=datetime(2025, 3, 10, 9, 0, tzinfo=UTC),
        subject=event.aggregate_id(),
        dataschema=type(event).dataschema(),
        correlation_id=None,
        causation_id=None,
        event=event,
    )


async def handled(db, *envelopes):
    for each in envelopes:
        async with db.transaction() as session:
            await handle(session, each)
    async with db.transaction() as session:
        return (await session.execute(select(deliveries).order_by(deliveries.c.created_at, deliveries.c.id))).all()


async def test_a_mail_is_planned_once_under_its_event_and_account(db):
    invited = envelope(example(MemberInvited))
    [row] = await handled(db, invited, invited)  # a redelivery plans nothing more
    [mail] = account_mails(invited.event, BASE_URL, EXAMPLE_KEYRING)
    assert (row.event_id, row.account_id, row.status) == (invited.id, invited.event.account_id, "pending")
    assert (row.template, row.recipient, row.context) == (mail.template, mail.recipient, mail.variables)
    assert await handled(db, envelope(example(MemberRemoved))) == [row], "an event without mail plans none"


async def test_closing_an_account_sends_its_notices_and_erases_its_other_mails(db):
    invitation, notice = envelope(example(MemberInvited)), envelope(example(PasswordChanged))
    other_id = uuid.uuid4()  # a token is sealed for one account: seal the example's again for this one
    token = seal(
        EXAMPLE_TOKENS[("MemberInvited", "invitation_token")],
        EXAMPLE_KEYRING,
        secret_context(MemberInvited, "invitation_token", other_id),
    )
    other_account = envelope(
        example(MemberInvited).model_copy(update={"account_id": other_id, "invitation_token": token})
    )
    await handled(db, invitation, notice, other_account)
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE deliveries SET status = 'sent', context = NULL WHERE event_id = :e"), {"e": notice.id}
        )
    closed = envelope(
        example(AccountClosed).model_copy(update={"notice_emails": ["claire@example.fr", "paul@example.fr"]})
    )
    rows = {(row.event_id, row.recipient): row for row in await handled(db, closed)}
    assert {recipient for event_id, recipient in rows if event_id == closed.id} == {
        "claire@example.fr",
        "paul@example.fr",
    }
    erased = [row for (event_id, _), row in rows.items() if event_id in (invitation.id, notice.id)]
    assert len(erased) == 2
    for row in erased:
        assert row.recipient == f"erased-{row.id}@erased.invalid" and row.context is None
    assert {row.event_id: row.status for row in erased} == {invitation.id: "failed", notice.id: "sent"}
    [kept] = [row for (event_id, _), row in rows.items() if event_id == other_account.id]
    assert (kept.recipient, kept.status) == (other_account.event.email, "pending")
