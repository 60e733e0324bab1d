"""The public API of billing (docs/api.md, "Tokens, orders and invoices"): the price list, an account's wallet,
ledger, orders and documents (invoices and credit notes, their PDF), buying by card or purchase order, and the
payment provider's webhook.

Who may do what is decided here, before billing is asked (billing trusts the gateway and knows nobody's roles):
- reading an account's tokens, orders and documents: its members and managers, and organisers (of an account
  that exists); anyone else gets 404, whatever they ask for (a real, guessed or unknown order or document), so
  that nobody learns what another institution bought;
- buying, sending a signed order, abandoning a payment: the account's managers; its members and organisers 403,
  anyone else 404 (the convention of every manager-only route: `gateway.api.ensure_manager`).
Billing then answers only for that account: an order or document id of another account is not found there.

An order's `buyer` is the institution as accounts knows it (its profile: name, kind, identifier, billing or
postal address, VAT number), never what the client sends, and its `notice` (who is mailed the receipt) is the
caller. The webhook is public: it carries no credential, only the provider's signature, which billing checks;
the gateway passes the body on byte for byte (the signature covers them)."""

import re
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from pydantic import BaseModel, Field

from gateway import pagination
from gateway.api import MAX_UPLOAD_BYTES, ensure_manager, file_too_large
from gateway.idempotency import IDEMPOTENT
from gateway.openapi import SESSION_OR_API_TOKEN, problems
from gateway.upstream import Upstream, relay
from servicekit.http import ProblemError
from servicekit.inputs import text
from servicekit.logs import security_event

BILLING_PAGE = 200  # billing's lists give at most this many a call; a larger page is asked for in several calls
PDF = "application/pdf"
# A document's id (a UUID) or its number ("F2026-000123"): anything else is no document of anyone's.
DOCUMENT_KEY = re.compile(r"[A-Za-z0-9-]{1,40}")
SIRET = re.compile(r"\d{14}")
MAX_WEBHOOK_BYTES = 512 * 1024  # a provider's event is a few kilobytes


class OrderLineInput(BaseModel):
    item_id: uuid.UUID = Field(description="an item of the price list (`GET /api/v1/price-list`)")
    quantity: int = Field(ge=1, le=100)


class CardOrder(BaseModel):
    lines: list[OrderLineInput] = Field(min_length=1, max_length=20)


class PurchaseOrder(BaseModel):
    lines: list[OrderLineInput] = Field(
        min_length=1, max_length=20, description="items that allow a purchase order (`purchase_order_allowed`)"
    )
    buyer_order_number: text(60, min_length=1) = Field(description="the institution's own order number")
    service_code: text(100) | None = Field(None, description="Chorus Pro service code; required of public buyers")
    commitment_number: text(60) | None = Field(None, description="the legal commitment number (numéro d'engagement)")
    enrol_session_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=10,
        description="up to 10 sessions (`GET /api/v1/planning`) to enrol in automatically once the order is validated "
        "and its tokens credited; a refusal then (session full, enrolments closed, ...) is mailed like any other",
    )


# -- who may see or do what -------------------------------------------------------------------------------------


def _not_found(identity: dict[str, Any], account_id: uuid.UUID) -> ProblemError:
    security_event("access_denied", outcome="not_found", user_id=identity.get("user_id"), account_id=account_id)
    return ProblemError(404, "not_found", "Not found")


async def ensure_reader(identity: dict[str, Any], account_id: uuid.UUID, accounts: Upstream) -> None:
    """The caller may read the account's billing: one of its people, or an organiser if the account exists
    (accounts says so); 404 for anyone else."""
    if str(account_id) in identity.get("memberships", {}):
        return
    if identity.get("is_organiser"):
        answer = await accounts.call("GET", f"/internal/accounts/{account_id}/profile", actor=identity["user_id"])
        if answer.status_code == 200:
            return
        if answer.status_code >= 500:
            relay(answer)  # raises: accounts failed, which says nothing of the account
    raise _not_found(identity, account_id)


def buyer_of(profile: dict[str, Any]) -> dict[str, Any]:
    """The buyer printed on the order and its invoice, from the institution's profile in accounts. A school is
    a public buyer (its invoices go through Chorus Pro, with a service code); its identifier is its UAI. A
    company's identifier is its SIRET."""
    identifier = profile.get("identifier") or None
    address = profile.get("billing_address") or profile.get("postal_address") or profile.get("city") or ""
    return {
        "institution_name": profile["name"],
        "kind": profile["kind"],
        "identifier": identifier,
        "siret": identifier if identifier and SIRET.fullmatch(identifier) else None,
        "vat_number": profile.get("vat_number") or None,
        "address": address,
        "public_buyer": profile["kind"] == "school",
    }


def notice_of(identity: dict[str, Any]) -> dict[str, Any]:
    """Who is mailed about the order: the person who placed it."""
    return {"email": identity["email"], "name": identity["name"], "language": identity.get("language") or "fr"}


async def institution_profile(accounts: Upstream, account_id: uuid.UUID, actor: str) -> dict[str, Any]:
    answer = await accounts.call("GET", f"/internal/accounts/{account_id}/profile", actor=actor)
    if answer.status_code != 200:
        relay(answer)  # raises on a failure
        raise ProblemError(404, "not_found", "Not found")
    profile: dict[str, Any] = answer.json()
    return profile


async def place_order(
    billing: Upstream,
    accounts: Upstream,
    identity: dict[str, Any],
    account_id: uuid.UUID,
    order: dict[str, Any],
) -> Any:
    """Billing's answer to placing `order` (payment method, lines and, for a purchase order, its numbers) for the
    account, with the buyer from accounts and the caller as the person to mail (the caller manages the account)."""
    profile = await institution_profile(accounts, account_id, identity["user_id"])
    body = {**order, "buyer": buyer_of(profile), "notice": notice_of(identity)}
    return await billing.call("POST", f"/internal/accounts/{account_id}/orders", body, actor=identity["user_id"])


async def billing_list(
    billing: Upstream, path: str, limit: int, offset: int, actor: str
) -> tuple[list[Any], int] | Response[Any]:
    """(items, total) of one page of a billing list, asked in calls of at most BILLING_PAGE; or billing's refusal."""
    items: list[Any] = []
    total = 0
    while True:
        size = min(BILLING_PAGE, limit - len(items))
        answer = await billing.call("GET", f"{path}?limit={size}&offset={offset + len(items)}", actor=actor)
        if answer.status_code != 200:
            return relay(answer)
        page = answer.json()
        items += page["items"]
        total = page["total"]
        if len(items) >= limit or not page["items"] or offset + len(items) >= total:
            return items, total


def document_key(value: str, identity: dict[str, Any], account_id: uuid.UUID) -> str:
    if not DOCUMENT_KEY.fullmatch(value):
        raise _not_found(identity, account_id)
    return value


def pdf_answer(answer: Any, name: str) -> Response[Any]:
    """Billing's PDF as a download (its problem otherwise)."""
    if answer.status_code != 200:
        return relay(answer)
    disposition = answer.headers.get("content-disposition", "")
    if not disposition.startswith("attachment;"):  # billing's name for it if it gives one, else ours
        disposition = f'attachment; filename="{name}.pdf"'
    return Response(answer.content, media_type=PDF, headers={"Content-Disposition": disposition})


# -- routes -------------------------------------------------------------------------------------------------------


class PriceListApi(Controller):
    path = "/api/v1/price-list"
    tags = ["billing"]

    @get(
        "/",
        summary="The price list: the unit token and the bundles, their price with VAT, validity and payment methods",
        description="Public. Amounts are integer cents: `price` is one item's `net` (HT), `vat` (TVA), `gross` "
        "(TTC) and `vat_rate_bp` (2000 = 20 %). `validity`: `24_months` from purchase, or `school_year` (to the "
        "next 31 August). `purchase_order_allowed`: false for items paid by card only.",
        responses=problems(),
    )
    async def price_list(self, billing: Upstream) -> Response[Any]:
        return relay(await billing.call("GET", "/internal/price-list"))


class WalletApi(Controller):
    """An account's tokens, orders and documents: its people read them, its managers buy."""

    path = "/api/v1/accounts/{account_id:uuid}"
    tags = ["billing"]

    @get(
        "/wallet",
        summary="The account's token balance and its lots, each with its expiry",
        description="`balance` is the sum of the live lots' `remaining` tokens; `expiring_soon` the tokens of lots "
        "expiring within 30 days and the first such expiry.",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def wallet(
        self, account_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream, billing: Upstream
    ) -> Response[Any]:
        await ensure_reader(identity, account_id, accounts)
        return relay(await billing.call("GET", f"/internal/accounts/{account_id}/wallet", actor=identity["user_id"]))

    @get(
        "/ledger",
        summary="The account's token movements, newest first: credits, debits, refunds, expiries",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def ledger(
        self,
        account_id: uuid.UUID,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        limit: pagination.Limit = pagination.DEFAULT_LIMIT,
        offset: pagination.Offset = 0,
    ) -> Response[Any]:
        return await self._list(request, identity, accounts, billing, account_id, "ledger", limit, offset)

    @get(
        "/orders",
        summary="The account's orders, newest first, with their status",
        description="Card: `awaiting_payment` then `paid`, `payment_failed`, `expired` or `cancelled`. Purchase "
        "order: `awaiting_validation` then `validated` or `refused` (`refusal_reason`).",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def orders(
        self,
        account_id: uuid.UUID,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        limit: pagination.Limit = pagination.DEFAULT_LIMIT,
        offset: pagination.Offset = 0,
    ) -> Response[Any]:
        return await self._list(request, identity, accounts, billing, account_id, "orders", limit, offset)

    @get(
        "/orders/{order_id:uuid}",
        summary="One order of the account",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def order(
        self,
        account_id: uuid.UUID,
        order_id: uuid.UUID,
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
    ) -> Response[Any]:
        await ensure_reader(identity, account_id, accounts)
        path = f"/internal/accounts/{account_id}/orders/{order_id}"
        return relay(await billing.call("GET", path, actor=identity["user_id"]))

    @get(
        "/documents",
        summary="The account's invoices and credit notes, newest first",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def documents(
        self,
        account_id: uuid.UUID,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        limit: pagination.Limit = pagination.DEFAULT_LIMIT,
        offset: pagination.Offset = 0,
    ) -> Response[Any]:
        return await self._list(request, identity, accounts, billing, account_id, "documents", limit, offset)

    @get(
        "/documents/{document_id:str}/pdf",
        summary="An invoice or credit note as a PDF (Factur-X), by its id or its number",
        media_type=PDF,
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def document_pdf(
        self,
        account_id: uuid.UUID,
        document_id: str,
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
    ) -> Response[Any]:
        await ensure_reader(identity, account_id, accounts)
        key = document_key(document_id, identity, account_id)
        path = f"/internal/accounts/{account_id}/documents/{key}/pdf"
        answer = await billing.call("GET", path, actor=identity["user_id"])
        return pdf_answer(answer, f"visiopass-{key}")

    @post(
        "/orders",
        status_code=201,
        summary="Buy tokens by card: the order, and the payment page to send the person to (`checkout_url`)",
        description="The account's managers. The order is `awaiting_payment` until the payment provider confirms "
        "it (then `paid`, and the tokens are credited at once) or gives up (`payment_failed`, `expired`). The buyer "
        "on the invoice is the institution as its profile says; the receipt is mailed to the caller.",
        responses=problems(401, 403, 404, 409, 413, 429),
        security=SESSION_OR_API_TOKEN,
        **IDEMPOTENT,
    )
    async def buy_by_card(
        self,
        account_id: uuid.UUID,
        data: CardOrder,
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        order = {"payment_method": "card", "lines": data.model_dump(mode="json")["lines"]}
        return relay(await place_order(billing, accounts, identity, account_id, order))

    @post(
        "/purchase-orders",
        status_code=201,
        summary="Order tokens on a purchase order (pay on invoice, by transfer): validated by an organiser",
        description="The account's managers. The order is `awaiting_validation`; once an organiser validates it "
        "(within 24 hours) the tokens are credited and an invoice payable by transfer is issued. A public buyer "
        "(a school) must give its `service_code`. The signed order's PDF may follow: "
        "`PUT .../orders/{order_id}/signed-order`.",
        responses=problems(401, 403, 404, 409, 413, 429),
        security=SESSION_OR_API_TOKEN,
        **IDEMPOTENT,
    )
    async def buy_by_purchase_order(
        self,
        account_id: uuid.UUID,
        data: PurchaseOrder,
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        order = {"payment_method": "purchase_order", **data.model_dump(mode="json")}
        order["service_code"] = order["service_code"] or None
        order["commitment_number"] = order["commitment_number"] or None
        return relay(await place_order(billing, accounts, identity, account_id, order))

    @put(
        "/orders/{order_id:uuid}/signed-order",
        status_code=204,
        summary="Attach the signed purchase order (a PDF of 5 MB at most)",
        description="The body is the PDF itself, `Content-Type: application/pdf`.",
        request_max_body_size=MAX_UPLOAD_BYTES + 1,
        responses=problems(401, 403, 404, 409, 413, 415, 422),
        security=SESSION_OR_API_TOKEN,
    )
    async def signed_order(
        self,
        account_id: uuid.UUID,
        order_id: uuid.UUID,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        billing: Upstream,
    ) -> Response[None]:
        ensure_manager(identity, account_id)  # before reading a byte of the file
        if request.content_type[0] != PDF:
            raise ProblemError(415, "unsupported_media_type", "Unsupported media type", "Send a PDF: application/pdf.")
        try:
            content = await request.body()
        except RequestEntityTooLarge:
            raise file_too_large() from None
        if len(content) > MAX_UPLOAD_BYTES:
            raise file_too_large()
        if not content.startswith(b"%PDF-"):
            raise ProblemError(422, "not_a_pdf", "Not a PDF", "The signed order must be a PDF file.", field="file")
        path = f"/internal/accounts/{account_id}/orders/{order_id}/signed-order"
        answer = await billing.call("PUT", path, actor=identity["user_id"], content=content, content_type=PDF)
        return relay(answer)

    @post(
        "/orders/{order_id:uuid}/cancel",
        status_code=200,
        summary="Abandon a card payment not made yet (`awaiting_payment` only)",
        responses=problems(401, 403, 404, 409),
        security=SESSION_OR_API_TOKEN,
    )
    async def cancel(
        self, account_id: uuid.UUID, order_id: uuid.UUID, identity: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = f"/internal/accounts/{account_id}/orders/{order_id}/cancel"
        return relay(await billing.call("POST", path, actor=identity["user_id"]))

    async def _list(
        self,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        account_id: uuid.UUID,
        name: str,
        limit: int,
        offset: int,
    ) -> Response[Any]:
        await ensure_reader(identity, account_id, accounts)
        path = f"/internal/accounts/{account_id}/{name}"
        listed = await billing_list(billing, path, limit, offset, identity["user_id"])
        if isinstance(listed, Response):
            return listed
        items, total = listed
        return pagination.page(request, {"items": items}, total, limit, offset)


class PaymentsApi(Controller):
    path = "/api/v1/payments"
    tags = ["billing"]

    @post(
        "/webhook",
        status_code=200,
        summary="The payment provider's events (Stripe webhooks): public, authenticated by their signature",
        description="The body is passed to billing byte for byte with its `Stripe-Signature` header; billing "
        'checks the signature (and its age) and acts once per event id. Answers 200 `{"received": true}`, or '
        "400 `bad_signature`, `stale_signature`, `invalid_payload`.",
        request_max_body_size=MAX_WEBHOOK_BYTES,
        responses=problems(413, 429),
    )
    async def webhook(self, request: Request[Any, Any, Any], billing: Upstream) -> Response[Any]:
        try:
            body = await request.body()
        except RequestEntityTooLarge:
            raise ProblemError(413, "body_too_large", "Body too large", "A webhook's body is 512 KB at most.") from None
        headers = {"Stripe-Signature": request.headers.get("Stripe-Signature", "")[:2048]}
        content_type = request.headers.get("Content-Type", "application/json")[:200]
        answer = await billing.call(
            "POST", "/internal/payments/webhook", content=body, content_type=content_type, headers=headers
        )
        return relay(answer)
