"""Orders of tokens: by card (through the payment provider) or by purchase order (validated by an organiser).

Card: awaiting_payment -> paid (the provider's webhook) | payment_failed | expired | cancelled (abandoned by the
person). Purchase order: awaiting_validation -> validated | refused. An order is fulfilled once, when it becomes
paid or validated, in the transaction that changes its status (a row lock on the order): its lots are credited
(TokenPurchased, one lot per line, each with its line's validity) and its invoice is issued (InvoiceIssued).
A purchase order may name up to 10 sessions (`enrol_session_ids`): its last TokenPurchased carries them, with the
order's notice, and enrollment requests those enrolments once the tokens are there.
A paid webhook for an order already paid, a second validation, a refusal after validation: nothing happens.

The webhook is idempotent on the provider's event id (webhook_events' primary key, written in the same
transaction as the effects); its amount must equal the order's, or nothing is credited."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import invoicing, wallet
from billing.models import documents, orders, wallets, webhook_events
from billing.pricing import OrderLine, amounts, expiry_of
from billing.settings import BillingSettings
from contracts import Event
from contracts.events.billing import Notice, PurchaseOrderReceived, PurchaseOrderRefused, TokenPurchased

# What lists read of an order: everything but the signed purchase order's PDF, which is fetched on its own.
LISTED = [column for column in orders.c if column.name != "signed_order"] + [
    orders.c.signed_order.is_not(None).label("has_signed_order")
]


class OrderError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class PurchaseOrderDetails:
    buyer_order_number: str
    service_code: str | None
    commitment_number: str | None
    enrol_session_ids: tuple[uuid.UUID, ...] = ()  # sessions to enrol in once the tokens are credited


async def place(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    payment_method: str,
    lines: list[OrderLine],
    buyer: dict[str, Any],
    notice: dict[str, Any] | None,
    now: datetime,
    purchase_order: PurchaseOrderDetails | None = None,
) -> tuple[Any, list[Event]]:
    """A new order (card: awaiting its payment; purchase order: awaiting validation) and its events."""
    closed = await session.scalar(select(wallets.c.closed_at).where(wallets.c.account_id == account_id))
    if closed is not None:
        raise OrderError(409, "account_closed", "This account is closed.")
    if payment_method == "purchase_order":
        if not all(line.purchase_order_allowed for line in lines):
            raise OrderError(409, "purchase_order_not_allowed", "An item of this order can only be paid by card.")
        assert purchase_order is not None
        if buyer.get("public_buyer") and not purchase_order.service_code:
            raise OrderError(422, "service_code_required", "Public buyers give their service code (Chorus Pro).")
    net = sum(line.net_cents for line in lines)
    rate = lines[0].vat_rate_bp
    total = amounts(net, rate)
    _, _, reference = await invoicing.next_number(session, "order", now)
    order_id = uuid.uuid4()
    await wallet.ensure_wallet(session, account_id)
    row = (
        await session.execute(
            insert(orders)
            .values(
                id=order_id,
                reference=reference,
                account_id=account_id,
                status="awaiting_payment" if payment_method == "card" else "awaiting_validation",
                payment_method=payment_method,
                lines=[line.as_json() for line in lines],
                net_cents=net,
                vat_cents=total["vat"]["amount_cents"],
                gross_cents=total["gross"]["amount_cents"],
                vat_rate_bp=rate,
                tokens=sum(line.all_tokens for line in lines),
                bonus_tokens=sum(line.bonus_tokens * line.quantity for line in lines),
                buyer=buyer,
                notice=notice,
                buyer_order_number=purchase_order.buyer_order_number if purchase_order else None,
                service_code=purchase_order.service_code if purchase_order else None,
                commitment_number=purchase_order.commitment_number if purchase_order else None,
                enrol_session_ids=list(purchase_order.enrol_session_ids) if purchase_order else [],
                created_at=now,
                updated_at=now,
            )
            .returning(*LISTED)
        )
    ).one()
    events: list[Event] = []
    if payment_method == "purchase_order":
        assert purchase_order is not None
        events.append(
            PurchaseOrderReceived(
                account_id=account_id,
                order_id=order_id,
                reference=reference,
                buyer_order_number=purchase_order.buyer_order_number,
                institution_name=buyer["institution_name"],
                tokens=row.tokens,
                amounts=total,  # type: ignore[arg-type]
                received_at=now,
                notice=Notice.model_validate(notice) if notice else None,
            )
        )
    return row, events


async def lock(session: AsyncSession, order_id: uuid.UUID) -> Any:
    return (
        await session.execute(select(*LISTED).where(orders.c.id == order_id).with_for_update(of=orders))
    ).one_or_none()


async def _set(session: AsyncSession, order_id: uuid.UUID, **values: Any) -> Any:
    return (
        await session.execute(update(orders).where(orders.c.id == order_id).values(**values).returning(*LISTED))
    ).one()


async def attach_checkout(
    session: AsyncSession, order_id: uuid.UUID, provider: str, checkout_id: str, url: str, now: datetime
) -> Any:
    return await _set(
        session, order_id, provider=provider, provider_session_id=checkout_id, checkout_url=url, updated_at=now
    )


async def _fulfil(
    session: AsyncSession, settings: BillingSettings, order: Any, now: datetime, *, paid: bool
) -> list[Event]:
    """Credit the order's lots and issue its invoice (the order row is locked and already marked)."""
    events: list[Event] = []
    for line in (OrderLine.from_json(value) for value in order.lines):
        expires_at = expiry_of(line.validity, now)
        lot_id, after = await wallet.credit(
            session,
            account_id=order.account_id,
            order_id=order.id,
            tokens=line.all_tokens,
            expires_at=expires_at,
            now=now,
            operation_key=f"order:{order.id}:{line.item_id}",
        )
        events.append(
            TokenPurchased(
                account_id=order.account_id,
                order_id=order.id,
                lot_id=lot_id,
                tokens=line.tokens * line.quantity,
                bonus_tokens=line.bonus_tokens * line.quantity,
                amounts=amounts(line.net_cents, line.vat_rate_bp),  # type: ignore[arg-type]
                payment_method=order.payment_method,
                expires_at=expires_at,
                balance_after=after,
            )
        )
    if order.enrol_session_ids and events:
        # the last credit names the sessions: every token of the order is there when enrollment reads it
        events[-1] = events[-1].model_copy(
            update={"enrol_session_ids": list(order.enrol_session_ids), "notice": _notice(order)}
        )
    issued = await invoicing.issue_invoice(session, settings, order, now, paid=paid)
    return events + issued.events


async def settle_payment(
    session: AsyncSession,
    settings: BillingSettings,
    *,
    event_id: str,
    kind: str,
    order_id: uuid.UUID | None,
    checkout_id: str | None,
    amount_cents: int | None,
    now: datetime,
) -> list[Event]:
    """Apply a verified payment notice of the provider, once per provider event id."""
    recorded = await session.execute(
        pg_insert(webhook_events)
        .values(event_id=event_id, kind=kind, order_id=order_id, received_at=now)
        .on_conflict_do_nothing()
        .returning(webhook_events.c.event_id)
    )
    if recorded.one_or_none() is None:
        return []  # replayed: already applied
    order = await lock(session, order_id) if order_id else None
    if order is None and checkout_id:
        found = await session.scalar(select(orders.c.id).where(orders.c.provider_session_id == checkout_id))
        order = await lock(session, found) if found else None
    if order is None or order.payment_method != "card":
        raise OrderError(400, "unknown_order", "The payment names no card order of ours.")
    if checkout_id and order.provider_session_id and checkout_id != order.provider_session_id:
        raise OrderError(400, "checkout_mismatch", "The payment's checkout is not the order's.")
    if kind == "paid":
        if order.status == "paid":
            return []
        if amount_cents is not None and amount_cents != order.gross_cents:
            raise OrderError(400, "amount_mismatch", "The amount paid is not the order's.")
        order = await _set(session, order.id, status="paid", paid_at=now, updated_at=now)
        return await _fulfil(session, settings, order, now, paid=True)
    if order.status == "awaiting_payment":
        await _set(session, order.id, status="payment_failed" if kind == "failed" else "expired", updated_at=now)
    return []


async def cancel(session: AsyncSession, account_id: uuid.UUID, order_id: uuid.UUID, now: datetime) -> Any:
    """The person gave up paying: the order ends, and a later payment of it would still be honoured."""
    order = await lock(session, order_id)
    if order is None or order.account_id != account_id:
        raise OrderError(404, "not_found", "No such order.")
    if order.status != "awaiting_payment":
        raise OrderError(409, "order_not_pending", "Only an order awaiting its payment can be abandoned.")
    return await _set(session, order_id, status="cancelled", updated_at=now)


async def validate(
    session: AsyncSession, settings: BillingSettings, order_id: uuid.UUID, actor: uuid.UUID | None, now: datetime
) -> tuple[Any, list[Event]]:
    order = await lock(session, order_id)
    if order is None:
        raise OrderError(404, "not_found", "No such order.")
    if order.status != "awaiting_validation":
        raise OrderError(409, "order_not_pending", "This purchase order is not awaiting validation.")
    order = await _set(session, order_id, status="validated", validated_at=now, validated_by=actor, updated_at=now)
    return order, await _fulfil(session, settings, order, now, paid=False)


async def refuse(session: AsyncSession, order_id: uuid.UUID, reason: str, now: datetime) -> tuple[Any, list[Event]]:
    order = await lock(session, order_id)
    if order is None:
        raise OrderError(404, "not_found", "No such order.")
    if order.status != "awaiting_validation":
        raise OrderError(409, "order_not_pending", "This purchase order is not awaiting validation.")
    order = await _set(session, order_id, status="refused", refused_at=now, refusal_reason=reason, updated_at=now)
    event = PurchaseOrderRefused(
        account_id=order.account_id,
        order_id=order.id,
        reference=order.reference,
        reason=reason,
        refused_at=now,
        notice=_notice(order),
    )
    return order, [event]


async def credit_note(
    session: AsyncSession, settings: BillingSettings, document_id: uuid.UUID, reason: str, now: datetime
) -> tuple[invoicing.Issued, list[Event]]:
    """Cancel an invoice in full with a credit note; the order's unused tokens are withdrawn."""
    invoice = (
        await session.execute(select(documents).where(documents.c.id == document_id).with_for_update())
    ).one_or_none()
    if invoice is None or invoice.kind != "invoice":
        raise OrderError(404, "not_found", "No such invoice.")
    existing = await session.scalar(
        select(documents.c.id).where(documents.c.invoice_id == document_id, documents.c.kind == "credit_note")
    )
    if existing is not None:
        raise OrderError(409, "already_credited", "This invoice already has its credit note.")
    order = await lock(session, invoice.order_id)
    issued = await invoicing.issue_credit_note(session, settings, invoice, order, reason, now)
    withdrawn = await wallet.close_lots_of_order(
        session, invoice.account_id, invoice.order_id, f"credit-note:{issued.document_id}", now
    )
    return issued, issued.events + withdrawn


def _notice(order: Any) -> Notice | None:
    return Notice.model_validate(order.notice) if order.notice else None


def age_seconds(order: Any, now: datetime) -> int:
    return max(0, int((now - order.created_at).total_seconds()))


def shown(order: Any, invoice: Any = None) -> dict[str, Any]:
    """An order as the API shows it (billing-spec: Order)."""
    lines = [OrderLine.from_json(value) for value in order.lines]
    stamp = lambda value: value.isoformat() if value else None  # noqa: E731
    return {
        "id": str(order.id),
        "reference": order.reference,
        "account_id": str(order.account_id),
        "status": order.status,
        "payment_method": order.payment_method,
        "lines": [line.shown() for line in lines],
        "total": amounts(order.net_cents, order.vat_rate_bp),
        "tokens": order.tokens,
        "bonus_tokens": order.bonus_tokens,
        "buyer": order.buyer,
        "buyer_order_number": order.buyer_order_number,
        "service_code": order.service_code,
        "commitment_number": order.commitment_number,
        "enrol_session_ids": [str(session_id) for session_id in order.enrol_session_ids],
        "has_signed_order": bool(order.has_signed_order),
        "checkout_url": order.checkout_url if order.status == "awaiting_payment" else None,
        "created_at": stamp(order.created_at),
        "paid_at": stamp(order.paid_at),
        "validated_at": stamp(order.validated_at),
        "refused_at": stamp(order.refused_at),
        "refusal_reason": order.refusal_reason,
        "payment_received_at": stamp(invoice.paid_at) if invoice is not None else None,
        "invoice": {"id": str(invoice.id), "number": invoice.number} if invoice is not None else None,
    }
