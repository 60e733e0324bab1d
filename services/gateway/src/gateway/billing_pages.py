"""The billing pages of "Mon compte" (docs/portal.md, "Mon compte: Achat de jetons, Mes factures") and the sandbox
provider's payment page.

- "Achat de jetons" (`/account/tokens`): the balance and its lots with their expiry, the price list; for the
  institution's managers, the cart (a quantity per item in one form; "Mettre à jour" shows the total computed
  here, "Payer par carte" places the order and sends the browser (303) to the provider's payment page) and the
  purchase-order form (multipart, with the signed order's PDF if there is one). Its members see the prices and
  the balance, not the forms; a form posted by a member is refused (403) whatever it holds.
- The ledger (`/account/tokens/history`), the orders (`/account/orders`, one order `/account/orders/{id}` in
  plain words, where the provider sends the person back: `?paid=1`, `?cancelled=1`), "Mes factures"
  (`/account/invoices`, each PDF at `/account/invoices/{id}.pdf`, an attachment passed through from billing).

Which institution is shown comes from `web.current_account` (the person's own memberships, never a form); billing
is asked for that account only, so an order or document of another institution is not found (404), whatever its
id or number. The buyer on an order is the institution's profile in accounts (gateway.billing.place_order).

The sandbox page (`/payments/sandbox/{checkout_id}`) stands for the payment provider's own page when billing runs
with the sandbox provider (`make up`, tests): like a provider's page it is reached by the checkout's id alone,
which is unguessable, and needs no session; it exists only while billing knows the checkout (404 otherwise, and
always with the Stripe provider). Paying or declining there makes billing send the provider's signed webhook to
the public webhook path, as Stripe would, then the browser goes where the provider would send it."""

import asyncio
import math
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response import Redirect, Template

from gateway.account_pages import account_page, ensure_managed_account
from gateway.api import MAX_UPLOAD_BYTES
from gateway.billing import DOCUMENT_KEY, PDF, buyer_of, institution_profile, place_order
from gateway.i18n import N_, gettext
from gateway.member_pages import page_number
from gateway.messages import form_errors, problem_message
from gateway.portal import clip, form_status, page
from gateway.upstream import Upstream
from gateway.web import current_account
from servicekit.http import ProblemError

PAGE_SIZE = 20
MAX_QUANTITY = 100  # per item and order, as billing takes
CART_FORM_BYTES = 64 * 1024
CHECKOUT_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
PURCHASE_ORDER_FIELDS = ("item_id", "quantity", "buyer_order_number", "service_code", "commitment_number", "file")
FIELD_OF_CODE = {  # billing's refusals of a purchase order that are about one field of the form
    "service_code_required": "service_code",
    "buyer_order_number_required": "buyer_order_number",
    "purchase_order_not_allowed": "item_id",
    "item_unavailable": "item_id",
}
MAX_ORDER_SESSIONS = 10  # sessions a purchase order may name, as billing takes
FIELD_LIMITS = {"buyer_order_number": 60, "service_code": 100, "commitment_number": 60}


# -- billing's answers, read for a page ---------------------------------------------------------------------------


async def read(billing: Upstream, path: str, actor: str | None = None) -> Any | None:
    """Billing's JSON answer to GET `path`, None when it refused or did not answer (the page says unavailable)."""
    try:
        answer = await billing.call("GET", path, actor=actor)
    except ProblemError:
        return None
    return answer.json() if answer.status_code == 200 else None


def vat_of(net_cents: int, rate_bp: int) -> int:
    """VAT rounded half up to the cent, as billing computes it (billing.pricing)."""
    return (net_cents * rate_bp + 5_000) // 10_000


def cart_of(items: list[dict[str, Any]], quantities: dict[str, int]) -> dict[str, Any]:
    """The cart the quantities make: its lines and totals (VAT on the net of each rate, as an order's)."""
    lines = []
    net_by_rate: dict[int, int] = {}
    for item in items:
        quantity = quantities.get(item["id"], 0)
        if quantity <= 0:
            continue
        price = item["price"]
        net = price["net"]["amount_cents"] * quantity
        net_by_rate[price["vat_rate_bp"]] = net_by_rate.get(price["vat_rate_bp"], 0) + net
        lines.append(
            {
                "item": item,
                "quantity": quantity,
                "tokens": (item["tokens"] + item["bonus_tokens"]) * quantity,
                "gross_cents": price["gross"]["amount_cents"] * quantity,
            }
        )
    net = sum(net_by_rate.values())
    vat = sum(vat_of(amount, rate) for rate, amount in net_by_rate.items())
    return {
        "lines": lines,
        "net_cents": net,
        "vat_cents": vat,
        "gross_cents": net + vat,
        "tokens": sum(line["tokens"] for line in lines),
    }


def quantities_from(form: Any, items: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """(quantity per item id, what was typed per field, errors per field) from the cart form's `quantity-<id>`
    fields; an empty field is 0."""
    quantities: dict[str, int] = {}
    typed: dict[str, str] = {}
    errors: dict[str, str] = {}
    for item in items:
        name = f"quantity-{item['id']}"
        value = str(form.get(name) or "").strip()[:10]
        typed[name] = value
        if not value:
            continue
        if not (value.isascii() and value.isdigit()) or int(value) > MAX_QUANTITY:
            errors[name] = gettext(N_("Indiquez un nombre entier entre 0 et %(max)d.")) % {"max": MAX_QUANTITY}
            continue
        quantities[item["id"]] = int(value)
    return quantities, typed, errors


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return clip(value).strip() if isinstance(value, str) else ""


def pages_of(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


class BillingPages(Controller):
    path = "/account"
    include_in_schema = False

    # -- Achat de jetons --------------------------------------------------------------------------------------

    @get("/tokens")
    async def tokens(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        catalogue: Upstream,
    ) -> Template:
        return await self._tokens_page(request, person, accounts, billing, catalogue)

    @post("/tokens/cart", request_max_body_size=CART_FORM_BYTES)
    async def cart(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        catalogue: Upstream,
    ) -> Response[Any]:
        """ "Mettre à jour" shows the cart's total again; "Payer par carte" places the order and sends the browser
        to the payment page."""
        account_id = ensure_managed_account(request, person)
        form = await request.form()
        items = (await read(billing, "/internal/price-list")) or {"items": []}
        quantities, typed, errors = quantities_from(form, items["items"])
        again = {"cart_typed": typed, "cart_errors": errors}
        if errors:
            return await self._tokens_page(request, person, accounts, billing, catalogue, 400, **again)
        if form.get("action") != "pay":
            return await self._tokens_page(
                request, person, accounts, billing, catalogue, quantities=quantities, **again
            )
        if not quantities:
            errors = {"_form": gettext(N_("Choisissez la quantité d'au moins une offre."))}
            again = {"cart_typed": typed, "cart_errors": errors}
            return await self._tokens_page(request, person, accounts, billing, catalogue, 400, **again)
        lines = [{"item_id": item_id, "quantity": quantity} for item_id, quantity in quantities.items()]
        answer = await place_order(billing, accounts, person, account_id, {"payment_method": "card", "lines": lines})
        if answer.status_code == 201 and answer.json().get("checkout_url"):
            return Redirect(answer.json()["checkout_url"], status_code=303)
        errors = {"_form": _problem(answer)}
        return await self._tokens_page(
            request, person, accounts, billing, catalogue, form_status(answer.status_code), quantities=quantities,
            cart_typed=typed, cart_errors=errors,
        )  # fmt: skip

    @post("/tokens/purchase-order", request_max_body_size=MAX_UPLOAD_BYTES + 64 * 1024)
    async def purchase_order(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        catalogue: Upstream,
    ) -> Response[Any]:
        """The order (and its signed PDF, if one is sent), then its page, which confirms it."""
        account_id = ensure_managed_account(request, person)  # refused before a byte of the file is read
        try:
            form = await request.form()
        except RequestEntityTooLarge:
            errors = {"file": problem_message({"code": "file_too_large"})}
            return await self._tokens_page(request, person, accounts, billing, catalogue, 413, po_errors=errors)
        typed = {name: _text(form, name) for name in PURCHASE_ORDER_FIELDS if name != "file"}
        signed, errors = await _signed_order(form.get("file"))
        errors |= _purchase_order_errors(typed)
        chosen, errors_of_sessions = _order_sessions(form.getall("enrol_session_ids", []))
        errors |= errors_of_sessions
        typed["enrol_session_ids"] = chosen  # type: ignore[assignment]
        profile = await institution_profile(accounts, account_id, person["user_id"])
        if buyer_of(profile)["public_buyer"] and not typed["service_code"]:
            errors["service_code"] = gettext(N_("Un acheteur public indique le code service (Chorus Pro)."))
        if errors:
            return await self._tokens_page(
                request, person, accounts, billing, catalogue, 400, po_typed=typed, po_errors=errors
            )
        order = {
            "payment_method": "purchase_order",
            "lines": [{"item_id": typed["item_id"], "quantity": int(typed["quantity"])}],
            "buyer_order_number": typed["buyer_order_number"],
            "service_code": typed["service_code"] or None,
            "commitment_number": typed["commitment_number"] or None,
            "enrol_session_ids": chosen,
        }
        answer = await place_order(billing, accounts, person, account_id, order)
        if answer.status_code != 201:
            problem = answer.json() if answer.status_code < 500 else {"code": "upstream_error"}
            field = FIELD_OF_CODE.get(str(problem.get("code")))
            errors = {field: problem_message(problem)} if field else form_errors(problem, PURCHASE_ORDER_FIELDS)
            return await self._tokens_page(
                request,
                person,
                accounts,
                billing,
                catalogue,
                form_status(answer.status_code),
                po_typed=typed,
                po_errors=errors,
            )
        order_id = answer.json()["id"]
        done = "purchase_order"
        if signed is not None:
            path = f"/internal/accounts/{account_id}/orders/{order_id}/signed-order"
            stored = await billing.call("PUT", path, actor=person["user_id"], content=signed, content_type=PDF)
            done = "purchase_order" if stored.status_code == 204 else "purchase_order_without_file"
        return Redirect(f"/account/orders/{order_id}?done={done}", status_code=303)

    @get("/tokens/history")
    async def history(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        page: str = "1",
    ) -> Template:
        """The ledger: every credit, debit, refund and expiry, newest first."""
        return await self._listing("tokens_history.html", "ledger", request, person, accounts, billing, page)

    # -- orders ------------------------------------------------------------------------------------------------

    @get("/orders")
    async def orders(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        page: str = "1",
    ) -> Template:
        return await self._listing("orders.html", "orders", request, person, accounts, billing, page)

    @get("/orders/{order_id:uuid}")
    async def order(
        self,
        order_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        catalogue: Upstream,
    ) -> Template:
        """One order in plain words; where the payment provider sends the person back (`?paid=1`, `?cancelled=1`)."""
        account_id = current_account(request, person)
        if account_id is None:
            raise NotFoundException
        path = f"/internal/accounts/{account_id}/orders/{order_id}"
        answer = await billing.call("GET", path, actor=person["user_id"])
        if answer.status_code == 404:
            raise NotFoundException
        if answer.status_code != 200:
            return await account_page("order.html", request, person, accounts, 503, order=None)
        order = answer.json()
        named = await _named_sessions(catalogue, order.get("enrol_session_ids", []))
        return await account_page("order.html", request, person, accounts, order=order, named_sessions=named)

    @post("/orders/{order_id:uuid}/cancel")
    async def cancel(
        self,
        order_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        billing: Upstream,
    ) -> Response[Any]:
        """Abandon a card payment not made (the order leaves no tokens and cannot be paid any more)."""
        account_id = ensure_managed_account(request, person)
        path = f"/internal/accounts/{account_id}/orders/{order_id}/cancel"
        answer = await billing.call("POST", path, actor=person["user_id"])
        if answer.status_code == 404:
            raise NotFoundException
        done = "cancelled" if answer.status_code == 200 else "not_cancelled"
        return Redirect(f"/account/orders/{order_id}?done={done}", status_code=303)

    # -- Mes factures ------------------------------------------------------------------------------------------

    @get("/invoices")
    async def invoices(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        page: str = "1",
    ) -> Template:
        return await self._listing("invoices.html", "documents", request, person, accounts, billing, page)

    @get("/invoices/{file_name:str}")
    async def invoice_pdf(
        self, file_name: str, request: Request[Any, Any, Any], person: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        """`<id or number>.pdf`: the document as billing keeps it, downloaded (an attachment)."""
        account_id = current_account(request, person)
        key = file_name.removesuffix(".pdf")
        if account_id is None or not file_name.endswith(".pdf") or not DOCUMENT_KEY.fullmatch(key):
            raise NotFoundException
        path = f"/internal/accounts/{account_id}/documents/{key}/pdf"
        answer = await billing.call("GET", path, actor=person["user_id"])
        if answer.status_code != 200:
            raise NotFoundException
        headers = {"Content-Disposition": f'attachment; filename="visiopass-{key}.pdf"'}
        return Response(answer.content, media_type=PDF, headers=headers)

    # -- shared ------------------------------------------------------------------------------------------------

    async def _tokens_page(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        catalogue: Upstream,
        status_code: int = 200,
        quantities: dict[str, int] | None = None,
        **context: Any,
    ) -> Template:
        """ "Achat de jetons": the wallet, the price list, and for managers the cart (with `quantities`) and the
        purchase-order form; `context`: a form shown again with what was typed and its errors."""
        account_id = current_account(request, person)
        context = {"cart_typed": {}, "cart_errors": {}, "po_typed": {}, "po_errors": {}, **context}
        if account_id is None:
            return await account_page("tokens.html", request, person, accounts, status_code, state="none", **context)
        is_manager = person.get("memberships", {}).get(str(account_id)) == "manager"
        price_list, wallet, profile, upcoming = await asyncio.gather(
            read(billing, "/internal/price-list"),
            read(billing, f"/internal/accounts/{account_id}/wallet", person["user_id"]),
            _profile_if(is_manager, accounts, account_id, person["user_id"]),
            _upcoming_if(is_manager, catalogue),
        )
        items = price_list["items"] if price_list else []
        if price_list is None and status_code == 200:
            status_code = 503
        public_buyer = bool(profile) and buyer_of(profile)["public_buyer"]
        return await account_page(
            "tokens.html", request, person, accounts, status_code, state="shown", items=items, wallet=wallet,
            cart=cart_of(items, quantities or {}), public_buyer=public_buyer, upcoming=upcoming, **context,
        )  # fmt: skip

    async def _listing(
        self,
        template: str,
        name: str,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        billing: Upstream,
        page_field: str,
    ) -> Template:
        """A page of one of billing's lists of the institution shown (ledger, orders, documents)."""
        account_id = current_account(request, person)
        if account_id is None:
            return await account_page(template, request, person, accounts, state="none")
        number = page_number(page_field)
        path = f"/internal/accounts/{account_id}/{name}?limit={PAGE_SIZE}&offset={(number - 1) * PAGE_SIZE}"
        listed = await read(billing, path, person["user_id"])
        if listed is None:
            return await account_page(template, request, person, accounts, 503, state="unavailable")
        return await account_page(
            template, request, person, accounts, state="shown", listing=listed["items"], page_number=number,
            pages=pages_of(listed["total"]),
        )  # fmt: skip


async def _upcoming_if(wanted: bool, catalogue: Upstream) -> list[dict[str, Any]]:
    """The published sessions with places left, soonest first, that a purchase order may name (none if the
    catalogue does not answer: the order goes without)."""
    if not wanted:
        return []
    listed = await read(catalogue, f"/internal/planning?available=true&limit={MAX_ORDER_SESSIONS * 5}")
    return listed["items"] if listed else []


async def _named_sessions(catalogue: Upstream, session_ids: list[str]) -> list[dict[str, Any]]:
    """The sessions a purchase order names, as the catalogue shows them (only their id if it does not answer)."""
    shown = await asyncio.gather(*(read(catalogue, f"/internal/sessions/{session_id}") for session_id in session_ids))
    return [found or {"id": session_id} for session_id, found in zip(session_ids, shown, strict=True)]


async def _profile_if(wanted: bool, accounts: Upstream, account_id: uuid.UUID, actor: str) -> dict[str, Any] | None:
    if not wanted:
        return None
    try:
        return await institution_profile(accounts, account_id, actor)
    except ProblemError:
        return None


def _problem(answer: Any) -> str:
    return problem_message(answer.json() if answer.status_code < 500 else {"code": "upstream_error"})


async def _signed_order(upload: Any) -> tuple[bytes | None, dict[str, str]]:
    """The signed order's PDF from the form's `file` field (None when no file was chosen), or its error."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, {}
    content = await upload.read()
    await upload.close()
    if not content:
        return None, {}
    if len(content) > MAX_UPLOAD_BYTES:
        return None, {"file": problem_message({"code": "file_too_large"})}
    if not content.startswith(b"%PDF-"):
        return None, {"file": gettext(N_("Ce fichier n'est pas un PDF : choisissez le bon de commande signé en PDF."))}
    return content, {}


def _order_sessions(values: list[Any]) -> tuple[list[str], dict[str, str]]:
    """The sessions ticked on the purchase-order form (ids), and the error if they cannot be."""
    chosen: list[str] = []
    for value in values[: MAX_ORDER_SESSIONS + 1]:
        try:
            chosen.append(str(uuid.UUID(str(value))))
        except ValueError:
            return [], {"enrol_session_ids": gettext(N_("Choisissez des séances de la liste."))}
    if len(values) > MAX_ORDER_SESSIONS:
        message = gettext(N_("%(max)d séances au plus.")) % {"max": MAX_ORDER_SESSIONS}
        return chosen[:MAX_ORDER_SESSIONS], {"enrol_session_ids": message}
    return list(dict.fromkeys(chosen)), {}


def _purchase_order_errors(typed: dict[str, str]) -> dict[str, str]:
    errors = {}
    try:
        uuid.UUID(typed["item_id"])
    except ValueError:
        errors["item_id"] = gettext(N_("Choisissez une offre payable sur bon de commande."))
    quantity = typed["quantity"]
    if not (quantity.isascii() and quantity.isdigit()) or not 1 <= int(quantity[:9]) <= MAX_QUANTITY:
        errors["quantity"] = gettext(N_("Indiquez un nombre entier entre 1 et %(max)d.")) % {"max": MAX_QUANTITY}
    if not typed["buyer_order_number"]:
        errors["buyer_order_number"] = gettext(N_("Indiquez le numéro de votre bon de commande."))
    for name, limit in FIELD_LIMITS.items():
        if len(typed[name]) > limit:
            errors[name] = gettext(N_("%(max)d caractères au plus.")) % {"max": limit}
    return errors


class SandboxPaymentPages(Controller):
    """The sandbox provider's payment page: pay or decline a checkout, as on the provider's own page."""

    path = "/payments/sandbox"
    include_in_schema = False

    @get("/{checkout_id:str}")
    async def checkout(self, checkout_id: str, visitor: dict[str, Any] | None, billing: Upstream) -> Template:
        shown = await _checkout(billing, checkout_id)
        return page("sandbox_checkout.html", visitor, checkout=shown)

    @post("/{checkout_id:str}", request_max_body_size=CART_FORM_BYTES)
    async def answer(
        self,
        checkout_id: str,
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        billing: Upstream,
    ) -> Response[Any]:
        shown = await _checkout(billing, checkout_id)
        action = (await request.form()).get("action")
        if action not in ("pay", "decline"):
            error = gettext(N_("Choisissez : payer ou refuser le paiement."))
            return page("sandbox_checkout.html", visitor, 400, checkout=shown, error=error)
        answer = await billing.call("POST", f"/internal/sandbox/checkouts/{checkout_id}/{action}")
        if answer.status_code == 404:
            raise NotFoundException
        if answer.status_code != 200:
            return page("sandbox_checkout.html", visitor, form_status(answer.status_code), checkout=shown,
                        error=_problem(answer))  # fmt: skip
        return Redirect(answer.json()["redirect"], status_code=303)


async def _checkout(billing: Upstream, checkout_id: str) -> dict[str, Any]:
    """The checkout as billing's sandbox knows it; 404 when it does not (or billing has no sandbox)."""
    if not 1 <= len(checkout_id) <= 255 or not set(checkout_id) <= CHECKOUT_ID_CHARACTERS:
        raise NotFoundException
    answer = await billing.call("GET", f"/internal/sandbox/checkouts/{checkout_id}")
    if answer.status_code != 200:
        if answer.status_code >= 500:
            raise ProblemError(502, "upstream_error", "Service error", "An internal service failed; try again later.")
        raise NotFoundException
    checkout: dict[str, Any] = answer.json()
    return checkout
