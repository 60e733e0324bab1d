"""The organisers' billing back-office, JSON API (docs/portal.md, "Back-office: billing"): the price list, the
purchase orders to validate or refuse, the invoices and credit notes (search, PDFs, a transfer received, a credit
note), the payments received, the revenue per month and the accountant's CSV export.

Organisers only: anyone else signed in gets `403 organisers_only` (gateway.backoffice.ensure_organiser, a security
event), anonymous callers 401; billing is asked nothing for them. Each call relays billing's internal back-office
API with the organiser as `X-Actor-Id`, and billing keeps its rules (`409 order_not_pending`, `already_credited`,
`code_taken`...). Lists follow billing's pages (`limit` 1 to 200, default 50) and carry the gateway's `Link`
header (gateway.pagination)."""

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post, put
from litestar.params import Parameter
from pydantic import BaseModel, Field

from gateway import i18n, pagination
from gateway.backoffice import ensure_organiser
from gateway.idempotency import IDEMPOTENT
from gateway.openapi import BEARER, problems
from gateway.upstream import Upstream, relay
from servicekit.inputs import Offset, checked_query, text

PageSize = Annotated[int, Parameter(ge=1, le=200, description="how many at most (1 to 200)")]
OrderStatus = Literal[
    "awaiting_payment", "paid", "payment_failed", "expired", "cancelled", "awaiting_validation", "validated", "refused"
]
# An item's code: what the price list and the orders name it by (e.g. `unit`, `pack-5`).
ITEM_CODE = r"^[a-z0-9][a-z0-9-]*$"
MAX_CENTS = 100_000_000  # 1,000,000.00 €: far beyond any item of the price list


class PriceItem(BaseModel):
    """An item of the price list as an organiser sets it: the price of one item before VAT, with its VAT rate."""

    code: text(40, min_length=1) = Field(pattern=ITEM_CODE, description="lower-case letters, digits and -")
    label_fr: text(120, min_length=1)
    label_en: text(120, min_length=1)
    tokens: int = Field(ge=1, le=1000, description="tokens bought with one item")
    bonus_tokens: int = Field(0, ge=0, le=1000, description="free tokens added to each item")
    net_cents: int = Field(ge=0, le=MAX_CENTS, description="price of one item before VAT (HT), in cents")
    vat_rate_bp: int = Field(ge=0, le=10_000, description="VAT rate in basis points: 2000 = 20 %")
    validity: Literal["24_months", "school_year"] = Field(
        description="24 months from the purchase, or to the end of the school year (31 August)"
    )
    purchase_order_allowed: bool = Field(description="may be paid by purchase order (else card only)")
    active: bool = Field(True, description="offered to institutions")
    position: int = Field(0, ge=0, le=10_000, description="rank in the list, smallest first")


class Refusal(BaseModel):
    reason: text(500, min_length=1, multiline=True) = Field(description="told to the institution")


class PaymentReceived(BaseModel):
    received_on: date | None = Field(None, description="the day the transfer arrived (today when absent)")


class CreditNoteRequest(BaseModel):
    reason: text(500, min_length=1, multiline=True) = Field(description="printed on the credit note")


def _query(**values: Any) -> str:
    return urlencode({name: value for name, value in values.items() if value is not None and value != ""})


def relay_page(request: Request[Any, Any, Any], answer: Any, limit: int, offset: int) -> Response[Any]:
    """A list of billing's, with the `Link` header to its next and previous pages."""
    relayed = relay(answer)
    if answer.status_code == 200 and (link := pagination.links(request, answer.json()["total"], limit, offset)):
        relayed.headers["Link"] = link
    return relayed


def relay_file(answer: Any, filename: str) -> Response[Any]:
    """A file of billing's (a PDF, the CSV export) as a download, under billing's name for it or else `filename`;
    billing's problem otherwise."""
    if answer.status_code != 200:
        return relay(answer)
    disposition = answer.headers.get("content-disposition") or f'attachment; filename="{filename}"'
    media_type = answer.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    return Response(answer.content, media_type=media_type, headers={"Content-Disposition": disposition})


def current_year() -> int:
    return datetime.now(UTC).astimezone(i18n.timezone).year


class BackOfficeBillingApi(Controller):
    path = "/api/v1/back-office"
    tags = ["back-office"]
    security = BEARER

    # -- the price list ------------------------------------------------------------------------------------------

    @get(
        "/price-list",
        summary="The price list, inactive items included unless asked otherwise (organisers)",
        responses=problems(401, 403),
    )
    async def price_list(
        self, identity: dict[str, Any], billing: Upstream, include_inactive: bool = True
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/price-list")
        query = _query(include_inactive=str(include_inactive).lower())
        return relay(await billing.call("GET", f"/internal/price-list?{query}", actor=identity["user_id"]))

    @post(
        "/price-list",
        status_code=201,
        summary="Add an item to the price list (organisers)",
        description="`409 code_taken` when another item has the code.",
        responses=problems(401, 403, 409, 413),
        **IDEMPOTENT,
    )
    async def add_item(self, data: PriceItem, identity: dict[str, Any], billing: Upstream) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/price-list")
        body = data.model_dump(mode="json")
        return relay(await billing.call("POST", "/internal/price-list", body, actor=identity["user_id"]))

    @put(
        "/price-list/{item_id:uuid}",
        summary="Change an item of the price list (organisers); orders already placed keep their own lines",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def change_item(
        self, item_id: uuid.UUID, data: PriceItem, identity: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/price-list")
        body = data.model_dump(mode="json")
        return relay(await billing.call("PUT", f"/internal/price-list/{item_id}", body, actor=identity["user_id"]))

    # -- orders and purchase orders ---------------------------------------------------------------------------------

    @get(
        "/orders",
        summary="Orders with their age in seconds (organisers): oldest first when awaiting validation, else newest",
        responses=problems(401, 403),
    )
    async def orders(
        self,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        billing: Upstream,
        status: OrderStatus | None = None,
        payment_method: Literal["card", "purchase_order"] | None = None,
        limit: PageSize = 50,
        offset: Offset = 0,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/orders")
        query = _query(status=status, payment_method=payment_method, limit=limit, offset=offset)
        answer = await billing.call("GET", f"/internal/orders?{query}", actor=identity["user_id"])
        return relay_page(request, answer, limit, offset)

    @post(
        "/orders/{order_id:uuid}/validation",
        status_code=200,
        summary="Validate a purchase order: its tokens are credited and an invoice payable by transfer issued",
        description="`409 order_not_pending` when the order is not awaiting validation.",
        responses=problems(401, 403, 404, 409),
    )
    async def validate(self, order_id: uuid.UUID, identity: dict[str, Any], billing: Upstream) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/orders")
        path = f"/internal/orders/{order_id}/validation"
        return relay(await billing.call("POST", path, {}, actor=identity["user_id"]))

    @post(
        "/orders/{order_id:uuid}/refusal",
        status_code=200,
        summary="Refuse a purchase order with a reason (told to the institution); no token is credited",
        description="`409 order_not_pending` when the order is not awaiting validation.",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def refuse(
        self, order_id: uuid.UUID, data: Refusal, identity: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/orders")
        path = f"/internal/orders/{order_id}/refusal"
        return relay(await billing.call("POST", path, data.model_dump(), actor=identity["user_id"]))

    @get(
        "/orders/{order_id:uuid}/signed-order",
        summary="The signed purchase order the institution sent, as a PDF (organisers)",
        media_type="application/pdf",
        responses=problems(401, 403, 404),
    )
    async def signed_order(self, order_id: uuid.UUID, identity: dict[str, Any], billing: Upstream) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/orders")
        answer = await billing.call("GET", f"/internal/orders/{order_id}/signed-order", actor=identity["user_id"])
        return relay_file(answer, f"bon-de-commande-{order_id}.pdf")

    # -- invoices and credit notes --------------------------------------------------------------------------------

    @get(
        "/documents",
        summary="Invoices and credit notes, newest first (organisers)",
        description="`q` matches a document's number, the institution's name or the order's reference; `from` and "
        "`to` bound the issue date (both included).",
        responses=problems(401, 403),
    )
    async def documents(
        self,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        billing: Upstream,
        q: Annotated[text(100), Parameter(description="number, institution or order reference")] | None = None,
        kind: Literal["invoice", "credit_note"] | None = None,
        issued_from: Annotated[date | None, Parameter(query="from", description="first issue day")] = None,
        issued_to: Annotated[date | None, Parameter(query="to", description="last issue day")] = None,
        limit: PageSize = 50,
        offset: Offset = 0,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/documents")
        search = checked_query("q", q, text(100))
        query = _query(q=search, kind=kind, limit=limit, offset=offset, **{"from": issued_from, "to": issued_to})
        answer = await billing.call("GET", f"/internal/documents?{query}", actor=identity["user_id"])
        return relay_page(request, answer, limit, offset)

    @get(
        "/documents/{document_id:uuid}/pdf",
        summary="An invoice or credit note as its Factur-X PDF (organisers)",
        media_type="application/pdf",
        responses=problems(401, 403, 404),
    )
    async def pdf(self, document_id: uuid.UUID, identity: dict[str, Any], billing: Upstream) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/documents")
        answer = await billing.call("GET", f"/internal/documents/{document_id}/pdf", actor=identity["user_id"])
        return relay_file(answer, f"document-{document_id}.pdf")

    @post(
        "/documents/{document_id:uuid}/payment",
        status_code=200,
        summary="Mark the transfer paying an invoice as received (organisers)",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def payment_received(
        self, document_id: uuid.UUID, data: PaymentReceived, identity: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/documents")
        path = f"/internal/documents/{document_id}/payment"
        body = data.model_dump(mode="json", exclude_none=True)
        return relay(await billing.call("POST", path, body, actor=identity["user_id"]))

    @post(
        "/documents/{document_id:uuid}/credit-note",
        status_code=201,
        summary="Issue the credit note cancelling an invoice in full (organisers)",
        description="`409 already_credited` when the invoice already has its credit note.",
        responses=problems(401, 403, 404, 409, 413),
        **IDEMPOTENT,
    )
    async def credit_note(
        self, document_id: uuid.UUID, data: CreditNoteRequest, identity: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/documents")
        path = f"/internal/documents/{document_id}/credit-note"
        return relay(await billing.call("POST", path, data.model_dump(), actor=identity["user_id"]))

    @get(
        "/documents.csv",
        summary="The invoices and credit notes issued between two days, for the accountant (organisers)",
        description="UTF-8 with a BOM, `;` separated, French decimal commas, one line per document under a header "
        "line: numero;type (facture | avoir);date;client;siret;montant_ht;tva;montant_ttc (negative for a credit "
        "note);paiement (carte | virement);paye_le;facture (the invoice a credit note corrects).",
        media_type="text/csv",
        responses=problems(401, 403),
    )
    async def export(
        self,
        identity: dict[str, Any],
        billing: Upstream,
        issued_from: Annotated[date | None, Parameter(query="from", description="first issue day")] = None,
        issued_to: Annotated[date | None, Parameter(query="to", description="last issue day")] = None,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/documents.csv")
        return await export_documents(billing, identity["user_id"], issued_from, issued_to)

    # -- money received and earned --------------------------------------------------------------------------------

    @get(
        "/payments",
        summary="Payments received, by card and by transfer, newest first (organisers)",
        responses=problems(401, 403),
    )
    async def payments(
        self,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        billing: Upstream,
        limit: PageSize = 50,
        offset: Offset = 0,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/payments")
        query = _query(limit=limit, offset=offset)
        answer = await billing.call("GET", f"/internal/payments?{query}", actor=identity["user_id"])
        return relay_page(request, answer, limit, offset)

    @get(
        "/revenue",
        summary="Revenue of a year per month of issue: invoices minus credit notes (organisers)",
        description="`year`: the current year (Paris time) when absent.",
        responses=problems(401, 403),
    )
    async def revenue(
        self,
        identity: dict[str, Any],
        billing: Upstream,
        year: Annotated[int | None, Parameter(ge=2000, le=2100, description="e.g. 2026")] = None,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/revenue")
        query = _query(year=year or current_year())
        return relay(await billing.call("GET", f"/internal/revenue?{query}", actor=identity["user_id"]))


async def export_documents(
    billing: Upstream, actor: str, issued_from: date | None, issued_to: date | None
) -> Response[Any]:
    """Billing's CSV of the documents issued from one day to another (the API's and the back-office page's)."""
    query = _query(**{"from": issued_from, "to": issued_to})
    answer = await billing.call("GET", f"/internal/documents.csv?{query}", actor=actor)
    span = "-".join(str(day) for day in (issued_from, issued_to) if day) or "all"
    return relay_file(answer, f"visiopass-documents-{span}.csv")
