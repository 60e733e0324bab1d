"""Orders, payments and documents on a real PostgreSQL (billing.orders, billing.invoicing)."""

import asyncio
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select, text, update

from billing import orders, wallet
from billing.models import documents, price_items
from billing.models import orders as orders_table
from billing.orders import OrderError, PurchaseOrderDetails
from billing.pricing import order_lines
from billing.settings import BillingSettings
from contracts.events.billing import (
    CreditNoteIssued,
    InvoiceIssued,
    PurchaseOrderReceived,
    TokenPurchased,
    TokensExpired,
)
from servicekit.db import Database
from servicekit.migrations import upgrade

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SETTINGS = BillingSettings()
COMPANY = {
    "institution_name": "Formations Dupont SARL",
    "kind": "company",
    "siret": "73282932000074",
    "vat_number": "FR44732829320",
    "address": "3 rue des Lilas\n69003 Lyon",
    "public_buyer": False,
}
SCHOOL = {
    "institution_name": "Lycée Jean Moulin",
    "kind": "school",
    "address": "1 place de la République\n75003 Paris",
    "public_buyer": True,
}
NOTICE = {"email": "claire@example.fr", "name": "Claire", "language": "fr"}


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=20)
    await upgrade(database, "billing")
    yield database
    await database.dispose()


async def item(db: Database, code: str) -> uuid.UUID:
    async with db.transaction() as session:
        return await session.scalar(select(price_items.c.id).where(price_items.c.code == code))


async def verified_account(db: Database) -> uuid.UUID:
    account_id = uuid.uuid4()
    async with db.transaction() as session:
        await wallet.ensure_wallet(session, account_id)
        await session.execute(text("UPDATE wallets SET verified_at = now() WHERE account_id = :a"), {"a": account_id})
    return account_id


async def card_order(db: Database, account_id: uuid.UUID, code: str = "pack-5", quantity: int = 1, buyer=COMPANY):  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        lines = await order_lines(session, [(await item(db, code), quantity)])
        row, _ = await orders.place(
            session, account_id=account_id, payment_method="card", lines=lines, buyer=buyer, notice=NOTICE, now=NOW
        )
        await orders.attach_checkout(session, row.id, "sandbox", f"cs_test_{row.id.hex}", "http://pay", NOW)
    return row


async def pay(db: Database, order, event_id: str | None = None, amount: int | None = None):  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        return await orders.settle_payment(
            session,
            SETTINGS,
            event_id=event_id or f"evt_{uuid.uuid4().hex}",
            kind="paid",
            order_id=order.id,
            checkout_id=f"cs_test_{order.id.hex}",
            amount_cents=order.gross_cents if amount is None else amount,
            now=NOW,
        )


async def test_a_paid_card_order_credits_its_lot_and_issues_a_paid_invoice(db: Database) -> None:
    account = await verified_account(db)
    order = await card_order(db, account)
    assert (order.net_cents, order.vat_cents, order.gross_cents, order.tokens) == (30000, 6000, 36000, 6)
    events = await pay(db, order)
    purchased, invoice = events
    assert isinstance(purchased, TokenPurchased) and purchased.tokens == 5 and purchased.bonus_tokens == 1
    assert purchased.balance_after == 6 and purchased.expires_at == NOW.replace(year=2028)
    assert isinstance(invoice, InvoiceIssued) and invoice.paid and invoice.number == "F2026-000001"
    assert invoice.amounts.gross.amount_cents == 36000 and invoice.notice is not None
    async with db.transaction() as session:
        assert await wallet.balance(session, account, NOW) == 6
        pdf = await session.scalar(select(documents.c.pdf).where(documents.c.id == invoice.invoice_id))
    words = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "F2026-000001" in words and "Formations Dupont SARL" in words and "73282932000074" in words


async def test_a_replayed_or_mismatched_payment_changes_nothing(db: Database) -> None:
    account = await verified_account(db)
    order = await card_order(db, account)
    with pytest.raises(OrderError) as refused:
        await pay(db, order, amount=100)
    assert refused.value.code == "amount_mismatch"
    assert len(await pay(db, order, event_id="evt_once")) == 2
    assert await pay(db, order, event_id="evt_once") == []  # the same event again
    assert await pay(db, order) == []  # another event saying the same: already paid
    async with db.transaction() as session:
        assert await wallet.balance(session, account, NOW) == 6
        assert await session.scalar(select(text("count(*)")).select_from(documents)) == 1


async def test_failed_or_expired_payments_leave_no_tokens(db: Database) -> None:
    account = await verified_account(db)
    for kind, status in (("failed", "payment_failed"), ("expired", "expired")):
        order = await card_order(db, account)
        async with db.transaction() as session:
            assert (
                await orders.settle_payment(
                    session,
                    SETTINGS,
                    event_id=f"evt_{kind}",
                    kind=kind,
                    order_id=order.id,
                    checkout_id=None,
                    amount_cents=None,
                    now=NOW,
                )
                == []
            )
            assert await session.scalar(select(orders_table.c.status).where(orders_table.c.id == order.id)) == status
    async with db.transaction() as session:
        assert await wallet.balance(session, account, NOW) == 0


async def test_invoice_numbers_are_gap_free_and_unique_under_thirty_concurrent_purchases(db: Database) -> None:
    account = await verified_account(db)
    placed = [await card_order(db, account, code="unit") for _ in range(30)]
    outcomes = await asyncio.gather(*(pay(db, order) for order in placed))
    numbers = sorted(event.number for outcome in outcomes for event in outcome if isinstance(event, InvoiceIssued))
    assert numbers == [f"F2026-{n:06d}" for n in range(1, 31)]


async def test_a_price_change_never_alters_a_placed_order(db: Database) -> None:
    account = await verified_account(db)
    order = await card_order(db, account, code="unit", quantity=2)
    async with db.transaction() as session:
        await session.execute(update(price_items).where(price_items.c.code == "unit").values(net_cents=9900))
    await pay(db, order)
    async with db.transaction() as session:
        gross = await session.scalar(select(documents.c.gross_cents).where(documents.c.order_id == order.id))
    assert gross == 14400


async def test_a_purchase_order_is_validated_once_into_tokens_and_an_invoice_payable_by_transfer(db: Database) -> None:
    account = await verified_account(db)
    async with db.transaction() as session:
        lines = await order_lines(session, [(await item(db, "unit"), 10)])
        row, (received,) = await orders.place(
            session,
            account_id=account,
            payment_method="purchase_order",
            lines=lines,
            buyer=SCHOOL,
            notice=NOTICE,
            now=NOW,
            purchase_order=PurchaseOrderDetails("BC-117", "SERV-42", "ENG-9"),
        )
    assert isinstance(received, PurchaseOrderReceived) and received.buyer_order_number == "BC-117"
    async with db.transaction() as session:
        validated, events = await orders.validate(session, SETTINGS, row.id, None, NOW)
    assert validated.status == "validated"
    invoice = events[-1]
    assert isinstance(invoice, InvoiceIssued) and not invoice.paid and invoice.due_at is not None
    assert invoice.payment_method == "purchase_order"
    with pytest.raises(OrderError) as again:
        async with db.transaction() as session:
            await orders.validate(session, SETTINGS, row.id, None, NOW)
    assert again.value.code == "order_not_pending"
    async with db.transaction() as session:
        assert await wallet.balance(session, account, NOW) == 10
        pdf = await session.scalar(select(documents.c.pdf).where(documents.c.id == invoice.invoice_id))
    words = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "SERV-42" in words and "BC-117" in words


async def validated_purchase_order(
    db: Database, account: uuid.UUID, sessions: list[uuid.UUID]
) -> tuple[Any, list[Any]]:
    """A purchase order of two unit tokens naming `sessions`, placed then validated: (the order, its events)."""
    async with db.transaction() as session:
        lines = await order_lines(session, [(await item(db, "unit"), 2)])
        details = PurchaseOrderDetails("BC-118", "SERV-42", None, tuple(sessions))
        row, _ = await orders.place(
            session,
            account_id=account,
            payment_method="purchase_order",
            lines=lines,
            buyer=SCHOOL,
            notice=NOTICE,
            now=NOW,
            purchase_order=details,
        )
        _, events = await orders.validate(session, SETTINGS, row.id, None, NOW)
    return row, events


async def test_a_purchase_order_naming_sessions_names_them_in_its_last_credit_with_its_notice(db: Database) -> None:
    account, sessions = await verified_account(db), [uuid.uuid4(), uuid.uuid4()]
    row, events = await validated_purchase_order(db, account, sessions)
    assert orders.shown(row)["enrol_session_ids"] == [str(value) for value in sessions]
    (credit,) = [event for event in events if isinstance(event, TokenPurchased)]
    assert credit.enrol_session_ids == sessions and credit.notice is not None
    assert credit.notice.email == NOTICE["email"]
    _, events = await validated_purchase_order(db, account, [])  # naming none: no session, and no notice
    assert [(e.enrol_session_ids, e.notice) for e in events if isinstance(e, TokenPurchased)] == [([], None)]


async def test_bundles_cannot_be_paid_by_purchase_order_and_public_buyers_give_their_service_code(db: Database) -> None:
    account = await verified_account(db)
    async with db.transaction() as session:
        bundle = await order_lines(session, [(await item(db, "pack-5"), 1)])
        unit = await order_lines(session, [(await item(db, "unit"), 1)])
    for lines, details, code in (
        (bundle, PurchaseOrderDetails("BC-1", "S", None), "purchase_order_not_allowed"),
        (unit, PurchaseOrderDetails("BC-1", None, None), "service_code_required"),
    ):
        with pytest.raises(OrderError) as refused:
            async with db.transaction() as session:
                await orders.place(
                    session,
                    account_id=account,
                    payment_method="purchase_order",
                    lines=lines,
                    buyer=SCHOOL,
                    notice=NOTICE,
                    now=NOW,
                    purchase_order=details,
                )
        assert refused.value.code == code


async def test_a_credit_note_references_its_invoice_and_withdraws_the_unused_tokens(db: Database) -> None:
    account = await verified_account(db)
    order = await card_order(db, account)
    invoice = (await pay(db, order))[-1]
    async with db.transaction() as session:
        await wallet.debit_for_enrollment(
            session, account_id=account, enrollment_id=uuid.uuid4(), session_id=uuid.uuid4(), tokens=1, now=NOW
        )
    async with db.transaction() as session:
        issued, events = await orders.credit_note(session, SETTINGS, invoice.invoice_id, "Commande annulée", NOW)
    note, withdrawn = events
    assert isinstance(note, CreditNoteIssued) and note.number == "A2026-000001"
    assert note.invoice_id == invoice.invoice_id and note.invoice_number == invoice.number
    assert isinstance(withdrawn, TokensExpired) and withdrawn.tokens == 5 and withdrawn.balance_after == 0
    with pytest.raises(OrderError):
        async with db.transaction() as session:
            await orders.credit_note(session, SETTINGS, invoice.invoice_id, "Encore", NOW)
    async with db.transaction() as session:
        pdf = await session.scalar(select(documents.c.pdf).where(documents.c.id == issued.document_id))
    words = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "A2026-000001" in words and invoice.number in words
