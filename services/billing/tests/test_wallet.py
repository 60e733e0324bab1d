"""The wallet on a real PostgreSQL: lots, the ledger, debits, refunds and expiry (billing.wallet, billing.jobs)."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import case, func, select, text
from wallets import paid_order

from billing import jobs, wallet
from billing.models import enrollment_charges, ledger, lots, wallets
from contracts.events.billing import (
    TokenDebitRejected,
    TokensDebited,
    TokensExpired,
    TokensExpiringSoon,
    TokensRefunded,
)
from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=25)
    await upgrade(database, "billing")
    yield database
    await database.dispose()


async def new_account(db: Database, *, verified: bool = True, closed: bool = False) -> uuid.UUID:
    account_id = uuid.uuid4()
    async with db.transaction() as session:
        await session.execute(
            wallets.insert().values(
                account_id=account_id,
                institution_name="Lycée Test",
                verified_at=NOW if verified else None,
                closed_at=NOW if closed else None,
            )
        )
    return account_id


async def buy(db: Database, account_id: uuid.UUID, tokens: int, expires_at: datetime, now: datetime = NOW) -> uuid.UUID:
    """A paid order of `tokens` and its lot (what orders.settle_payment does, without the invoice)."""
    async with db.transaction() as session:
        return await paid_order(session, account_id, tokens, expires_at, now)


async def debit(db: Database, account_id: uuid.UUID, tokens: int = 1, now: datetime = NOW, enrollment_id=None):  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        return await wallet.debit_for_enrollment(
            session,
            account_id=account_id,
            enrollment_id=enrollment_id or uuid.uuid4(),
            session_id=uuid.uuid4(),
            tokens=tokens,
            now=now,
        )


async def refund(db: Database, enrollment_id: uuid.UUID, now: datetime = NOW):  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        return await wallet.refund_enrollment(session, enrollment_id, now)


async def balance(db: Database, account_id: uuid.UUID, now: datetime = NOW) -> int:
    async with db.transaction() as session:
        return await wallet.balance(session, account_id, now)


async def ledger_balance(db: Database, account_id: uuid.UUID) -> int:
    """credits - debits + refunds - expiries."""
    signed = case((ledger.c.kind.in_(("credit", "refund")), ledger.c.tokens), else_=-ledger.c.tokens)
    async with db.transaction() as session:
        return int(
            await session.scalar(select(func.coalesce(func.sum(signed), 0)).where(ledger.c.account_id == account_id))
        )


async def live_lots_sum(db: Database, account_id: uuid.UUID) -> int:
    async with db.transaction() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(lots.c.remaining), 0)).where(
                lots.c.account_id == account_id, lots.c.expired_at.is_(None)
            )
        )
    return int(total)


async def test_debits_take_the_earliest_expiring_lot_first(db: Database) -> None:
    account = await new_account(db)
    late = await buy(db, account, 2, NOW + timedelta(days=300))
    early = await buy(db, account, 1, NOW + timedelta(days=10))
    (first,) = await debit(db, account)
    assert isinstance(first, TokensDebited) and first.lot_id == early and first.balance_after == 2
    (second,) = await debit(db, account, tokens=2)
    assert isinstance(second, TokensDebited) and [part.lot_id for part in second.lots] == [late]
    assert second.balance_after == 0


async def test_a_premium_debit_spans_lots_in_expiry_order(db: Database) -> None:
    account = await new_account(db)
    early = await buy(db, account, 1, NOW + timedelta(days=5))
    late = await buy(db, account, 3, NOW + timedelta(days=50))
    (event,) = await debit(db, account, tokens=3)
    assert isinstance(event, TokensDebited)
    assert [(part.lot_id, part.tokens) for part in event.lots] == [(early, 1), (late, 2)]
    assert event.balance_after == 1 == await balance(db, account)


async def test_a_lot_is_usable_until_its_expiry_instant_and_not_at_it(db: Database) -> None:
    account = await new_account(db)
    expires_at = NOW + timedelta(days=1)
    lot = await buy(db, account, 2, expires_at)
    (before,) = await debit(db, account, now=expires_at - timedelta(microseconds=1))
    assert isinstance(before, TokensDebited) and before.lot_id == lot
    expired, rejected = await debit(db, account, now=expires_at)
    assert isinstance(expired, TokensExpired) and expired.lot_id == lot and expired.tokens == 1
    assert isinstance(rejected, TokenDebitRejected) and rejected.reason == "insufficient_balance"
    assert await balance(db, account, expires_at) == 0 == await ledger_balance(db, account)


async def test_a_refund_goes_back_to_the_lots_it_came_from_with_their_expiry(db: Database) -> None:
    account = await new_account(db)
    early_expiry = NOW + timedelta(days=5)
    early = await buy(db, account, 1, early_expiry)
    await buy(db, account, 5, NOW + timedelta(days=500))
    enrollment = uuid.uuid4()
    await debit(db, account, tokens=2, enrollment_id=enrollment)
    (refunded,) = await refund(db, enrollment)
    assert isinstance(refunded, TokensRefunded) and refunded.tokens == 2 and refunded.balance_after == 6
    assert refunded.lots[0].lot_id == early and refunded.lots[0].expires_at == early_expiry
    async with db.transaction() as session:
        remaining = await session.scalar(select(lots.c.remaining).where(lots.c.id == early))
    assert remaining == 1
    assert await refund(db, enrollment) == []  # a second refund: nothing
    assert await balance(db, account) == 6 == await ledger_balance(db, account)


async def test_a_refund_to_a_lot_expired_meanwhile_expires_at_once(db: Database) -> None:
    account = await new_account(db)
    expires_at = NOW + timedelta(days=1)
    await buy(db, account, 1, expires_at)
    enrollment = uuid.uuid4()
    await debit(db, account, enrollment_id=enrollment)
    later = expires_at + timedelta(days=1)
    async with db.transaction() as session:
        await jobs.expire_and_warn(session, Outbox("billing"), later)
    events = await refund(db, enrollment, now=later)
    assert [type(event) for event in events] == [TokensRefunded, TokensExpired]
    assert await balance(db, account, later) == 0 == await ledger_balance(db, account)


async def test_a_redelivered_enrolment_is_debited_once(db: Database) -> None:
    account = await new_account(db)
    await buy(db, account, 3, NOW + timedelta(days=30))
    enrollment = uuid.uuid4()
    (first,) = await debit(db, account, enrollment_id=enrollment)
    assert isinstance(first, TokensDebited)
    assert await debit(db, account, enrollment_id=enrollment) == []
    assert await balance(db, account) == 2


@pytest.mark.parametrize(
    ("verified", "closed", "reason"),
    [(False, False, "account_unverified"), (True, True, "account_closed")],
)
async def test_debits_are_refused_to_unverified_and_closed_accounts(
    db: Database, verified: bool, closed: bool, reason: str
) -> None:
    account = await new_account(db, verified=verified, closed=closed)
    await buy(db, account, 3, NOW + timedelta(days=30))
    (event,) = await debit(db, account)
    assert isinstance(event, TokenDebitRejected) and event.reason == reason
    assert await balance(db, account) == 3


async def test_an_account_billing_never_heard_of_is_refused(db: Database) -> None:
    (event,) = await debit(db, uuid.uuid4())
    assert isinstance(event, TokenDebitRejected) and event.reason == "unknown_account"


async def test_fifty_concurrent_enrolments_on_ten_tokens_make_ten_debits(db: Database) -> None:
    account = await new_account(db)
    await buy(db, account, 4, NOW + timedelta(days=30))
    await buy(db, account, 6, NOW + timedelta(days=60))
    outcomes = await asyncio.gather(*(debit(db, account) for _ in range(50)))
    events = [event for outcome in outcomes for event in outcome]
    assert sum(isinstance(event, TokensDebited) for event in events) == 10
    assert sum(isinstance(event, TokenDebitRejected) for event in events) == 40
    assert await balance(db, account) == 0 == await ledger_balance(db, account) == await live_lots_sum(db, account)
    async with db.transaction() as session:
        charges = dict(
            (
                await session.execute(
                    select(enrollment_charges.c.status, func.count()).group_by(enrollment_charges.c.status)
                )
            )
            .tuples()
            .all()
        )
        debits = await session.scalar(select(func.count()).where(ledger.c.kind == "debit"))
    assert charges == {"debited": 10, "rejected": 40} and debits == 10


async def test_the_ledger_is_append_only(db: Database) -> None:
    account = await new_account(db)
    await buy(db, account, 1, NOW + timedelta(days=30))
    with pytest.raises(Exception, match="append-only"):
        async with db.transaction() as session:
            await session.execute(text("UPDATE ledger SET tokens = 5"))


async def test_expiry_and_warning_happen_once_even_with_two_replicas(db: Database) -> None:
    account = await new_account(db)
    await buy(db, account, 2, NOW + timedelta(days=1))  # due at the run below
    await buy(db, account, 3, NOW + timedelta(days=40))  # within 30 days of the run below
    await buy(db, account, 4, NOW + timedelta(days=400))  # neither
    run_at = NOW + timedelta(days=12)
    outbox = Outbox("billing")

    async def replica() -> list[object]:
        async with db.transaction() as session:
            await jobs.expire_and_warn(session, outbox, run_at)
            return []

    await asyncio.gather(replica(), replica())
    await replica()  # a rerun finds nothing left
    async with db.transaction() as session:
        published = (await session.execute(text("SELECT value FROM outbox ORDER BY id"))).scalars().all()
    kinds = [event.decode() if isinstance(event, bytes) else str(event) for event in published]
    assert sum('"TokensExpired"' in kind for kind in kinds) == 1
    assert sum('"TokensExpiringSoon"' in kind for kind in kinds) == 1
    assert await balance(db, account, run_at) == 7 == await ledger_balance(db, account)


async def test_the_warning_names_the_lot_and_its_tokens(db: Database) -> None:
    account = await new_account(db)
    lot = await buy(db, account, 3, NOW + timedelta(days=20))
    async with db.transaction() as session:
        (event,) = await wallet.warn_expiring(session, NOW)
    assert isinstance(event, TokensExpiringSoon) and event.lot_id == lot and event.tokens == 3


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(1, 5), st.integers(1, 60)),
        st.tuples(st.just("debit"), st.integers(1, 3), st.just(0)),
        st.tuples(st.just("refund"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 20), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
async def test_balance_is_the_ledger_and_the_live_lots_whatever_happens(db: Database, operations) -> None:  # type: ignore[no-untyped-def]
    account = await new_account(db)
    now = NOW
    debited: list[uuid.UUID] = []
    for operation, amount, days in operations:
        if operation == "buy":
            await buy(db, account, amount, now + timedelta(days=days), now=now)
        elif operation == "debit":
            enrollment = uuid.uuid4()
            events = await debit(db, account, tokens=amount, now=now, enrollment_id=enrollment)
            if any(isinstance(event, TokensDebited) for event in events):
                debited.append(enrollment)
        elif operation == "refund" and debited:
            await refund(db, debited[amount % len(debited)], now=now)
        elif operation == "wait":
            now += timedelta(days=amount)
            async with db.transaction() as session:
                await jobs.expire_and_warn(session, Outbox("billing"), now)
        current = await balance(db, account, now)
        assert current == await ledger_balance(db, account) == await live_lots_sum(db, account)
        assert current >= 0


async def test_batches_locking_their_wallets_first_never_deadlock(db: Database) -> None:
    """Two consumer transactions (two partitions, or two replicas) debiting the same accounts in opposite orders:
    without the batch's wallets locked first, in one order, PostgreSQL has to abort one of them (a deadlock)."""
    a, b = await new_account(db), await new_account(db)
    for account in (a, b):
        await buy(db, account, 10, NOW + timedelta(days=30))

    async def batch(accounts: list[uuid.UUID], lock_first: bool) -> None:
        async with db.transaction() as session:
            if lock_first:
                await wallet.lock_wallets(session, accounts)
            for account in accounts:
                await wallet.debit_for_enrollment(
                    session, account_id=account, enrollment_id=uuid.uuid4(), session_id=uuid.uuid4(), tokens=1, now=NOW
                )
                await asyncio.sleep(0.2)  # the other batch takes its first lock meanwhile

    with pytest.raises(Exception, match="deadlock"):
        await asyncio.gather(batch([a, b], lock_first=False), batch([b, a], lock_first=False))
    await asyncio.gather(batch([a, b], lock_first=True), batch([b, a], lock_first=True))
    for account in (a, b):
        assert await balance(db, account) == await ledger_balance(db, account) == await live_lots_sum(db, account)


async def test_a_batch_of_debits_does_what_the_same_debits_one_by_one_do(db: Database) -> None:
    """The consumer applies a batch of requests with `debit_many`; its careful mode (and any single call) one by
    one: both must leave the same wallets and say the same things."""

    async def world() -> dict[str, uuid.UUID]:
        rich, unverified, closed = await new_account(db), await new_account(db, verified=False), await new_account(db)
        async with db.transaction() as session:
            await session.execute(wallets.update().where(wallets.c.account_id == closed).values(closed_at=NOW))
        await buy(db, rich, 1, NOW - timedelta(days=400), now=NOW - timedelta(days=500))  # due: not expired yet
        await buy(db, rich, 2, NOW + timedelta(days=10))
        await buy(db, rich, 3, NOW + timedelta(days=20))
        await buy(db, closed, 5, NOW + timedelta(days=20))
        return {"rich": rich, "unverified": unverified, "closed": closed, "unknown": uuid.uuid4()}

    script = [("rich", 1), ("rich", 2), ("unverified", 1), ("rich", 3), ("closed", 1), ("rich", 1), ("unknown", 1)]

    async def outcomes(accounts: dict[str, uuid.UUID], batch: bool) -> list[tuple[object, ...]]:
        requests = [wallet.DebitRequest(accounts[name], uuid.uuid4(), uuid.uuid4(), tokens) for name, tokens in script]
        requests.append(requests[0])  # the same enrolment asked again: nothing more
        async with db.transaction() as session:
            if batch:
                events = [event for outcome in await wallet.debit_many(session, requests, NOW) for event in outcome]
            else:
                events = []
                for request in requests:
                    events += await wallet.debit_for_enrollment(
                        session,
                        account_id=request.account_id,
                        enrollment_id=request.enrollment_id,
                        session_id=request.session_id,
                        tokens=request.tokens,
                        now=NOW,
                    )
        names = {account_id: name for name, account_id in accounts.items()}
        said = [
            (
                type(event).__name__,
                names[event.account_id],
                getattr(event, "tokens", None),
                getattr(event, "balance_after", None),
                getattr(event, "reason", None),
                tuple(part.tokens for part in getattr(event, "lots", [])),
            )
            for event in events
        ]
        kept = [
            (name, await balance(db, account), await ledger_balance(db, account), await live_lots_sum(db, account))
            for name, account in accounts.items()
        ]
        return said + kept

    one_by_one = await outcomes(await world(), batch=False)
    assert one_by_one[:7] == [
        ("TokensExpired", "rich", 1, 5, None, ()),
        ("TokensDebited", "rich", 1, 4, None, (1,)),
        ("TokensDebited", "rich", 2, 2, None, (1, 1)),  # the rest of the first lot, then the next one
        ("TokenDebitRejected", "unverified", None, None, "account_unverified", ()),
        ("TokenDebitRejected", "rich", None, None, "insufficient_balance", ()),
        ("TokenDebitRejected", "closed", None, None, "account_closed", ()),
        ("TokensDebited", "rich", 1, 1, None, (1,)),
    ]
    assert await outcomes(await world(), batch=True) == one_by_one
