"""The price list and what its items cost and last.

Money is integer cents. An item's price is set before VAT (HT) with its VAT rate in basis points; the VAT is
rounded half up to the cent once per amount, and the gross (TTC) is net + VAT, so 60.00 HT at 20 % is 12.00 TVA
and 72.00 TTC. Orders copy the items they buy (label, tokens, price, validity) when placed: a later change of the
price list never alters them."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import price_items

Validity = Literal["24_months", "school_year"]
PARIS = ZoneInfo("Europe/Paris")
SCHOOL_YEAR_END = (8, 31)  # 31 August


def vat_of(net_cents: int, rate_bp: int) -> int:
    """VAT of an amount, rounded half up to the cent."""
    return (net_cents * rate_bp + 5_000) // 10_000


def amounts(net_cents: int, rate_bp: int) -> dict[str, Any]:
    """The amounts as contracts.base.VatAmounts reads them."""
    vat = vat_of(net_cents, rate_bp)
    return {
        "net": {"amount_cents": net_cents, "currency": "EUR"},
        "vat": {"amount_cents": vat, "currency": "EUR"},
        "gross": {"amount_cents": net_cents + vat, "currency": "EUR"},
        "vat_rate_bp": rate_bp,
    }


def expiry_of(validity: str, bought_at: datetime) -> datetime:
    """When tokens bought at `bought_at` expire: 24 months later to the instant (29 February -> 28 February), or
    at the end of the school year under way in Paris (31 August, 24:00), the next one when bought on that day."""
    if validity == "24_months":
        try:
            return bought_at.replace(year=bought_at.year + 2)
        except ValueError:  # 29 February
            return bought_at.replace(year=bought_at.year + 2, day=28)
    local = bought_at.astimezone(PARIS).date()
    end = date(local.year, *SCHOOL_YEAR_END)
    if local >= end:
        end = date(local.year + 1, *SCHOOL_YEAR_END)
    return datetime.combine(end + timedelta(days=1), time(0, 0), tzinfo=PARIS)


@dataclass(frozen=True)
class OrderLine:
    """One line of an order: an item of the price list as it was when ordered, and how many."""

    item_id: uuid.UUID
    code: str
    label_fr: str
    label_en: str
    quantity: int
    tokens: int  # per item
    bonus_tokens: int  # per item
    unit_net_cents: int
    vat_rate_bp: int
    validity: str
    purchase_order_allowed: bool

    @property
    def net_cents(self) -> int:
        return self.unit_net_cents * self.quantity

    @property
    def all_tokens(self) -> int:
        return (self.tokens + self.bonus_tokens) * self.quantity

    def as_json(self) -> dict[str, Any]:
        return {
            "item_id": str(self.item_id),
            "code": self.code,
            "label_fr": self.label_fr,
            "label_en": self.label_en,
            "quantity": self.quantity,
            "tokens": self.tokens,
            "bonus_tokens": self.bonus_tokens,
            "unit_net_cents": self.unit_net_cents,
            "vat_rate_bp": self.vat_rate_bp,
            "validity": self.validity,
            "purchase_order_allowed": self.purchase_order_allowed,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "OrderLine":
        return cls(**{**value, "item_id": uuid.UUID(value["item_id"])})

    def shown(self) -> dict[str, Any]:
        """The line as the API shows it."""
        return {
            "item_id": str(self.item_id),
            "code": self.code,
            "label_fr": self.label_fr,
            "label_en": self.label_en,
            "quantity": self.quantity,
            "tokens": self.tokens,
            "bonus_tokens": self.bonus_tokens,
            "validity": self.validity,
            "unit_price": amounts(self.unit_net_cents, self.vat_rate_bp),
            "total": amounts(self.net_cents, self.vat_rate_bp),
        }


class PriceListError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


async def order_lines(session: AsyncSession, wanted: list[tuple[uuid.UUID, int]]) -> list[OrderLine]:
    """The lines of an order for (item id, quantity) pairs, copied from the active price list; quantities of one
    item asked twice are added up."""
    quantities: dict[uuid.UUID, int] = {}
    for item_id, quantity in wanted:
        quantities[item_id] = quantities.get(item_id, 0) + quantity
    rows = {
        row.id: row
        for row in await session.execute(
            select(price_items).where(price_items.c.id.in_(quantities), price_items.c.active.is_(True))
        )
    }
    missing = [str(item_id) for item_id in quantities if item_id not in rows]
    if missing:
        raise PriceListError("item_unavailable", f"Not on the price list: {', '.join(missing)}")
    lines = []
    for item_id, quantity in quantities.items():
        row = rows[item_id]
        lines.append(
            OrderLine(
                item_id=item_id,
                code=row.code,
                label_fr=row.label_fr,
                label_en=row.label_en,
                quantity=quantity,
                tokens=row.tokens,
                bonus_tokens=row.bonus_tokens,
                unit_net_cents=row.net_cents,
                vat_rate_bp=row.vat_rate_bp,
                validity=row.validity,
                purchase_order_allowed=row.purchase_order_allowed,
            )
        )
    rates = {line.vat_rate_bp for line in lines}
    if len(rates) > 1:
        raise PriceListError("mixed_vat_rates", "The items of one order must share one VAT rate.")
    return sorted(lines, key=lambda line: line.code)


def shown_item(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "code": row.code,
        "label_fr": row.label_fr,
        "label_en": row.label_en,
        "tokens": row.tokens,
        "bonus_tokens": row.bonus_tokens,
        "price": amounts(row.net_cents, row.vat_rate_bp),
        "validity": row.validity,
        "purchase_order_allowed": row.purchase_order_allowed,
        "active": row.active,
        "position": row.position,
        "updated_at": row.updated_at.isoformat(),
    }
