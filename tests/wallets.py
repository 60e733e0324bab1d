"""Billing wallets made directly in billing's database, for tests and benches that need funded accounts without the
purchase flow."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from billing import wallet
from billing.models import orders
from servicekit.db import Database


async def fund(url: str, accounts: int, tokens_each: int) -> list[uuid.UUID]:
    """Verified accounts, each with one lot of `tokens_each` tokens (as a paid order would leave them)."""
    db = Database(url)
    now = datetime.now(UTC)
    funded = []
    try:
        for _ in range(accounts):
            account_id = uuid.uuid4()
            order_id = uuid.uuid4()
            async with db.transaction() as session:
                await wallet.ensure_wallet(session, account_id)
                await session.execute(
                    text("UPDATE wallets SET verified_at = now() WHERE account_id = :a"), {"a": account_id}
                )
                await session.execute(
                    orders.insert().values(
                        id=order_id,
                        reference=f"B-{order_id.hex[:12]}",
                        account_id=account_id,
                        status="paid",
                        payment_method="card",
                        lines=[],
                        net_cents=0,
                        vat_cents=0,
                        gross_cents=0,
                        vat_rate_bp=2000,
                        tokens=tokens_each,
                        bonus_tokens=0,
                        buyer={"institution_name": "Bench"},
                        created_at=now,
                        updated_at=now,
                    )
                )
                await wallet.credit(
                    session,
                    account_id=account_id,
                    order_id=order_id,
                    tokens=tokens_each,
                    expires_at=now + timedelta(days=700),
                    now=now,
                    operation_key=f"order:{order_id}",
                )
            funded.append(account_id)
    finally:
        await db.dispose()
    return funded
