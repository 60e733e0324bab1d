"""Invoices and credit notes under French law: numbered, immutable, each a Factur-X PDF.

Numbers: one continuous sequence per kind and calendar year (Paris time), F2026-000123 for invoices and
A2026-000007 for credit notes ("avoir"). The next number is taken with one upsert on the (kind, year) counter row
inside the issuing transaction: the row stays locked until the commit, so concurrent issues queue behind it and
get consecutive numbers; a transaction that rolls back gives its number back with it. Hence gap-free and unique
(also enforced by unique constraints). Orders take their references (C2026-000042) the same way.

A document is rendered once, when issued, and stored with its number; nothing changes it afterwards except the
date a transfer was received on an invoice payable by transfer. A correction is a credit note referencing the
invoice (one per invoice: it cancels it in full)."""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import documents
from billing.models import documents as documents_table
from billing.pricing import PARIS, OrderLine, amounts
from billing.settings import BillingSettings
from contracts.events.billing import CreditNoteIssued, InvoiceIssued, Notice

PREFIXES = {"invoice": "F", "credit_note": "A", "order": "C"}


async def next_number(session: AsyncSession, kind: str, now: datetime) -> tuple[int, int, str]:
    """(year, sequence, number) of the next document of `kind`, taken in the caller's transaction."""
    year = now.astimezone(PARIS).year
    sequence = await session.scalar(
        text(
            "INSERT INTO document_sequences (kind, year, last) VALUES (:kind, :year, 1)"
            " ON CONFLICT (kind, year) DO UPDATE SET last = document_sequences.last + 1 RETURNING last"
        ),
        {"kind": kind, "year": year},
    )
    assert sequence is not None
    return year, sequence, f"{PREFIXES[kind]}{year}-{sequence:06d}"


def pdf_path(account_id: uuid.UUID, document_id: uuid.UUID) -> str:
    """Where the PDF is fetched on the public site (the gateway's route)."""
    return f"/api/v1/accounts/{account_id}/documents/{document_id}/pdf"


@dataclass(frozen=True)
class Issued:
    document_id: uuid.UUID
    number: str
    events: list[Any]


def _party(settings: BillingSettings) -> documents.Party:
    return documents.Party(
        name=settings.seller_name,
        address_lines=tuple(settings.seller_address.splitlines()),
        siren=settings.seller_siren,
        siret=settings.seller_siret,
        vat_number=settings.seller_vat_number,
        legal_form=settings.seller_legal_form,
        capital=settings.seller_capital,
        rcs=settings.seller_rcs,
        email=settings.seller_email,
    )


def _buyer_party(buyer: dict[str, Any]) -> documents.Party:
    return documents.Party(
        name=buyer["institution_name"],
        address_lines=tuple(line for line in (buyer.get("address") or "").splitlines() if line.strip()),
        siret=buyer.get("siret"),
        vat_number=buyer.get("vat_number"),
    )


def _document_lines(lines: list[OrderLine]) -> list[documents.Line]:
    """Paid tokens at their price; bonus tokens on a line of their own at zero."""
    shown: list[documents.Line] = []
    for line in lines:
        paid = amounts(line.net_cents, line.vat_rate_bp)
        shown.append(
            documents.Line(
                description=f"{line.label_fr} ({line.tokens} jeton{'s' if line.tokens > 1 else ''})",
                quantity=line.quantity,
                unit_net_cents=line.unit_net_cents,
                vat_rate_bp=line.vat_rate_bp,
                net_cents=paid["net"]["amount_cents"],
                vat_cents=paid["vat"]["amount_cents"],
                gross_cents=paid["gross"]["amount_cents"],
            )
        )
        if line.bonus_tokens:
            shown.append(
                documents.Line(
                    description=f"Jetons offerts ({line.label_fr})",
                    quantity=line.bonus_tokens * line.quantity,
                    unit_net_cents=0,
                    vat_rate_bp=line.vat_rate_bp,
                    net_cents=0,
                    vat_cents=0,
                    gross_cents=0,
                )
            )
    return shown


def _render(
    settings: BillingSettings,
    *,
    kind: str,
    number: str,
    issued_on: date,
    due_on: date | None,
    order: Any,
    paid: bool,
    corrected_invoice: Any = None,
    reason: str | None = None,
) -> bytes:
    lines = [OrderLine.from_json(line) for line in order.lines]
    buyer = order.buyer
    business = buyer.get("kind") == "company" and not buyer.get("public_buyer")
    document = documents.Document(
        kind=kind,
        number=number,
        issued_at=issued_on,
        sale_date=(order.paid_at or order.validated_at or order.created_at).astimezone(PARIS).date(),
        due_date=due_on,
        seller=_party(settings),
        buyer=_buyer_party(buyer),
        buyer_is_business=business,
        lines=tuple(_document_lines(lines)),
        # VAT on each rate's total base (EN 16931 BR-CO-17), as the order computed it; the lines show theirs
        totals=documents.Totals(
            order.net_cents,
            order.vat_cents,
            order.gross_cents,
            (documents.VatSubtotal(order.vat_rate_bp, order.net_cents, order.vat_cents),),
        ),
        paid=paid,
        payment_method=order.payment_method,
        iban=None if paid else settings.seller_iban,
        bic=None if paid else settings.seller_bic,
        payment_terms=_payment_terms(settings, order.payment_method, paid),
        late_penalty_text=settings.late_penalty_rate,
        recovery_indemnity_cents=settings.recovery_indemnity_cents,
        order_reference=order.reference,
        buyer_order_number=order.buyer_order_number,
        service_code=order.service_code,
        commitment_number=order.commitment_number,
        corrected_invoice_number=corrected_invoice.number if corrected_invoice is not None else None,
        corrected_invoice_issued_at=corrected_invoice.issued_at.astimezone(PARIS).date() if corrected_invoice else None,
        reason=reason,
        paid_on=(order.paid_at.astimezone(PARIS).date() if paid and order.paid_at else None),
    )
    return documents.render(document)


def _payment_terms(settings: BillingSettings, method: str, paid: bool) -> str:
    if paid:
        return "Payée par carte bancaire à la commande."
    return f"Paiement par virement à {settings.payment_terms_days} jours, sans escompte pour paiement anticipé."


async def _issue(
    session: AsyncSession,
    settings: BillingSettings,
    kind: str,
    now: datetime,
    source: Any,
    render: dict[str, Any],
    row: dict[str, Any],
) -> tuple[uuid.UUID, str]:
    """Number, render and store a document; `source` (the order, or the invoice a credit note cancels) gives its
    account, amounts and buyer. Returns its id and number."""
    year, sequence, number = await next_number(session, kind, now)
    issued_on = now.astimezone(PARIS).date()
    pdf = await asyncio.to_thread(_render, settings, kind=kind, number=number, issued_on=issued_on, **render)
    document_id = uuid.uuid4()
    await session.execute(
        insert(documents_table).values(
            id=document_id,
            kind=kind,
            number=number,
            year=year,
            sequence=sequence,
            account_id=source.account_id,
            issued_at=now,
            payment_method=source.payment_method,
            net_cents=source.net_cents,
            vat_cents=source.vat_cents,
            gross_cents=source.gross_cents,
            vat_rate_bp=source.vat_rate_bp,
            tokens=source.tokens,
            buyer=source.buyer,
            pdf=pdf,
            **row,
        )
    )
    return document_id, number


async def issue_invoice(
    session: AsyncSession, settings: BillingSettings, order: Any, now: datetime, *, paid: bool
) -> Issued:
    """The invoice of a paid (card) or validated (purchase order) order."""
    issued_on = now.astimezone(PARIS).date()
    due_on = None if paid else issued_on + timedelta(days=settings.payment_terms_days)
    render = {"due_on": due_on, "order": order, "paid": paid}
    row = {"order_id": order.id, "sale_date": issued_on, "due_date": due_on, "paid_at": now if paid else None}
    document_id, number = await _issue(session, settings, "invoice", now, order, render, row)
    event = InvoiceIssued(
        invoice_id=document_id,
        number=number,
        account_id=order.account_id,
        order_id=order.id,
        amounts=amounts(order.net_cents, order.vat_rate_bp),  # type: ignore[arg-type]
        issued_at=now,
        pdf_url=pdf_path(order.account_id, document_id),
        payment_method=order.payment_method,
        paid=paid,
        due_at=datetime.combine(due_on, datetime.min.time(), tzinfo=PARIS) if due_on else None,
        tokens=order.tokens,
        notice=Notice.model_validate(order.notice) if order.notice else None,
    )
    return Issued(document_id, number, [event])


async def issue_credit_note(
    session: AsyncSession, settings: BillingSettings, invoice: Any, order: Any, reason: str, now: datetime
) -> Issued:
    """A credit note cancelling `invoice` in full (the caller checked there is none yet; a unique index too)."""
    render = {
        "due_on": None,
        "order": order,
        "paid": invoice.paid_at is not None,
        "corrected_invoice": invoice,
        "reason": reason,
    }
    row = {"order_id": invoice.order_id, "invoice_id": invoice.id, "sale_date": invoice.sale_date, "reason": reason}
    document_id, number = await _issue(session, settings, "credit_note", now, invoice, render, row)
    event = CreditNoteIssued(
        invoice_id=invoice.id,
        credit_note_id=document_id,
        number=number,
        invoice_number=invoice.number,
        account_id=invoice.account_id,
        amounts=amounts(invoice.net_cents, invoice.vat_rate_bp),  # type: ignore[arg-type]
        reason=reason,
        issued_at=now,
        pdf_url=pdf_path(invoice.account_id, document_id),
        notice=Notice.model_validate(order.notice) if order.notice else None,
    )
    return Issued(document_id, number, [event])


async def mark_paid(session: AsyncSession, document_id: uuid.UUID, at: datetime) -> bool:
    """Record the transfer received for an invoice; False when it is not an unpaid invoice."""
    result = await session.execute(
        update(documents_table)
        .where(
            documents_table.c.id == document_id,
            documents_table.c.kind == "invoice",
            documents_table.c.paid_at.is_(None),
        )
        .values(paid_at=at)
        .returning(documents_table.c.id)
    )
    return result.one_or_none() is not None


async def find(session: AsyncSession, document_id: uuid.UUID) -> Any:
    return (await session.execute(select(documents_table).where(documents_table.c.id == document_id))).one_or_none()
