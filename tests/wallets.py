"""Billing wallets made directly in billing's database, for tests and benches that need funded accounts without the
purchase flow: `fund` makes new funded accounts, `paid_order` gives an account one more lot."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billing import wallet
from billing.models import orders
from servicekit.db import Database


async def paid_order(
    session: AsyncSession, account_id: uuid.UUID, tokens: int, expires_at: datetime, now: datetime
) -> uuid.UUID:
    """A paid order of `tokens` and its lot (what orders.settle_payment does, without the invoice); the lot's id.
    The account's wallet must exist."""
    order_id = uuid.uuid4()
    await session.execute(
        orders.insert().values(
            id=order_id,
            reference=f"T-{order_id.hex[:12]}",
            account_id=account_id,
            status="paid",
            payment_method="card",
            lines=[],
            net_cents=0,
            vat_cents=0,
            gross_cents=0,
            vat_rate_bp=2000,
            tokens=tokens,
            bonus_tokens=0,
            buyer={"institution_name": "Lycée Test"},
            created_at=now,
            updated_at=now,
        )
    )
    lot_id, _ = await wallet.credit(
        session,
        account_id=account_id,
        order_id=order_id,
        tokens=tokens,
        expires_at=expires_at,
        now=now,
        operation_key=f"order:{order_id}",
    )
    return lot_id


async def fund(url: str, accounts: int, tokens_each: int) -> list[uuid.UUID]:
    """Verified accounts, each with one lot of `tokens_each` tokens (as a paid order would leave them)."""
    db = Database(url)
    now = datetime.now(UTC)
    funded = []
    try:
        for _ in range(accounts):
            account_id = uuid.uuid4()
            async with db.transaction() as session:
                await wallet.ensure_wallet(session, account_id)
                await session.execute(
                    text("UPDATE wallets SET verified_at = now() WHERE account_id = :a"), {"a": account_id}
                )
                await paid_order(session, account_id, tokens_each, now + timedelta(days=700), now)
            funded.append(account_id)
    finally:
        await db.dispose()
    return funded
