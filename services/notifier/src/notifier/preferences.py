"""Preferences, unsubscribe links and bouncing addresses: what keeps a planned mail from going out.

- **Preferences.** An institution may opt out of reminders (service.REMINDERS), never of transactional mail. The
  choice is read when a reminder is *sent*, not when it is planned: a reminder planned before the opt-out is skipped
  too (status `skipped`, "opted out of reminders"; no NotificationFailed: nothing went wrong).
- **Unsubscribe links.** Each reminder carries `{public_base_url}/unsubscribe/<token>` (in its text and in
  List-Unsubscribe, with RFC 8058 one-click). The token is the account id and the category, signed with HMAC-SHA256
  under NOTIFIER_UNSUBSCRIBE_KEY: nothing is stored per link, a link never expires (a reminder read months later
  still unsubscribes), using it twice does what it did once, and a forged or damaged one is unknown, like one that
  never existed. Whoever holds the mail may unsubscribe the institution from reminders: that is what the link is for.
- **Bouncing addresses.** An address whose mailbox refused mail for good (a hard bounce: a 5xx to RCPT, or a
  provider's bounce report) is marked; mail to it then fails at once ("address bounces (hard bounce)") without
  contacting the server, and the account's managers are told on the portal, until one of them clears it (they fixed
  the address, or want it tried again). A mail to a person's new address needs nothing: the new address is not marked.

The delivery loop asks `held_back` once per pass, for the rows it claimed."""

import base64
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import bouncing_addresses, deliveries, notification_preferences
from notifier.service import REMINDERS, DeliveryError, Undeliverable
from notifier.settings import NotifierSettings
from servicekit.db import Database

CATEGORIES = ("reminders",)  # what a link unsubscribes from
BY_LINK = "unsubscribe link"  # `updated_by` of a choice made with a mailed link
OPTED_OUT = "opted out of reminders"
BOUNCING = "address bounces (hard bounce)"
MAX_TOKEN = 200
_CONTEXT = b"visiopass unsubscribe\x00"  # this key signs nothing else, but a MAC says what it is for


class Skipped(DeliveryError):
    """The mail is not to be sent: the institution opted out of its category. The delivery ends `skipped`."""


class UnsubscribeLinks:
    def __init__(self, key: str, public_base_url: str) -> None:
        self._key = key.encode()
        self.public_base_url = public_base_url.rstrip("/")

    def token(self, account_id: uuid.UUID, category: str = "reminders") -> str:
        payload = account_id.bytes + category.encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def url(self, account_id: uuid.UUID, category: str = "reminders") -> str:
        return f"{self.public_base_url}/unsubscribe/{self.token(account_id, category)}"

    def read(self, token: str) -> tuple[uuid.UUID, str] | None:
        """(account id, category) of a token this key signed; None for anything else."""
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            return None
        encoded, _, mac = token.partition(".")
        payload, signature = _unb64(encoded), _unb64(mac)
        if payload is None or signature is None or not hmac.compare_digest(signature, self._mac(payload)):
            return None
        category = payload[16:].decode("ascii", errors="replace")
        if len(payload) < 17 or category not in CATEGORIES:
            return None
        return uuid.UUID(bytes=payload[:16]), category

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _CONTEXT + payload, hashlib.sha256).digest()


def links(settings: NotifierSettings) -> UnsubscribeLinks | None:
    """The links of NOTIFIER_UNSUBSCRIBE_KEY; None when it is unset (the notifier then refuses to start)."""
    key = settings.unsubscribe_key.get_secret_value().strip() if settings.unsubscribe_key else ""
    return UnsubscribeLinks(key, settings.public_base_url) if key else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
    except (ValueError, UnicodeEncodeError):
        return None


# -- the delivery loop's check -----------------------------------------------------------------------------------


async def held_back(db: Database, rows: Sequence[Row[Any]]) -> dict[uuid.UUID, DeliveryError]:
    """The claimed rows not to send, each with its outcome: Skipped for a reminder to an account that opted out,
    Undeliverable for an address that bounces."""
    if not rows:
        return {}
    accounts = {row.account_id for row in rows if row.template in REMINDERS and row.account_id is not None}
    addresses = {row.recipient.lower() for row in rows if row.channel == "email"}
    async with db.transaction() as session:
        opted_out = set()
        if accounts:
            opted_out = set(
                await session.scalars(
                    select(notification_preferences.c.account_id).where(
                        notification_preferences.c.account_id.in_(accounts), ~notification_preferences.c.reminders
                    )
                )
            )
        bouncing = set()
        if addresses:
            bouncing = set(
                await session.scalars(
                    select(bouncing_addresses.c.address).where(bouncing_addresses.c.address.in_(addresses))
                )
            )
    held: dict[uuid.UUID, DeliveryError] = {}
    for row in rows:
        if row.template in REMINDERS and row.account_id in opted_out:
            held[row.id] = Skipped(OPTED_OUT)
        elif row.channel == "email" and row.recipient.lower() in bouncing:
            held[row.id] = Undeliverable(BOUNCING)
    return held


# -- preferences -------------------------------------------------------------------------------------------------


async def preferences_of(session: AsyncSession, account_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await session.execute(
            select(notification_preferences).where(notification_preferences.c.account_id == account_id)
        )
    ).first()
    if row is None:
        return {"reminders": True, "updated_at": None, "updated_by": None}
    return {"reminders": row.reminders, "updated_at": row.updated_at, "updated_by": row.updated_by}


async def choose(session: AsyncSession, account_id: uuid.UUID, *, reminders: bool, by: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    await session.execute(
        insert(notification_preferences)
        .values(account_id=account_id, reminders=reminders, updated_at=now, updated_by=by)
        .on_conflict_do_update(
            index_elements=["account_id"], set_={"reminders": reminders, "updated_at": now, "updated_by": by}
        )
    )
    return {"reminders": reminders, "updated_at": now, "updated_by": by}


# -- bouncing addresses ------------------------------------------------------------------------------------------


async def mark_bouncing(
    session: AsyncSession,
    address: str,
    reason: str,
    *,
    source: str,
    account_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> None:
    """Mark `address` as bouncing (again). Its account: `account_id` (the mail that bounced), else that of the
    latest mail to the address (a provider's report names only the address)."""
    now = now or datetime.now(UTC)
    address = address.lower()
    if account_id is None:
        account_id = await session.scalar(
            select(deliveries.c.account_id)
            .where(func.lower(deliveries.c.recipient) == address, deliveries.c.account_id.is_not(None))
            .order_by(deliveries.c.created_at.desc())
            .limit(1)
        )
    marked = insert(bouncing_addresses).values(
        address=address,
        kind="hard",
        reason=reason[:1000],
        source=source,
        first_seen_at=now,
        last_seen_at=now,
        account_id=account_id,
    )
    await session.execute(
        marked.on_conflict_do_update(
            index_elements=["address"],
            set_={
                "reason": marked.excluded.reason,
                "source": marked.excluded.source,
                "last_seen_at": now,
                "account_id": func.coalesce(marked.excluded.account_id, bouncing_addresses.c.account_id),
            },
        )
    )


async def bouncing_of(session: AsyncSession, account_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(bouncing_addresses.c.address, bouncing_addresses.c.reason, bouncing_addresses.c.last_seen_at)
        .where(bouncing_addresses.c.account_id == account_id)
        .order_by(bouncing_addresses.c.address)
    )
    return [row._asdict() for row in rows]


async def clear(session: AsyncSession, account_id: uuid.UUID, address: str) -> bool:
    """Try `address` again (one of the account's); False when the account has no such bouncing address."""
    cleared = await session.execute(
        delete(bouncing_addresses)
        .where(bouncing_addresses.c.address == address.lower(), bouncing_addresses.c.account_id == account_id)
        .returning(bouncing_addresses.c.address)
    )
    return cleared.first() is not None
