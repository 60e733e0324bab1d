"""The organisers' billing pages (docs/portal.md, "Back-office: billing"): the price list editor ("Tarifs"), the
purchase orders to validate or refuse ("Bons de commande"), the payments received and the transfers awaited
("Paiements"), the invoices and credit notes ("Factures et avoirs", with their PDFs and the accountant's CSV export)
and the revenue per month ("Chiffre d'affaires", a chart drawn here as inline SVG, no script).

Organisers only, like every back-office page (gateway.back_office_pages.organiser: 404 to anyone else signed in,
the login page for the anonymous). The calls are those of the JSON API (gateway.back_office_billing_api), billing
keeping its rules. Amounts are typed in euros before VAT ("60,00") with the VAT rate in percent ("20"), checked
here and sent in cents and basis points; a refused form comes back with what was typed and each problem next to
its field. A form that worked redirects (303) to its page with `?done=…`. When billing does not answer, the page
says so rather than failing."""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

import babel.dates
import babel.numbers
from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway import i18n
from gateway.back_office_billing_api import ITEM_CODE, MAX_CENTS, current_year, export_documents, relay_file
from gateway.back_office_pages import organiser
from gateway.i18n import N_, gettext
from gateway.messages import problem_message
from gateway.portal import FORM, clip, form_status, page
from gateway.upstream import Upstream
from servicekit.http import ProblemError

PAGE_SIZE = 50
LISTED_AT_ONCE = 200  # billing's largest page: the pending orders and the transfers awaited fit in one
OVERDUE_SECONDS = 20 * 3600  # a purchase order older than this is late: tokens are promised within 24 hours
KINDS = ("invoice", "credit_note")
VALIDITIES = ("24_months", "school_year")
AMOUNT = re.compile(r"(\d{1,7})(?:[,.](\d{1,2}))?")
RATE = re.compile(r"(\d{1,3})(?:[,.](\d{1,2}))?")
SPACES = str.maketrans("", "", " \u00a0\u202f")

# Billing's refusals, in the reader's language (the others: gateway.messages).
REFUSALS = {
    "order_not_pending": N_("Ce bon de commande a déjà été traité (validé ou refusé)."),
    "already_credited": N_("Cette facture a déjà son avoir."),
    "already_paid": N_("Cette facture est déjà marquée payée."),
    "code_taken": N_("Un autre article du tarif porte déjà ce code."),
    "not_found": N_("Introuvable : la page n'était plus à jour."),
}


def refusal(answer: Any) -> str:
    problem = answer.json() if answer.status_code < 500 else {"code": "upstream_error"}
    code = problem.get("code")
    return gettext(REFUSALS[code]) if code in REFUSALS else problem_message(problem)


async def read(billing: Upstream, path: str, actor: str, **query: Any) -> Any | None:
    """Billing's JSON answer to GET `path`, None when it refused or did not answer (the page says unavailable)."""
    wanted = {name: value for name, value in query.items() if value is not None and value != ""}
    try:
        answer = await billing.call("GET", f"{path}?{urlencode(wanted)}" if wanted else path, actor=actor)
    except ProblemError:
        return None
    return answer.json() if answer.status_code == 200 else None


def offset_of(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 10 else 0


def day_of(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()[:10]) if value.strip() else None
    except ValueError:
        return None


# -- the price list: what is typed, and what billing takes -----------------------------------------------------------


def cents_of(value: str) -> int | None:
    """Euros as typed ("60", "60,00", "1 234,5", "60.00 €") in cents; None when it is no amount."""
    match = AMOUNT.fullmatch(value.translate(SPACES).removesuffix("€"))
    if match is None:
        return None
    euros, cents = match.groups()
    return int(euros) * 100 + int((cents or "0").ljust(2, "0"))


def rate_bp_of(value: str) -> int | None:
    """A VAT rate in percent as typed ("20", "5,5", "20 %") in basis points; None when it is no rate."""
    match = RATE.fullmatch(value.translate(SPACES).removesuffix("%"))
    if match is None:
        return None
    whole, hundredths = match.groups()
    rate = int(whole) * 100 + int((hundredths or "0").ljust(2, "0"))
    return rate if rate <= 10_000 else None


def euros_typed(cents: int) -> str:
    """Cents as an organiser types euros in their language: 6000 -> "60,00" (fr), "60.00" (en)."""
    return babel.numbers.format_decimal(Decimal(cents) / 100, "#0.00", locale=i18n.current_language.get())


def percent_typed(rate_bp: int) -> str:
    return babel.numbers.format_decimal(Decimal(rate_bp) / 100, "#0.##", locale=i18n.current_language.get())


class PriceItemForm(BaseModel):
    code: str = ""
    label_fr: str = ""
    label_en: str = ""
    tokens: str = ""
    bonus_tokens: str = ""
    net: str = ""  # euros before VAT, as typed
    vat_rate: str = ""  # percent, as typed
    validity: str = "24_months"
    purchase_order_allowed: str = ""  # a checkbox: "on" when ticked, absent otherwise
    active: str = ""
    position: str = ""

    @classmethod
    def blank(cls) -> "PriceItemForm":
        return cls(tokens="1", bonus_tokens="0", vat_rate=percent_typed(2000), active="on", position="0")

    @classmethod
    def of(cls, item: dict[str, Any]) -> "PriceItemForm":
        return cls(
            code=item["code"],
            label_fr=item["label_fr"],
            label_en=item["label_en"],
            tokens=str(item["tokens"]),
            bonus_tokens=str(item["bonus_tokens"]),
            net=euros_typed(item["price"]["net"]["amount_cents"]),
            vat_rate=percent_typed(item["price"]["vat_rate_bp"]),
            validity=item["validity"],
            purchase_order_allowed="on" if item["purchase_order_allowed"] else "",
            active="on" if item["active"] else "",
            position=str(item["position"]),
        )

    def clipped(self) -> "PriceItemForm":
        return PriceItemForm(**{name: clip(value).strip() for name, value in self.model_dump().items()})


def _count(value: str, low: int, high: int) -> int | None:
    return int(value) if value.isdigit() and len(value) < 7 and low <= int(value) <= high else None


def checked_item(form: PriceItemForm) -> tuple[dict[str, Any], dict[str, str]]:
    """The body billing takes for the form, and the problems of its fields (none: the body may be sent)."""
    errors: dict[str, str] = {}
    if not re.fullmatch(ITEM_CODE, form.code) or len(form.code) > 40:
        errors["code"] = gettext(N_("De 1 à 40 lettres minuscules, chiffres ou tirets, par exemple pack-5."))
    for name in ("label_fr", "label_en"):
        if not getattr(form, name) or len(getattr(form, name)) > 120:
            errors[name] = gettext(N_("Le libellé est obligatoire (120 caractères au plus)."))
    tokens, bonus = _count(form.tokens, 1, 1000), _count(form.bonus_tokens or "0", 0, 1000)
    if tokens is None:
        errors["tokens"] = gettext(N_("Un nombre entier de jetons, de 1 à 1 000."))
    if bonus is None:
        errors["bonus_tokens"] = gettext(N_("Un nombre entier de jetons offerts, de 0 à 1 000."))
    net = cents_of(form.net)
    if net is None or net > MAX_CENTS:
        errors["net"] = gettext(N_("Un montant en euros hors taxes, par exemple 60,00."))
    rate = rate_bp_of(form.vat_rate)
    if rate is None:
        errors["vat_rate"] = gettext(N_("Un taux en pour cent, de 0 à 100, par exemple 20 ou 5,5."))
    if form.validity not in VALIDITIES:
        errors["validity"] = gettext(N_("Choisissez une durée de validité."))
    position = _count(form.position or "0", 0, 10_000)
    if position is None:
        errors["position"] = gettext(N_("Un nombre entier, de 0 à 10 000."))
    body = {
        "code": form.code,
        "label_fr": form.label_fr,
        "label_en": form.label_en,
        "tokens": tokens,
        "bonus_tokens": bonus,
        "net_cents": net,
        "vat_rate_bp": rate,
        "validity": form.validity,
        "purchase_order_allowed": form.purchase_order_allowed == "on",
        "active": form.active == "on",
        "position": position,
    }
    return body, errors


# Billing's field names, as the form names them.
FORM_FIELDS = {"net_cents": "net", "vat_rate_bp": "vat_rate"}


def item_refusal(answer: Any) -> dict[str, str]:
    """Billing's refusal of an item, next to the field it names."""
    problem = answer.json() if answer.status_code < 500 else {}
    field = problem.get("field")
    if problem.get("code") == "code_taken":
        field = "code"
    field = FORM_FIELDS.get(field, field) if isinstance(field, str) else None
    shown = field if field in PriceItemForm.model_fields else "_form"
    return {shown: refusal(answer)}


# -- the revenue chart ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str  # the month, short
    name: str  # the month and year, in full
    title: str  # the month and its amount, read on hover
    x: float
    y: float
    width: float
    height: float
    negative: bool


@dataclass(frozen=True)
class Chart:
    """A bar per month of the net revenue (HT), in the SVG's own units (its viewBox); the page scales it."""

    width: int
    height: int
    baseline: float
    bars: list[Bar]
    label_y: float


CHART_WIDTH, PLOT_TOP, PLOT_HEIGHT, LABELS_HEIGHT = 720, 12, 200, 28


def revenue_chart(year: int, months: list[dict[str, Any]]) -> Chart:
    values = [month["net_cents"] for month in months]
    top, bottom = max(0, *values), min(0, *values)
    if top == bottom:  # nothing sold: the bars lie flat on the bottom line
        top = bottom + 1
    span = top - bottom
    slot = CHART_WIDTH / max(len(months), 1)

    def y(value: int) -> float:
        return round(PLOT_TOP + (top - value) / span * PLOT_HEIGHT, 2)

    bars = []
    for index, month in enumerate(months):
        value = month["net_cents"]
        first_day = date(year, index + 1, 1)
        name = babel.dates.format_date(first_day, "MMM", locale=i18n.current_language.get())
        long_name = babel.dates.format_date(first_day, "MMMM y", locale=i18n.current_language.get())
        upper, lower = y(max(value, 0)), y(min(value, 0))
        bars.append(
            Bar(
                label=name,
                name=long_name,
                title=f"{long_name} — {i18n.format_money(Decimal(value) / 100)}",
                x=round(index * slot + slot * 0.15, 2),
                y=upper,
                width=round(slot * 0.7, 2),
                height=max(lower - upper, 0),
                negative=value < 0,
            )
        )
    return Chart(CHART_WIDTH, PLOT_TOP + PLOT_HEIGHT + LABELS_HEIGHT, y(0), bars, PLOT_TOP + PLOT_HEIGHT + 20)


def year_of(value: str) -> int:
    return int(value) if value.isdigit() and len(value) == 4 and 2000 <= int(value) <= 2100 else current_year()


# -- forms ------------------------------------------------------------------------------------------------------


class ReasonForm(BaseModel):
    reason: str = ""


class PaymentForm(BaseModel):
    received_on: str = ""


def checked_reason(form: ReasonForm) -> tuple[str, dict[str, str]]:
    reason = clip(form.reason).strip()
    if not reason:
        return reason, {"reason": gettext(N_("Indiquez la raison."))}
    if len(reason) > 500:
        return reason, {"reason": gettext(N_("500 caractères au plus."))}
    return reason, {}


def done(path: str, what: str) -> Response[Any]:
    return Redirect(f"{path}?done={what}", status_code=303)


class BackOfficeBillingPages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    # -- Tarifs ---------------------------------------------------------------------------------------------------

    @get("/price-list")
    async def price_list(self, organiser: dict[str, Any], billing: Upstream) -> Template:
        return await self._price_list_page(organiser, billing)

    @post("/price-list")
    async def add_item(
        self, data: Annotated[PriceItemForm, FORM], organiser: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        form = data.clipped()
        body, errors = checked_item(form)
        if errors:
            return await self._price_list_page(organiser, billing, 400, "new", form, errors)
        answer = await billing.call("POST", "/internal/price-list", body, actor=organiser["user_id"])
        if answer.status_code == 201:
            return done("/back-office/price-list", "created")
        return await self._price_list_page(
            organiser, billing, form_status(answer.status_code), "new", form, item_refusal(answer)
        )

    @post("/price-list/{item_id:uuid}")
    async def change_item(
        self, item_id: uuid.UUID, data: Annotated[PriceItemForm, FORM], organiser: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        form = data.clipped()
        body, errors = checked_item(form)
        if errors:
            return await self._price_list_page(organiser, billing, 400, str(item_id), form, errors)
        answer = await billing.call("PUT", f"/internal/price-list/{item_id}", body, actor=organiser["user_id"])
        if answer.status_code == 200:
            return done("/back-office/price-list", "updated")
        return await self._price_list_page(
            organiser, billing, form_status(answer.status_code), str(item_id), form, item_refusal(answer)
        )

    async def _price_list_page(
        self,
        organiser: dict[str, Any],
        billing: Upstream,
        status_code: int = 200,
        refused: str | None = None,
        typed: PriceItemForm | None = None,
        errors: dict[str, str] | None = None,
    ) -> Template:
        """The list with a form per item and one for a new item; the form `refused` (an item id or "new") shows
        what was `typed` and its `errors`, opened."""
        listed = await read(billing, "/internal/price-list", organiser["user_id"], include_inactive="true")
        items = listed["items"] if listed else None
        forms = {item["id"]: PriceItemForm.of(item) for item in items or ()}
        forms["new"] = PriceItemForm.blank()
        if refused is not None and typed is not None:
            forms[refused] = typed
        return page(
            "back_office_price_list.html",
            organiser,
            status_code,
            items=items,
            forms=forms,
            refused=refused,
            errors=errors or {},
            validities=VALIDITIES,
        )

    # -- Bons de commande ---------------------------------------------------------------------------------------------

    @get("/purchase-orders")
    async def purchase_orders(self, organiser: dict[str, Any], billing: Upstream) -> Template:
        return await self._purchase_orders_page(organiser, billing)

    @post("/purchase-orders/{order_id:uuid}/validation")
    async def validate(self, order_id: uuid.UUID, organiser: dict[str, Any], billing: Upstream) -> Response[Any]:
        answer = await billing.call("POST", f"/internal/orders/{order_id}/validation", {}, actor=organiser["user_id"])
        if answer.status_code == 200:
            return done("/back-office/purchase-orders", "validated")
        errors = {"_form": refusal(answer)}
        return await self._purchase_orders_page(organiser, billing, form_status(answer.status_code), errors=errors)

    @post("/purchase-orders/{order_id:uuid}/refusal")
    async def refuse(
        self, order_id: uuid.UUID, data: Annotated[ReasonForm, FORM], organiser: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        reason, errors = checked_reason(data)
        if not errors:
            path = f"/internal/orders/{order_id}/refusal"
            answer = await billing.call("POST", path, {"reason": reason}, actor=organiser["user_id"])
            if answer.status_code == 200:
                return done("/back-office/purchase-orders", "refused")
            errors = {"reason": refusal(answer)}
            status_code = form_status(answer.status_code)
        else:
            status_code = 400
        return await self._purchase_orders_page(organiser, billing, status_code, str(order_id), reason, errors)

    @get("/purchase-orders/{order_id:uuid}/signed-order")
    async def signed_order(self, order_id: uuid.UUID, organiser: dict[str, Any], billing: Upstream) -> Response[Any]:
        """The signed purchase order the institution sent, as a PDF."""
        answer = await billing.call("GET", f"/internal/orders/{order_id}/signed-order", actor=organiser["user_id"])
        return relay_file(answer, f"bon-de-commande-{order_id}.pdf")

    async def _purchase_orders_page(
        self,
        organiser: dict[str, Any],
        billing: Upstream,
        status_code: int = 200,
        refused: str | None = None,
        reason: str = "",
        errors: dict[str, str] | None = None,
    ) -> Template:
        """The orders awaiting validation, oldest first with their age, then the purchase orders dealt with
        lately; the refusal form of the order `refused` shows the `reason` typed and its `errors`."""
        actor = organiser["user_id"]
        pending = await read(
            billing,
            "/internal/orders",
            actor,
            status="awaiting_validation",
            payment_method="purchase_order",
            limit=LISTED_AT_ONCE,
        )
        recent = await read(billing, "/internal/orders", actor, payment_method="purchase_order", limit=PAGE_SIZE)
        return page(
            "back_office_purchase_orders.html",
            organiser,
            status_code,
            pending=pending,
            handled=[order for order in recent["items"] if order["status"] != "awaiting_validation"] if recent else [],
            overdue_seconds=OVERDUE_SECONDS,
            refused=refused,
            reason=reason,
            errors=errors or {},
        )

    # -- Paiements ------------------------------------------------------------------------------------------------

    @get("/payments")
    async def payments(self, organiser: dict[str, Any], billing: Upstream, offset: str = "0") -> Template:
        return await self._payments_page(organiser, billing, offset=offset_of(offset))

    @post("/payments/{document_id:uuid}/received")
    async def payment_received(
        self, document_id: uuid.UUID, data: Annotated[PaymentForm, FORM], organiser: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        received = day_of(clip(data.received_on))
        if data.received_on.strip() and received is None:
            errors = {"received_on": gettext(N_("Une date, par exemple 2026-03-05."))}
            return await self._payments_page(organiser, billing, 400, str(document_id), errors)
        body = {"received_on": received.isoformat()} if received else {}
        path = f"/internal/documents/{document_id}/payment"
        answer = await billing.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code == 200:
            return done("/back-office/payments", "received")
        errors = {"received_on": refusal(answer)}
        return await self._payments_page(organiser, billing, form_status(answer.status_code), str(document_id), errors)

    async def _payments_page(
        self,
        organiser: dict[str, Any],
        billing: Upstream,
        status_code: int = 200,
        refused: str | None = None,
        errors: dict[str, str] | None = None,
        offset: int = 0,
    ) -> Template:
        """The payments received, newest first, and the invoices payable by transfer still unpaid (the last
        LISTED_AT_ONCE of them), but those a credit note cancelled."""
        actor = organiser["user_id"]
        received = await read(billing, "/internal/payments", actor, limit=PAGE_SIZE, offset=offset)
        invoices = await read(billing, "/internal/documents", actor, kind="invoice", paid="false", limit=LISTED_AT_ONCE)
        credit_notes = await read(billing, "/internal/documents", actor, kind="credit_note", limit=LISTED_AT_ONCE)
        cancelled = {note["invoice_id"] for note in credit_notes["items"]} if credit_notes else set()
        awaited = (
            [
                invoice
                for invoice in invoices["items"]
                if not invoice["paid"] and invoice["payment_method"] != "card" and invoice["id"] not in cancelled
            ]
            if invoices
            else None
        )
        return page(
            "back_office_payments.html",
            organiser,
            status_code,
            received=received,
            awaited=awaited,
            refused=refused,
            errors=errors or {},
            today=datetime.now(UTC).astimezone(i18n.timezone).date().isoformat(),
            offset=offset,
            page_size=PAGE_SIZE,
        )

    # -- Factures et avoirs ---------------------------------------------------------------------------------------

    @get("/invoices")
    async def invoices(
        self,
        organiser: dict[str, Any],
        billing: Upstream,
        q: str = "",
        kind: str = "",
        issued_from: Annotated[str, Parameter(query="from")] = "",
        issued_to: Annotated[str, Parameter(query="to")] = "",
        offset: str = "0",
    ) -> Template:
        search = Search.of(q, kind, issued_from, issued_to, offset_of(offset))
        return await self._invoices_page(organiser, billing, search)

    @post("/invoices/{document_id:uuid}/credit-note")
    async def credit_note(
        self, document_id: uuid.UUID, data: Annotated[ReasonForm, FORM], organiser: dict[str, Any], billing: Upstream
    ) -> Response[Any]:
        reason, errors = checked_reason(data)
        status_code = 400
        if not errors:
            path = f"/internal/documents/{document_id}/credit-note"
            answer = await billing.call("POST", path, {"reason": reason}, actor=organiser["user_id"])
            if answer.status_code == 201:
                return done("/back-office/invoices", "credited")
            errors, status_code = {"reason": refusal(answer)}, form_status(answer.status_code)
        search = Search.of("", "", "", "", 0)
        return await self._invoices_page(organiser, billing, search, status_code, str(document_id), reason, errors)

    @get("/invoices/{document_id:uuid}/pdf")
    async def pdf(self, document_id: uuid.UUID, organiser: dict[str, Any], billing: Upstream) -> Response[Any]:
        answer = await billing.call("GET", f"/internal/documents/{document_id}/pdf", actor=organiser["user_id"])
        return relay_file(answer, f"document-{document_id}.pdf")

    @get("/invoices.csv")
    async def export(
        self,
        organiser: dict[str, Any],
        billing: Upstream,
        issued_from: Annotated[str, Parameter(query="from")] = "",
        issued_to: Annotated[str, Parameter(query="to")] = "",
    ) -> Response[Any]:
        """The accountant's CSV of the documents issued between two days (a day that is no date is ignored)."""
        return await export_documents(billing, organiser["user_id"], day_of(issued_from), day_of(issued_to))

    async def _invoices_page(
        self,
        organiser: dict[str, Any],
        billing: Upstream,
        search: "Search",
        status_code: int = 200,
        refused: str | None = None,
        reason: str = "",
        errors: dict[str, str] | None = None,
    ) -> Template:
        actor = organiser["user_id"]
        found = await read(billing, "/internal/documents", actor, **search.query(), limit=PAGE_SIZE)
        credit_notes = await read(billing, "/internal/documents", actor, kind="credit_note", limit=LISTED_AT_ONCE)
        credited = {note["invoice_id"]: note["number"] for note in credit_notes["items"]} if credit_notes else {}
        total = found["total"] if found else 0
        return page(
            "back_office_invoices.html",
            organiser,
            400 if search.errors and status_code == 200 else status_code,
            found=found,
            credited=credited,
            search=search,
            kinds=KINDS,
            refused=refused,
            reason=reason,
            errors=errors or {},
            previous_link=search.link(max(0, search.offset - PAGE_SIZE)) if search.offset > 0 else None,
            next_link=search.link(search.offset + PAGE_SIZE) if search.offset + PAGE_SIZE < total else None,
        )

    # -- Chiffre d'affaires -----------------------------------------------------------------------------------------

    @get("/revenue")
    async def revenue(self, organiser: dict[str, Any], billing: Upstream, year: str = "") -> Template:
        shown = year_of(year)
        figures = await read(billing, "/internal/revenue", organiser["user_id"], year=shown)
        return page(
            "back_office_revenue.html",
            organiser,
            year=shown,
            figures=figures,
            chart=revenue_chart(shown, figures["months"]) if figures else None,
        )


@dataclass(frozen=True)
class Search:
    """The invoices page's filters, as typed (kept in the form) and as billing is asked."""

    q: str
    kind: str
    issued_from: str
    issued_to: str
    offset: int
    errors: dict[str, str]

    @classmethod
    def of(cls, q: str, kind: str, issued_from: str, issued_to: str, offset: int) -> "Search":
        errors = {}
        for name, value in (("from", issued_from), ("to", issued_to)):
            if value.strip() and day_of(value) is None:
                errors[name] = gettext(N_("Une date, par exemple 2026-03-05."))
        return cls(
            clip(q).strip()[:100],
            kind if kind in KINDS else "",
            issued_from.strip()[:10],
            issued_to.strip()[:10],
            offset,
            errors,
        )

    def query(self) -> dict[str, Any]:
        """What billing is asked: the dates that are dates (the others are shown refused)."""
        issued_from, issued_to = day_of(self.issued_from), day_of(self.issued_to)
        return {
            "q": "".join(char for char in self.q if char.isprintable()),
            "kind": self.kind,
            "from": issued_from.isoformat() if issued_from else None,
            "to": issued_to.isoformat() if issued_to else None,
            "offset": self.offset,
        }

    def export_link(self) -> str:
        """The accountant's CSV of the documents issued between the days chosen (all of them when none is)."""
        query = self.query()
        days = {name: query[name] for name in ("from", "to") if query[name]}
        return "/back-office/invoices.csv" + (f"?{urlencode(days)}" if days else "")

    def link(self, offset: int) -> str:
        kept = {"q": self.q, "kind": self.kind, "from": self.issued_from, "to": self.issued_to}
        return "?" + urlencode({name: value for name, value in kept.items() if value} | {"offset": offset})
