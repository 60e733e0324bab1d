"""Internal HTTP API of billing, called by the gateway (which authorises the caller first: an account's people
for its routes under /internal/accounts/{account_id}, organisers for the rest) and the notifier (documents' PDFs).
An account's order or document asked through another account's path is 404, as if it did not exist."""

import csv
import io
import logging
import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

import httpx
from litestar import Controller, Request, Response, get, post, put
from litestar.params import Parameter
from prometheus_client import Counter
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import orders as order_book
from billing import payments, wallet
from billing.invoicing import find as find_document
from billing.invoicing import mark_paid
from billing.models import documents, ledger, lots, orders, price_items
from billing.orders import LISTED, OrderError, PurchaseOrderDetails
from billing.pricing import PARIS, PriceListError, amounts, order_lines, shown_item
from billing.settings import BillingSettings
from servicekit.http import ProblemError
from servicekit.inputs import EmailInput, Name, Offset, text
from servicekit.runtime import Service

log = logging.getLogger(__name__)

Limit = Annotated[int, Parameter(ge=1, le=200)]
ActorId = Annotated[uuid.UUID | None, Parameter(header="X-Actor-Id", required=False)]
MAX_SIGNED_ORDER_BYTES = 5 * 1024 * 1024
WEBHOOK_FAILURES = Counter("billing_webhook_failures_total", "Payment webhooks refused", ["reason"])
PDF_HEADERS = {"Cache-Control": "private, no-store"}


class PriceItemInput(BaseModel):
    code: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    label_fr: text(120, min_length=1)  # type: ignore[valid-type]
    label_en: text(120, min_length=1)  # type: ignore[valid-type]
    tokens: Annotated[int, Field(ge=1, le=1000)]
    bonus_tokens: Annotated[int, Field(ge=0, le=1000)] = 0
    net_cents: Annotated[int, Field(ge=0, le=100_000_000)]
    vat_rate_bp: Annotated[int, Field(ge=0, le=10_000)] = 2000
    validity: Literal["24_months", "school_year"] = "24_months"
    purchase_order_allowed: bool = False
    active: bool = True
    position: Annotated[int, Field(ge=0, le=10_000)] = 0


class LineInput(BaseModel):
    item_id: uuid.UUID
    quantity: Annotated[int, Field(ge=1, le=100)]


class BuyerInput(BaseModel):
    institution_name: text(200, min_length=1)  # type: ignore[valid-type]
    kind: Literal["school", "company", "other"] = "other"
    identifier: text(64) | None = None  # type: ignore[valid-type]
    siret: Annotated[str, Field(pattern=r"^\d{14}$")] | None = None
    vat_number: Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9A-Z]{2,13}$")] | None = None
    address: text(500, multiline=True) = ""  # type: ignore[valid-type]
    public_buyer: bool = False


class NoticeInput(BaseModel):
    email: EmailInput
    name: Name | None = None
    language: Literal["fr", "en"] = "fr"


class OrderInput(BaseModel):
    payment_method: Literal["card", "purchase_order"]
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=20)]
    buyer: BuyerInput
    notice: NoticeInput | None = None
    buyer_order_number: text(60) | None = None  # type: ignore[valid-type]
    service_code: text(100) | None = None  # type: ignore[valid-type]
    commitment_number: text(60) | None = None  # type: ignore[valid-type]
    # purchase orders only: sessions enrolled in once the order's tokens are credited
    enrol_session_ids: Annotated[list[uuid.UUID], Field(max_length=10)] = []


class RefusalInput(BaseModel):
    reason: text(500, min_length=1, multiline=True)  # type: ignore[valid-type]


class PaymentInput(BaseModel):
    received_on: date | None = None


def _settings(service: Service) -> BillingSettings:
    settings: BillingSettings = service.settings
    return settings


def _now() -> datetime:
    return datetime.now(UTC)


def _refused(exc: OrderError | PriceListError) -> ProblemError:
    if isinstance(exc, PriceListError):
        return ProblemError(409, exc.code, "Not on the price list", exc.detail)
    return ProblemError(exc.status, exc.code, exc.detail)


def _page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _stamp(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


class PriceListApi(Controller):
    path = "/internal/price-list"

    @get("/")
    async def price_list(self, service: Service, include_inactive: bool = False) -> dict[str, Any]:
        query = select(price_items).order_by(price_items.c.position, price_items.c.code)
        if not include_inactive:
            query = query.where(price_items.c.active.is_(True))
        async with service.db.transaction() as session:
            return {"items": [shown_item(row) for row in await session.execute(query)]}

    @post("/")
    async def create(self, data: PriceItemInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            taken = await session.scalar(select(price_items.c.id).where(price_items.c.code == data.code))
            if taken is not None:
                raise ProblemError(409, "code_taken", "Code taken", "Another item of the price list has this code.")
            row = (
                await session.execute(
                    price_items.insert()
                    .values(id=uuid.uuid4(), updated_at=_now(), **data.model_dump())
                    .returning(*price_items.c)
                )
            ).one()
            return shown_item(row)

    @put("/{item_id:uuid}")
    async def change(self, item_id: uuid.UUID, data: PriceItemInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            taken = await session.scalar(
                select(price_items.c.id).where(price_items.c.code == data.code, price_items.c.id != item_id)
            )
            if taken is not None:
                raise ProblemError(409, "code_taken", "Code taken", "Another item of the price list has this code.")
            row = (
                await session.execute(
                    update(price_items)
                    .where(price_items.c.id == item_id)
                    .values(updated_at=_now(), **data.model_dump())
                    .returning(*price_items.c)
                )
            ).one_or_none()
            if row is None:
                raise ProblemError(404, "not_found", "Not found")
            return shown_item(row)


async def _invoices_of(session: AsyncSession, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await session.execute(
        select(documents.c.id, documents.c.number, documents.c.order_id, documents.c.paid_at).where(
            documents.c.order_id.in_(order_ids), documents.c.kind == "invoice"
        )
    )
    return {row.order_id: row for row in rows}


async def _shown_orders(session: AsyncSession, rows: list[Any], now: datetime | None = None) -> list[dict[str, Any]]:
    invoices = await _invoices_of(session, [row.id for row in rows])
    shown = []
    for row in rows:
        item = order_book.shown(row, invoices.get(row.id))
        if now is not None:
            item["age_seconds"] = order_book.age_seconds(row, now)
        shown.append(item)
    return shown


DOCUMENT_COLUMNS = [column for column in documents.c if column.name != "pdf"]


async def _shown_documents(session: AsyncSession, rows: list[Any]) -> list[dict[str, Any]]:
    references = dict(
        (
            await session.execute(
                select(orders.c.id, orders.c.reference).where(orders.c.id.in_({r.order_id for r in rows}))
            )
        )
        .tuples()
        .all()
    )
    numbers = dict(
        (
            await session.execute(
                select(documents.c.id, documents.c.number).where(
                    documents.c.id.in_({r.invoice_id for r in rows if r.invoice_id})
                )
            )
        )
        .tuples()
        .all()
    )
    return [
        {
            "id": str(row.id),
            "kind": row.kind,
            "number": row.number,
            "account_id": str(row.account_id),
            "order_id": str(row.order_id),
            "order_reference": references.get(row.order_id),
            "invoice_id": str(row.invoice_id) if row.invoice_id else None,
            "invoice_number": numbers.get(row.invoice_id) if row.invoice_id else None,
            "issued_at": _stamp(row.issued_at),
            "due_at": _stamp(row.due_date),
            "paid": row.paid_at is not None,
            "paid_at": _stamp(row.paid_at),
            "payment_method": row.payment_method,
            "total": amounts(row.net_cents, row.vat_rate_bp),
            "tokens": row.tokens,
            "buyer_name": row.buyer.get("institution_name"),
            "reason": row.reason,
        }
        for row in rows
    ]


def _pdf(number: str, content: bytes) -> Response[bytes]:
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"', **PDF_HEADERS},
    )


class AccountBillingApi(Controller):
    path = "/internal/accounts/{account_id:uuid}"

    @get("/wallet")
    async def wallet(self, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        now = _now()
        async with service.db.transaction() as session:
            rows = (
                await session.execute(
                    select(lots, orders.c.reference)
                    .join(orders, orders.c.id == lots.c.order_id)
                    .where(lots.c.account_id == account_id)
                    .order_by(lots.c.expires_at, lots.c.created_at)
                )
            ).all()
        live = [row for row in rows if row.expired_at is None and row.expires_at > now]
        soon = [row for row in live if row.remaining > 0 and row.expires_at <= now + wallet.EXPIRY_WARNING]
        return {
            "account_id": str(account_id),
            "balance": sum(row.remaining for row in live),
            "lots": [
                {
                    "id": str(row.id),
                    "order_id": str(row.order_id),
                    "order_reference": row.reference,
                    "tokens": row.tokens,
                    "remaining": row.remaining if row in live else 0,
                    "expires_at": _stamp(row.expires_at),
                    "created_at": _stamp(row.created_at),
                    "expired": row not in live,
                }
                for row in rows
            ],
            "expiring_soon": {
                "tokens": sum(row.remaining for row in soon),
                "expires_at": _stamp(min(row.expires_at for row in soon)) if soon else None,
            },
        }

    @get("/ledger")
    async def ledger(self, account_id: uuid.UUID, service: Service, limit: Limit = 50, offset: Offset = 0) -> Any:
        async with service.db.transaction() as session:
            total = await session.scalar(select(func.count()).where(ledger.c.account_id == account_id))
            rows = await session.execute(
                select(ledger)
                .where(ledger.c.account_id == account_id)
                .order_by(ledger.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
        items = [
            {
                "id": row.id,
                "kind": row.kind,
                "tokens": row.tokens,
                "lot_id": str(row.lot_id),
                "order_id": str(row.order_id) if row.order_id else None,
                "enrollment_id": str(row.enrollment_id) if row.enrollment_id else None,
                "session_id": str(row.session_id) if row.session_id else None,
                "balance_after": row.balance_after,
                "created_at": _stamp(row.created_at),
            }
            for row in rows
        ]
        return _page(items, total or 0, limit, offset)

    @get("/orders")
    async def orders(self, account_id: uuid.UUID, service: Service, limit: Limit = 50, offset: Offset = 0) -> Any:
        async with service.db.transaction() as session:
            total = await session.scalar(select(func.count()).where(orders.c.account_id == account_id))
            rows = (
                await session.execute(
                    select(*LISTED)
                    .where(orders.c.account_id == account_id)
                    .order_by(orders.c.created_at.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            return _page(await _shown_orders(session, rows), total or 0, limit, offset)

    @post("/orders")
    async def place(
        self, account_id: uuid.UUID, data: OrderInput, service: Service, provider: payments.PaymentProvider
    ) -> Any:
        now = _now()
        details = None
        if data.payment_method == "purchase_order":
            if not data.buyer_order_number:
                raise ProblemError(
                    422, "buyer_order_number_required", "Missing order number", field="buyer_order_number"
                )
            details = PurchaseOrderDetails(
                data.buyer_order_number,
                data.service_code or None,
                data.commitment_number or None,
                tuple(dict.fromkeys(data.enrol_session_ids)),
            )
        elif data.enrol_session_ids:
            raise ProblemError(
                422, "sessions_need_purchase_order", "Only a purchase order names sessions", field="enrol_session_ids"
            )
        try:
            async with service.db.transaction() as session:
                lines = await order_lines(session, [(line.item_id, line.quantity) for line in data.lines])
                row, events = await order_book.place(
                    session,
                    account_id=account_id,
                    payment_method=data.payment_method,
                    lines=lines,
                    buyer=data.buyer.model_dump(),
                    notice=data.notice.model_dump() if data.notice else None,
                    now=now,
                    purchase_order=details,
                )
                await service.outbox.add_all(session, events)
        except (OrderError, PriceListError) as exc:
            raise _refused(exc) from exc
        if data.payment_method == "card":
            row = await _open_checkout(service, provider, row, data, now)
        async with service.db.transaction() as session:
            return Response((await _shown_orders(session, [row]))[0], status_code=201)

    @get("/orders/{order_id:uuid}")
    async def order(self, account_id: uuid.UUID, order_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            row = (
                await session.execute(select(*LISTED).where(orders.c.id == order_id, orders.c.account_id == account_id))
            ).one_or_none()
            if row is None:
                raise ProblemError(404, "not_found", "Not found")
            return (await _shown_orders(session, [row]))[0]

    @put("/orders/{order_id:uuid}/signed-order", status_code=204)
    async def attach_signed_order(
        self, account_id: uuid.UUID, order_id: uuid.UUID, request: Request[Any, Any, Any], service: Service
    ) -> None:
        body = await request.body()
        if len(body) > MAX_SIGNED_ORDER_BYTES:
            raise ProblemError(413, "file_too_large", "File too large", "The signed order must be 5 MB at most.")
        if not body.startswith(b"%PDF-"):
            raise ProblemError(422, "not_a_pdf", "Not a PDF", "The signed order must be a PDF file.", field="file")
        async with service.db.transaction() as session:
            result = await session.execute(
                update(orders)
                .where(
                    orders.c.id == order_id,
                    orders.c.account_id == account_id,
                    orders.c.payment_method == "purchase_order",
                )
                .values(signed_order=body, updated_at=_now())
                .returning(orders.c.id)
            )
            if result.one_or_none() is None:
                raise ProblemError(404, "not_found", "Not found")

    @get("/orders/{order_id:uuid}/signed-order")
    async def signed_order(self, account_id: uuid.UUID, order_id: uuid.UUID, service: Service) -> Response[bytes]:
        async with service.db.transaction() as session:
            row = (
                await session.execute(
                    select(orders.c.reference, orders.c.signed_order).where(
                        orders.c.id == order_id, orders.c.account_id == account_id
                    )
                )
            ).one_or_none()
        if row is None or row.signed_order is None:
            raise ProblemError(404, "not_found", "Not found")
        return _pdf(f"{row.reference}-bon-de-commande", row.signed_order)

    @post("/orders/{order_id:uuid}/cancel", status_code=200)
    async def cancel(self, account_id: uuid.UUID, order_id: uuid.UUID, service: Service) -> dict[str, Any]:
        try:
            async with service.db.transaction() as session:
                row = await order_book.cancel(session, account_id, order_id, _now())
                return (await _shown_orders(session, [row]))[0]
        except OrderError as exc:
            raise _refused(exc) from exc

    @get("/documents")
    async def documents(self, account_id: uuid.UUID, service: Service, limit: Limit = 50, offset: Offset = 0) -> Any:
        async with service.db.transaction() as session:
            total = await session.scalar(select(func.count()).where(documents.c.account_id == account_id))
            rows = (
                await session.execute(
                    select(*DOCUMENT_COLUMNS)
                    .where(documents.c.account_id == account_id)
                    .order_by(documents.c.issued_at.desc(), documents.c.number.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            return _page(await _shown_documents(session, rows), total or 0, limit, offset)

    @get("/documents/{document:str}/pdf")
    async def document_pdf(self, account_id: uuid.UUID, document: str, service: Service) -> Response[bytes]:
        """`document`: its id or its number."""
        condition = documents.c.number == document[:20]
        try:
            condition = or_(condition, documents.c.id == uuid.UUID(document))
        except ValueError:
            pass
        async with service.db.transaction() as session:
            row = (
                await session.execute(
                    select(documents.c.number, documents.c.pdf).where(condition, documents.c.account_id == account_id)
                )
            ).one_or_none()
        if row is None:
            raise ProblemError(404, "not_found", "Not found")
        return _pdf(row.number, row.pdf)


async def _open_checkout(
    service: Service, provider: payments.PaymentProvider, row: Any, data: OrderInput, now: datetime
) -> Any:
    """The provider's checkout for a new card order; an order the provider would not take ends as failed."""
    settings = _settings(service)
    base = settings.public_base_url.rstrip("/")
    request = payments.CheckoutRequest(
        order_id=row.id,
        order_reference=row.reference,
        lines=[
            (
                line["label_fr"],
                line["quantity"],
                amounts(line["unit_net_cents"], line["vat_rate_bp"])["gross"]["amount_cents"],
            )
            for line in row.lines
        ],
        total_gross_cents=row.gross_cents,
        currency="EUR",
        customer_email=data.notice.email if data.notice else None,
        success_url=f"{base}/account/orders/{row.id}?paid=1",
        cancel_url=f"{base}/account/orders/{row.id}?cancelled=1",
    )
    try:
        checkout = await provider.create_checkout(request)
    except payments.CheckoutFailed as exc:
        log.warning("payment provider refused the checkout of %s: %s", row.reference, type(exc).__name__)
        async with service.db.transaction() as session:
            await session.execute(
                update(orders).where(orders.c.id == row.id).values(status="payment_failed", updated_at=_now())
            )
        raise ProblemError(
            503, "payment_provider_unavailable", "Payment unavailable", "The payment service did not answer; try again."
        ) from exc
    async with service.db.transaction() as session:
        return await order_book.attach_checkout(
            session, row.id, provider.name, checkout.provider_session_id, checkout.url, now
        )


class BackOfficeBillingApi(Controller):
    path = "/internal"

    @get("/orders")
    async def orders(
        self,
        service: Service,
        status: Literal[
            "awaiting_payment",
            "paid",
            "payment_failed",
            "expired",
            "cancelled",
            "awaiting_validation",
            "validated",
            "refused",
        ]
        | None = None,
        payment_method: Literal["card", "purchase_order"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        conditions = []
        if status:
            conditions.append(orders.c.status == status)
        if payment_method:
            conditions.append(orders.c.payment_method == payment_method)
        # pending: oldest first (the next to validate); otherwise the latest changed first (what was dealt with lately)
        order = orders.c.created_at.asc() if status == "awaiting_validation" else orders.c.updated_at.desc()
        async with service.db.transaction() as session:
            total = await session.scalar(select(func.count()).select_from(orders).where(*conditions))
            rows = (
                await session.execute(select(*LISTED).where(*conditions).order_by(order).limit(limit).offset(offset))
            ).all()
            return _page(await _shown_orders(session, rows, _now()), total or 0, limit, offset)

    @get("/orders/{order_id:uuid}/signed-order")
    async def signed_order(self, order_id: uuid.UUID, service: Service) -> Response[bytes]:
        async with service.db.transaction() as session:
            row = (
                await session.execute(select(orders.c.reference, orders.c.signed_order).where(orders.c.id == order_id))
            ).one_or_none()
        if row is None or row.signed_order is None:
            raise ProblemError(404, "not_found", "Not found")
        return _pdf(f"{row.reference}-bon-de-commande", row.signed_order)

    @post("/orders/{order_id:uuid}/validation", status_code=200)
    async def validate(self, order_id: uuid.UUID, service: Service, actor: ActorId = None) -> dict[str, Any]:
        settings = _settings(service)
        try:
            async with service.db.transaction() as session:
                row, events = await order_book.validate(session, settings, order_id, actor, _now())
                await service.outbox.add_all(session, events)
                return (await _shown_orders(session, [row]))[0]
        except OrderError as exc:
            raise _refused(exc) from exc

    @post("/orders/{order_id:uuid}/refusal", status_code=200)
    async def refuse(self, order_id: uuid.UUID, data: RefusalInput, service: Service) -> dict[str, Any]:
        try:
            async with service.db.transaction() as session:
                row, events = await order_book.refuse(session, order_id, data.reason, _now())
                await service.outbox.add_all(session, events)
                return (await _shown_orders(session, [row]))[0]
        except OrderError as exc:
            raise _refused(exc) from exc

    @get("/documents")
    async def documents(
        self,
        service: Service,
        q: text(100) | None = None,  # type: ignore[valid-type]
        kind: Literal["invoice", "credit_note"] | None = None,
        from_: Annotated[date | None, Parameter(query="from")] = None,
        to: date | None = None,
        paid: bool | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        conditions = _document_filters(q, kind, from_, to)
        if paid is not None:
            conditions.append(documents.c.paid_at.is_not(None) if paid else documents.c.paid_at.is_(None))
        async with service.db.transaction() as session:
            total = await session.scalar(
                select(func.count())
                .select_from(documents.join(orders, orders.c.id == documents.c.order_id))
                .where(*conditions)
            )
            rows = (
                await session.execute(
                    select(*DOCUMENT_COLUMNS)
                    .join(orders, orders.c.id == documents.c.order_id)
                    .where(*conditions)
                    .order_by(documents.c.issued_at.desc(), documents.c.number.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            return _page(await _shown_documents(session, rows), total or 0, limit, offset)

    @get("/documents/{document_id:uuid}/pdf")
    async def document_pdf(self, document_id: uuid.UUID, service: Service) -> Response[bytes]:
        async with service.db.transaction() as session:
            row = await find_document(session, document_id)
        if row is None:
            raise ProblemError(404, "not_found", "Not found")
        return _pdf(row.number, row.pdf)

    @post("/documents/{document_id:uuid}/payment", status_code=200)
    async def payment_received(self, document_id: uuid.UUID, data: PaymentInput, service: Service) -> dict[str, Any]:
        received = datetime.combine(data.received_on, time(12, 0), tzinfo=PARIS) if data.received_on else _now()
        async with service.db.transaction() as session:
            if not await mark_paid(session, document_id, received):
                row = await find_document(session, document_id)
                if row is None:
                    raise ProblemError(404, "not_found", "Not found")
                raise ProblemError(409, "already_paid", "Already paid", "This invoice is already marked paid.")
            row = (await session.execute(select(*DOCUMENT_COLUMNS).where(documents.c.id == document_id))).one()
            return (await _shown_documents(session, [row]))[0]

    @post("/documents/{document_id:uuid}/credit-note", status_code=201)
    async def credit_note(self, document_id: uuid.UUID, data: RefusalInput, service: Service) -> dict[str, Any]:
        settings = _settings(service)
        try:
            async with service.db.transaction() as session:
                issued, events = await order_book.credit_note(session, settings, document_id, data.reason, _now())
                await service.outbox.add_all(session, events)
                row = (
                    await session.execute(select(*DOCUMENT_COLUMNS).where(documents.c.id == issued.document_id))
                ).one()
                return (await _shown_documents(session, [row]))[0]
        except OrderError as exc:
            raise _refused(exc) from exc

    @get("/payments")
    async def payments(self, service: Service, limit: Limit = 50, offset: Offset = 0) -> Any:
        """Money received: card orders paid, and invoices by transfer marked paid."""
        received = (
            select(
                documents.c.order_id,
                orders.c.reference,
                documents.c.account_id,
                documents.c.buyer,
                documents.c.payment_method,
                documents.c.gross_cents,
                documents.c.paid_at,
                documents.c.number,
            )
            .join(orders, orders.c.id == documents.c.order_id)
            .where(documents.c.kind == "invoice", documents.c.paid_at.is_not(None))
        )
        async with service.db.transaction() as session:
            total = await session.scalar(select(func.count()).select_from(received.subquery()))
            rows = await session.execute(received.order_by(documents.c.paid_at.desc()).limit(limit).offset(offset))
        items = [
            {
                "order_id": str(row.order_id),
                "order_reference": row.reference,
                "account_id": str(row.account_id),
                "buyer_name": row.buyer.get("institution_name"),
                "method": "card" if row.payment_method == "card" else "transfer",
                "amount": {"amount_cents": row.gross_cents, "currency": "EUR"},
                "received_at": _stamp(row.paid_at),
                "document_number": row.number,
            }
            for row in rows
        ]
        return _page(items, total or 0, limit, offset)

    @get("/revenue")
    async def revenue(self, service: Service, year: Annotated[int, Parameter(ge=2000, le=2100)] | None = None) -> Any:
        year = year or _now().astimezone(PARIS).year
        month = func.to_char(func.timezone("Europe/Paris", documents.c.issued_at), "YYYY-MM")
        async with service.db.transaction() as session:
            rows = await session.execute(
                select(
                    month.label("month"),
                    documents.c.kind,
                    func.sum(documents.c.net_cents),
                    func.sum(documents.c.vat_cents),
                    func.sum(documents.c.gross_cents),
                    func.sum(documents.c.tokens),
                )
                .where(documents.c.year == year)
                .group_by(month, documents.c.kind)
            )
            figures = {f"{year}-{m:02d}": [0, 0, 0, 0] for m in range(1, 13)}
            for month_name, kind, net, vat, gross, tokens in rows:
                factor = 1 if kind == "invoice" else -1
                for index, value in enumerate((net, vat, gross, tokens)):
                    figures[month_name][index] += factor * int(value or 0)
        months = [
            {"month": name, "net_cents": f[0], "vat_cents": f[1], "gross_cents": f[2], "tokens_sold": f[3]}
            for name, f in figures.items()
        ]
        total = {key: sum(m[key] for m in months) for key in ("net_cents", "vat_cents", "gross_cents", "tokens_sold")}
        return {"year": year, "months": months, "total": total}

    @get("/documents.csv")
    async def export(
        self,
        service: Service,
        from_: Annotated[date | None, Parameter(query="from")] = None,
        to: date | None = None,
    ) -> Response[bytes]:
        conditions = _document_filters(None, None, from_, to)
        async with service.db.transaction() as session:
            rows = (
                await session.execute(
                    select(*DOCUMENT_COLUMNS)
                    .join(orders, orders.c.id == documents.c.order_id)
                    .where(*conditions)
                    .order_by(documents.c.kind, documents.c.year, documents.c.sequence)
                )
            ).all()
            numbers = dict((await session.execute(select(documents.c.id, documents.c.number))).tuples().all())
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(
            [
                "numero",
                "type",
                "date",
                "client",
                "siret",
                "montant_ht",
                "tva",
                "montant_ttc",
                "paiement",
                "paye_le",
                "facture",
            ]
        )
        for row in rows:
            sign = "" if row.kind == "invoice" else "-"
            writer.writerow(
                [
                    row.number,
                    "facture" if row.kind == "invoice" else "avoir",
                    row.issued_at.astimezone(PARIS).date().isoformat(),
                    row.buyer.get("institution_name", ""),
                    row.buyer.get("siret") or "",
                    sign + _euros(row.net_cents),
                    sign + _euros(row.vat_cents),
                    sign + _euros(row.gross_cents),
                    "carte" if row.payment_method == "card" else "virement",
                    row.paid_at.astimezone(PARIS).date().isoformat() if row.paid_at else "",
                    numbers.get(row.invoice_id, "") if row.invoice_id else "",
                ]
            )
        return Response(
            ("\ufeff" + out.getvalue()).encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="factures.csv"', **PDF_HEADERS},
        )


def _euros(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}"


def _document_filters(q: str | None, kind: str | None, start: date | None, end: date | None) -> list[Any]:
    conditions: list[Any] = []
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                documents.c.number.ilike(pattern),
                orders.c.reference.ilike(pattern),
                documents.c.buyer["institution_name"].astext.ilike(pattern),
            )
        )
    if kind:
        conditions.append(documents.c.kind == kind)
    if start:
        conditions.append(documents.c.issued_at >= datetime.combine(start, time(0), tzinfo=PARIS))
    if end:
        conditions.append(documents.c.issued_at < datetime.combine(end, time(0), tzinfo=PARIS) + _ONE_DAY)
    return conditions


_ONE_DAY = datetime(2000, 1, 2) - datetime(2000, 1, 1)


class PaymentsApi(Controller):
    path = "/internal"

    @post("/payments/webhook", status_code=200)
    async def webhook(
        self, request: Request[Any, Any, Any], service: Service, provider: payments.PaymentProvider
    ) -> dict[str, Any]:
        """A payment provider's notice, relayed raw by the gateway with its signature header."""
        body = await request.body()
        try:
            notice = provider.parse_webhook(body, request.headers.get("Stripe-Signature"), _now().timestamp())
        except payments.WebhookError as exc:
            WEBHOOK_FAILURES.labels(exc.code).inc()
            raise ProblemError(400, exc.code, "Webhook refused", str(exc)) from exc
        if notice is None:
            return {"received": True}
        settings = _settings(service)
        try:
            async with service.db.transaction() as session:
                events = await order_book.settle_payment(
                    session,
                    settings,
                    event_id=notice.event_id,
                    kind=notice.kind,
                    order_id=notice.order_id,
                    checkout_id=notice.provider_session_id,
                    amount_cents=notice.amount_cents,
                    now=_now(),
                )
                await service.outbox.add_all(session, events)
        except OrderError as exc:
            WEBHOOK_FAILURES.labels(exc.code).inc()
            if exc.code == "unknown_order":
                # genuine (signed) but not for us, e.g. another product on the same provider account: the provider
                # would retry a refusal for days to no avail
                log.warning("payment event %s names no card order of ours: ignored", notice.event_id)
                return {"received": True, "ignored": exc.code}
            raise _refused(exc) from exc
        return {"received": True}


class SandboxApi(Controller):
    """The local payment provider's side: a page of the gateway shows the checkout and posts the person's choice
    here; the sandbox then notifies the public webhook path like Stripe would (signed the same way)."""

    path = "/internal/sandbox/checkouts/{checkout_id:str}"

    @get("/")
    async def checkout(self, checkout_id: str, service: Service, provider: payments.PaymentProvider) -> dict[str, Any]:
        row = await _sandbox_order(service, provider, checkout_id)
        return {
            "checkout_id": checkout_id,
            "order_reference": row.reference,
            "amount": {"amount_cents": row.gross_cents, "currency": "EUR"},
            "status": row.status,
        }

    @post("/{decision:str}", status_code=200)
    async def decide(
        self, checkout_id: str, decision: str, service: Service, provider: payments.PaymentProvider
    ) -> dict[str, Any]:
        if decision not in ("pay", "decline"):
            raise ProblemError(404, "not_found", "Not found")
        row = await _sandbox_order(service, provider, checkout_id)
        settings = _settings(service)
        base = settings.public_base_url.rstrip("/")
        if row.status == "awaiting_payment":
            body, signature = payments.sandbox_event(
                "paid" if decision == "pay" else "failed",
                checkout_id,
                row.id,
                row.gross_cents,
                settings.webhook_secret.get_secret_value(),
                _now().timestamp(),
            )
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(
                    f"{base}/api/v1/payments/webhook",
                    content=body,
                    headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
                )
            if answer.status_code != 200:
                log.warning("sandbox webhook answered %s", answer.status_code)
                raise ProblemError(502, "webhook_failed", "Webhook failed", "The webhook was not accepted.")
        query = "paid=1" if decision == "pay" else "cancelled=1"
        return {"redirect": f"{base}/account/orders/{row.id}?{query}"}


async def _sandbox_order(service: Service, provider: payments.PaymentProvider, checkout_id: str) -> Any:
    if provider.name != "sandbox" or len(checkout_id) > 255:
        raise ProblemError(404, "not_found", "Not found")
    async with service.db.transaction() as session:
        row = (
            await session.execute(
                select(orders.c.id, orders.c.reference, orders.c.gross_cents, orders.c.status).where(
                    orders.c.provider_session_id == checkout_id
                )
            )
        ).one_or_none()
    if row is None:
        raise ProblemError(404, "not_found", "Not found")
    return row


CONTROLLERS = [PriceListApi, AccountBillingApi, BackOfficeBillingApi, PaymentsApi, SandboxApi]
