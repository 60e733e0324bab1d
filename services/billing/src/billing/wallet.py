"""The token wallet of an account: lots with their own expiry, and the append-only ledger.

Guarantees (each has a test):
- The balance is the sum of the remaining tokens of the live lots (not expired), and equals the ledger's
  credits - debits + refunds - expiries. Every change of a lot writes its ledger line in the same transaction.
- Every change of an account's lots first locks the account's wallet row (`lock_wallet`): concurrent debits of
  one account run one after the other, so none can overdraw it, and the expiry job never races a debit.
- A debit takes the earliest-expiring lot first (then the oldest). A lot is usable strictly before its expiry
  instant; at that instant it is expired (by the debit itself if the daily job has not run yet).
- One charge per enrolment (primary key): a redelivered EnrollmentRequested finds its charge and does nothing;
  a refund turns a `debited` charge into `refunded` once, giving each lot back what was taken from it.
- Ledger lines are unique per (operation key, lot): the same operation can never be written twice.

Functions take the caller's session and return the events to publish (through the outbox, same transaction).
They never commit."""

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import case, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import enrollment_charges, ledger, lots, orders, wallets
from contracts import Event
from contracts.events.billing import (
    LotTokens,
    Notice,
    TokenDebitRejected,
    TokensDebited,
    TokensExpired,
    TokensExpiringSoon,
    TokensRefunded,
)

EXPIRY_WARNING = timedelta(days=30)
LedgerKind = Literal["credit", "debit", "refund", "expiry"]


@dataclass(frozen=True)
class Taken:
    lot_id: uuid.UUID
    tokens: int
    expires_at: datetime

    def as_event(self) -> LotTokens:
        return LotTokens(lot_id=self.lot_id, tokens=self.tokens, expires_at=self.expires_at)

    def as_json(self) -> dict[str, Any]:
        return {"lot_id": str(self.lot_id), "tokens": self.tokens, "expires_at": self.expires_at.isoformat()}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "Taken":
        return cls(uuid.UUID(value["lot_id"]), int(value["tokens"]), datetime.fromisoformat(value["expires_at"]))


async def ensure_wallet(session: AsyncSession, account_id: uuid.UUID) -> None:
    await session.execute(pg_insert(wallets).values(account_id=account_id).on_conflict_do_nothing())


async def lock_wallet(session: AsyncSession, account_id: uuid.UUID) -> Any:
    """The account's wallet row, locked until the transaction ends (None when billing never heard of it).
    Taken before any change to the account's lots: it orders concurrent debits, refunds, credits and expiries."""
    result = await session.execute(select(wallets).where(wallets.c.account_id == account_id).with_for_update())
    return result.one_or_none()


async def lock_wallets(session: AsyncSession, account_ids: Iterable[uuid.UUID]) -> None:
    """Lock several accounts' wallets in one statement, in account order: transactions that take their locks
    this way, before any other, never deadlock (the enrolment consumers do it for each batch they apply)."""
    ids = sorted(set(account_ids))
    if ids:
        await session.execute(
            select(wallets.c.account_id)
            .where(wallets.c.account_id.in_(ids))
            .order_by(wallets.c.account_id)
            .with_for_update()
        )


async def balance(session: AsyncSession, account_id: uuid.UUID, now: datetime) -> int:
    """Usable tokens: the remaining tokens of the lots not expired at `now`."""
    total = await session.scalar(
        select(func.coalesce(func.sum(lots.c.remaining), 0)).where(
            lots.c.account_id == account_id, lots.c.expired_at.is_(None), lots.c.expires_at > now
        )
    )
    return int(total or 0)


async def _write(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    kind: LedgerKind,
    tokens: int,
    lot_id: uuid.UUID,
    operation_key: str,
    balance_after: int,
    now: datetime,
    order_id: uuid.UUID | None = None,
    enrollment_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
) -> None:
    await session.execute(
        insert(ledger).values(
            account_id=account_id,
            kind=kind,
            tokens=tokens,
            lot_id=lot_id,
            operation_key=operation_key,
            order_id=order_id,
            enrollment_id=enrollment_id,
            session_id=session_id,
            balance_after=balance_after,
            created_at=now,
        )
    )


async def credit(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    order_id: uuid.UUID,
    tokens: int,
    expires_at: datetime,
    now: datetime,
    operation_key: str,
) -> tuple[uuid.UUID, int]:
    """A new lot of `tokens` expiring at `expires_at`; returns its id and the balance after."""
    await ensure_wallet(session, account_id)
    await lock_wallet(session, account_id)
    lot_id = uuid.uuid4()
    await session.execute(
        insert(lots).values(
            id=lot_id,
            account_id=account_id,
            order_id=order_id,
            tokens=tokens,
            remaining=tokens,
            expires_at=expires_at,
            created_at=now,
        )
    )
    after = await balance(session, account_id, now)
    await _write(
        session,
        account_id=account_id,
        kind="credit",
        tokens=tokens,
        lot_id=lot_id,
        operation_key=operation_key,
        balance_after=after,
        now=now,
        order_id=order_id,
    )
    return lot_id, after


async def expire_due(session: AsyncSession, account_id: uuid.UUID, now: datetime) -> list[Event]:
    """Expire the account's lots whose expiry instant has come (the wallet row must be locked)."""
    due = await session.execute(
        update(lots)
        .where(lots.c.account_id == account_id, lots.c.expired_at.is_(None), lots.c.expires_at <= now)
        .values(expired_at=now, remaining=0)
        .returning(lots.c.id, lots.c.expires_at, lots.c.remaining.label("zero"))
    )
    expired = due.all()
    if not expired:
        return []
    # remaining is 0 after the update; what each lot held comes from the ledger: credits + refunds - debits
    events: list[Event] = []
    after = await balance(session, account_id, now)
    for lot_id, expires_at, _ in sorted(expired, key=lambda row: (row.expires_at, row.id)):
        held = await _held_by_lot(session, lot_id)
        if held > 0:
            events.append(await _expiry(session, account_id, lot_id, held, expires_at, f"expiry:{lot_id}", after, now))
    return events


async def _expiry(
    session: AsyncSession,
    account_id: uuid.UUID,
    lot_id: uuid.UUID,
    tokens: int,
    expired_at: datetime,
    operation_key: str,
    balance_after: int,
    now: datetime,
    order_id: uuid.UUID | None = None,
) -> TokensExpired:
    """The ledger's expiry line for `tokens` of a lot, and its event."""
    await _write(
        session,
        account_id=account_id,
        kind="expiry",
        tokens=tokens,
        lot_id=lot_id,
        operation_key=operation_key,
        balance_after=balance_after,
        now=now,
        order_id=order_id,
    )
    return TokensExpired(
        account_id=account_id, lot_id=lot_id, tokens=tokens, expired_at=expired_at, balance_after=balance_after
    )


async def _held_by_lot(session: AsyncSession, lot_id: uuid.UUID) -> int:
    signed = func.sum(case((ledger.c.kind.in_(("credit", "refund")), ledger.c.tokens), else_=-ledger.c.tokens))
    return int(await session.scalar(select(func.coalesce(signed, 0)).where(ledger.c.lot_id == lot_id)) or 0)


@dataclass(frozen=True)
class DebitRequest:
    """What an EnrollmentRequested asks of billing."""

    account_id: uuid.UUID
    enrollment_id: uuid.UUID
    session_id: uuid.UUID
    tokens: int


async def debit_for_enrollment(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    session_id: uuid.UUID,
    tokens: int,
    now: datetime,
) -> list[Event]:
    """Debit `tokens` for an enrolment, earliest-expiring lots first, or reject it with a reason. A second call
    for the same enrolment returns no event and changes nothing."""
    [events] = await debit_many(session, [DebitRequest(account_id, enrollment_id, session_id, tokens)], now)
    return events


async def debit_many(session: AsyncSession, requests: Sequence[DebitRequest], now: datetime) -> list[list[Event]]:
    """Each request in turn as `debit_for_enrollment` says, in a handful of statements whatever their number (the
    saga's hot path: a consumer batch of enrolment requests): the wallets locked in account order, the charges
    already made, the live lots, then every write in one statement. The wallets are locked first, and the lots
    read in a statement of their own, so that they are what the locks waited for. Returns each request's events
    (an account's lots that were due expire with its first request)."""
    account_ids = sorted({request.account_id for request in requests})
    found = await session.execute(_LOCK_WALLETS_FOR_DEBIT, {"account_ids": account_ids})
    wallets_by_account = {row.account_id: row for row in found}
    enrollment_ids = [request.enrollment_id for request in requests]
    charged = set((await session.execute(_CHARGED, {"enrollment_ids": enrollment_ids})).scalars())
    live: dict[uuid.UUID, list[_Lot]] = {account_id: [] for account_id in wallets_by_account}
    for row in await session.execute(_LIVE_LOTS, {"account_ids": list(wallets_by_account)}):
        live[row.account_id].append(_Lot(row.id, row.remaining, row.expires_at))
    outcomes: list[list[Event]] = [[] for _ in requests]
    for account_id in sorted(account for account, lots_of in live.items() if any(lot.due(now) for lot in lots_of)):
        first = next(i for i, request in enumerate(requests) if request.account_id == account_id)
        outcomes[first] += await expire_due(session, account_id, now)  # the daily job has not run yet
        live[account_id] = [lot for lot in live[account_id] if not lot.due(now)]
    writes = _DebitWrites()
    for request, events in zip(requests, outcomes, strict=True):
        if request.enrollment_id in charged:
            continue
        charged.add(request.enrollment_id)
        wallet = wallets_by_account.get(request.account_id)
        usable = live.get(request.account_id, [])
        reason = _refusal(wallet, sum(lot.remaining for lot in usable), request.tokens)
        if reason is not None:
            writes.charge(request, "rejected", [], reason)
            events.append(
                TokenDebitRejected(
                    account_id=request.account_id,
                    enrollment_id=request.enrollment_id,
                    session_id=request.session_id,
                    reason=reason,  # type: ignore[arg-type]
                )
            )
            continue
        taken = _take(usable, request.tokens)
        after = sum(lot.remaining for lot in usable)
        writes.debit(request, taken, after)
        events.append(
            TokensDebited(
                account_id=request.account_id,
                enrollment_id=request.enrollment_id,
                session_id=request.session_id,
                lot_id=taken[0].lot_id,
                tokens=request.tokens,
                balance_after=after,
                lots=[part.as_event() for part in taken],
            )
        )
    await writes.flush(session, now)
    return outcomes


def _refusal(wallet: Any, balance: int, tokens: int) -> str | None:
    if wallet is None:
        return "unknown_account"
    if wallet.closed_at is not None:
        return "account_closed"
    if wallet.verified_at is None:
        return "account_unverified"
    if balance < tokens:
        return "insufficient_balance"
    return None


@dataclass
class _Lot:
    id: uuid.UUID
    remaining: int
    expires_at: datetime

    def due(self, now: datetime) -> bool:
        return self.expires_at <= now  # usable strictly before its expiry instant


def _take(usable: list[_Lot], tokens: int) -> list[Taken]:
    """Take `tokens` of the usable lots, in their order (earliest expiry first), lowering what they hold."""
    taken: list[Taken] = []
    wanted = tokens
    for lot in usable:
        part = min(wanted, lot.remaining)
        if part > 0:
            lot.remaining -= part
            taken.append(Taken(lot.id, part, lot.expires_at))
            wanted -= part
    if wanted:
        raise RuntimeError("balance checked under the wallet lock, yet the lots fell short")
    return taken


@dataclass
class _DebitWrites:
    """The rows a batch of debits writes, as the columns `_DEBIT` takes."""

    lot_parts: dict[uuid.UUID, int] = field(default_factory=dict)
    lines: dict[str, list[Any]] = field(default_factory=lambda: {key: [] for key in _LINE_COLUMNS})
    charges: dict[str, list[Any]] = field(default_factory=lambda: {key: [] for key in _CHARGE_COLUMNS})

    def debit(self, request: DebitRequest, taken: list[Taken], balance_after: int) -> None:
        for part in taken:
            self.lot_parts[part.lot_id] = self.lot_parts.get(part.lot_id, 0) + part.tokens
            line = (request.account_id, part.lot_id, part.tokens, request.enrollment_id, request.session_id)
            for key, value in zip(_LINE_COLUMNS, (*line, balance_after), strict=True):
                self.lines[key].append(value)
        self.charge(request, "debited", taken, None)

    def charge(self, request: DebitRequest, status: str, taken: list[Taken], reason: str | None) -> None:
        lots_taken = json.dumps([part.as_json() for part in taken])
        row = (request.enrollment_id, request.account_id, request.session_id, request.tokens, status, reason)
        for key, value in zip(_CHARGE_COLUMNS, (*row, lots_taken), strict=True):
            self.charges[key].append(value)

    async def flush(self, session: AsyncSession, now: datetime) -> None:
        if not self.charges["charge_enrollments"]:
            return
        parts = {"lot_ids": list(self.lot_parts), "lot_parts": list(self.lot_parts.values())}
        await session.execute(_DEBIT, {**parts, **self.lines, **self.charges, "now": now})


_LINE_COLUMNS = ("line_accounts", "line_lots", "line_tokens", "line_enrollments", "line_sessions", "line_balances")
_CHARGE_COLUMNS = (
    "charge_enrollments",
    "charge_accounts",
    "charge_sessions",
    "charge_tokens",
    "charge_statuses",
    "charge_reasons",
    "charge_lots",
)

# The debits' statements, built once.
_LOCK_WALLETS_FOR_DEBIT = text(
    """
    SELECT account_id, verified_at, closed_at FROM wallets
    WHERE account_id = ANY(CAST(:account_ids AS uuid[])) ORDER BY account_id FOR UPDATE
    """
)
_CHARGED = text(
    "SELECT enrollment_id FROM enrollment_charges WHERE enrollment_id = ANY(CAST(:enrollment_ids AS uuid[]))"
)
_LIVE_LOTS = text(
    """
    SELECT account_id, id, remaining, expires_at FROM lots
    WHERE account_id = ANY(CAST(:account_ids AS uuid[])) AND expired_at IS NULL
    ORDER BY account_id, expires_at, created_at, id
    """
)
# Every write of a batch of debits in one statement: what each lot gives, the ledger's lines (one per lot a debit
# takes from), and a charge per enrolment (debited or rejected).
_DEBIT = text(
    """
    WITH taken AS (
        UPDATE lots SET remaining = lots.remaining - part.tokens
        FROM unnest(CAST(:lot_ids AS uuid[]), CAST(:lot_parts AS integer[])) AS part(lot_id, tokens)
        WHERE lots.id = part.lot_id
    ), lines AS (
        INSERT INTO ledger (account_id, kind, tokens, lot_id, operation_key, enrollment_id, session_id,
                            balance_after, created_at)
        SELECT line.account_id, 'debit', line.tokens, line.lot_id, 'debit:' || line.enrollment_id,
               line.enrollment_id, line.session_id, line.balance_after, CAST(:now AS timestamptz)
        FROM unnest(CAST(:line_accounts AS uuid[]), CAST(:line_lots AS uuid[]), CAST(:line_tokens AS integer[]),
                    CAST(:line_enrollments AS uuid[]), CAST(:line_sessions AS uuid[]),
                    CAST(:line_balances AS integer[]))
             AS line(account_id, lot_id, tokens, enrollment_id, session_id, balance_after)
    )
    INSERT INTO enrollment_charges (enrollment_id, account_id, session_id, tokens, status, reason, lots, created_at)
    SELECT charge.enrollment_id, charge.account_id, charge.session_id, charge.tokens, charge.status, charge.reason,
           CAST(charge.lots AS jsonb), CAST(:now AS timestamptz)
    FROM unnest(CAST(:charge_enrollments AS uuid[]), CAST(:charge_accounts AS uuid[]),
                CAST(:charge_sessions AS uuid[]), CAST(:charge_tokens AS integer[]),
                CAST(:charge_statuses AS varchar[]), CAST(:charge_reasons AS varchar[]),
                CAST(:charge_lots AS text[]))
         AS charge(enrollment_id, account_id, session_id, tokens, status, reason, lots)
    """
)


async def refund_enrollment(session: AsyncSession, enrollment_id: uuid.UUID, now: datetime) -> list[Event]:
    """Give back what an enrolment's debit took, each token to the lot it came from (with that lot's expiry).
    Nothing for an enrolment never debited, rejected or already refunded. A lot that expired in between takes
    its tokens back and expires them at once (the ledger shows both lines)."""
    account_id = await session.scalar(
        select(enrollment_charges.c.account_id).where(enrollment_charges.c.enrollment_id == enrollment_id)
    )
    if account_id is None:
        return []
    await lock_wallet(session, account_id)
    refunded = await session.execute(
        update(enrollment_charges)
        .where(enrollment_charges.c.enrollment_id == enrollment_id, enrollment_charges.c.status == "debited")
        .values(status="refunded", refunded_at=now)
        .returning(enrollment_charges.c.session_id, enrollment_charges.c.tokens, enrollment_charges.c.lots)
    )
    charge = refunded.one_or_none()
    if charge is None:
        return []
    given_back = [Taken.from_json(part) for part in charge.lots]
    late: list[Taken] = []
    for part in given_back:
        row = await session.execute(
            update(lots)
            .where(lots.c.id == part.lot_id, lots.c.expired_at.is_(None))
            .values(remaining=lots.c.remaining + part.tokens)
            .returning(lots.c.id)
        )
        if row.one_or_none() is None:
            late.append(part)
    after = await balance(session, account_id, now)
    for part in given_back:
        await _write(
            session,
            account_id=account_id,
            kind="refund",
            tokens=part.tokens,
            lot_id=part.lot_id,
            operation_key=f"refund:{enrollment_id}",
            balance_after=after,
            now=now,
            enrollment_id=enrollment_id,
            session_id=charge.session_id,
        )
    events: list[Event] = [
        TokensRefunded(
            account_id=account_id,
            enrollment_id=enrollment_id,
            session_id=charge.session_id,
            lot_id=given_back[0].lot_id,
            tokens=charge.tokens,
            balance_after=after,
            lots=[part.as_event() for part in given_back],
        )
    ]
    for part in late:  # its lot expired meanwhile: the tokens come back and expire with it
        key = f"refund-expiry:{enrollment_id}"
        events.append(await _expiry(session, account_id, part.lot_id, part.tokens, part.expires_at, key, after, now))
    return events


async def accounts_debited_for_sessions(session: AsyncSession, session_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    result = await session.scalars(
        select(enrollment_charges.c.account_id)
        .where(enrollment_charges.c.session_id.in_(session_ids), enrollment_charges.c.status == "debited")
        .distinct()
    )
    return list(result)


async def debited_enrollments_of_session(session: AsyncSession, session_id: uuid.UUID) -> list[uuid.UUID]:
    result = await session.scalars(
        select(enrollment_charges.c.enrollment_id).where(
            enrollment_charges.c.session_id == session_id, enrollment_charges.c.status == "debited"
        )
    )
    return list(result)


async def close_lots_of_order(
    session: AsyncSession, account_id: uuid.UUID, order_id: uuid.UUID, operation_key: str, now: datetime
) -> list[Event]:
    """Withdraw the unused tokens of an order's lots (its invoice was cancelled by a credit note): the lots end
    now, as an expiry."""
    await lock_wallet(session, account_id)
    closed = await session.execute(
        update(lots)
        .where(lots.c.order_id == order_id, lots.c.expired_at.is_(None))
        .values(expired_at=now, remaining=0)
        .returning(lots.c.id)
    )
    events: list[Event] = []
    after = await balance(session, account_id, now)
    for (lot_id,) in closed.all():
        held = await _held_by_lot(session, lot_id)
        if held > 0:
            expiry = await _expiry(session, account_id, lot_id, held, now, operation_key, after, now, order_id=order_id)
            events.append(expiry)
    return events


async def accounts_with_due_lots(session: AsyncSession, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    result = await session.scalars(
        select(lots.c.account_id)
        .where(lots.c.expired_at.is_(None), lots.c.expires_at <= now)
        .group_by(lots.c.account_id)
        .limit(limit)
    )
    return list(result)


async def warn_expiring(session: AsyncSession, now: datetime) -> list[Event]:
    """TokensExpiringSoon for each lot with tokens left that expires within 30 days, once per lot: the update
    marks it, and a second replica running the same statement finds it marked (row locks make it wait, then
    re-check). The reminder goes to whoever placed the lot's order."""
    warned = await session.execute(
        update(lots)
        .where(
            lots.c.expired_at.is_(None),
            lots.c.warned_at.is_(None),
            lots.c.remaining > 0,
            lots.c.expires_at > now,
            lots.c.expires_at <= now + EXPIRY_WARNING,
        )
        .values(warned_at=now)
        .returning(lots.c.id, lots.c.account_id, lots.c.order_id, lots.c.remaining, lots.c.expires_at)
    )
    rows = warned.all()
    buyers = await session.execute(
        select(orders.c.id, orders.c.notice).where(orders.c.id.in_({row.order_id for row in rows}))
    )
    notices = {order_id: Notice.model_validate(notice) if notice else None for order_id, notice in buyers}
    return [
        TokensExpiringSoon(
            account_id=row.account_id,
            lot_id=row.id,
            tokens=row.remaining,
            expires_at=row.expires_at,
            notice=notices.get(row.order_id),
        )
        for row in rows
    ]


def utc_now() -> datetime:
    return datetime.now(UTC)
