"""Events of the billing service: token wallet (`billing.wallet`) and invoices (`billing.invoice`)."""

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event, NonEmptyStr, UtcDatetime, VatAmounts
from contracts.base import Notice as Notice  # re-exported: defined once in contracts.base, shared with enrollment

DebitRejection = Literal["insufficient_balance", "account_unverified", "account_closed", "unknown_account"]
PaymentMethod = Literal["card", "purchase_order"]


class LotTokens(BaseModel):
    """Tokens taken from (or given back to) one lot."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    lot_id: uuid.UUID = Field(description="Id of the lot.")
    tokens: int = Field(ge=1, description="Number of tokens.")
    expires_at: UtcDatetime = Field(description="When the lot expires (UTC).")


class WalletEvent(Event):
    topic: ClassVar[str] = "billing.wallet"
    key_field: ClassVar[str] = "account_id"

    account_id: uuid.UUID = Field(description="Id of the account owning the wallet; the Kafka key.")


class TokenPurchased(WalletEvent):
    """An order was paid (card) or validated (purchase order): a new lot of tokens is credited."""

    type: Literal["TokenPurchased"] = "TokenPurchased"
    order_id: uuid.UUID = Field(description="Id of the order.")
    lot_id: uuid.UUID = Field(description="Id of the credited token lot.")
    tokens: int = Field(ge=1, description="Number of tokens bought.")
    bonus_tokens: int = Field(0, ge=0, description="Free tokens added to the lot by the price list.")
    amounts: VatAmounts = Field(description="Price paid, with VAT.")
    payment_method: PaymentMethod = Field(description="How the order is paid.")
    expires_at: UtcDatetime = Field(description="When the lot's unused tokens expire (UTC).")
    balance_after: int = Field(ge=0, description="Usable tokens of the account after the credit.")
    enrol_session_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=10,
        description="Sessions the purchase order named: enrollment requests these enrolments once the order's "
        "tokens are credited (set on the order's last TokenPurchased only; empty otherwise).",
    )
    notice: Notice | None = Field(
        None, description="The manager who sent the order, told of those enrolments; None when unknown or unnamed."
    )


class TokensDebited(WalletEvent):
    """Tokens were debited for an enrolment (earliest-expiring lot first)."""

    type: Literal["TokensDebited"] = "TokensDebited"
    enrollment_id: uuid.UUID = Field(description="Id of the enrolment paid for.")
    session_id: uuid.UUID = Field(description="Id of the session enrolled in.")
    lot_id: uuid.UUID = Field(description="Id of the lot the tokens were taken from.")
    tokens: int = Field(1, ge=1, description="Number of tokens debited.")
    balance_after: int = Field(ge=0, description="Usable tokens of the account after the debit.")
    lots: list[LotTokens] = Field(
        default_factory=list,
        description="Every lot the tokens were taken from, earliest-expiring first (`lot_id` is the first).",
    )


class TokenDebitRejected(WalletEvent):
    """The debit for an enrolment was refused; nothing was debited."""

    type: Literal["TokenDebitRejected"] = "TokenDebitRejected"
    enrollment_id: uuid.UUID = Field(description="Id of the enrolment that could not be paid for.")
    session_id: uuid.UUID = Field(description="Id of the session.")
    reason: DebitRejection = Field(description="Why the debit was refused.")


class TokensRefunded(WalletEvent):
    """Tokens debited for an enrolment were given back (cancellation before the cut-off, session cancelled)."""

    type: Literal["TokensRefunded"] = "TokensRefunded"
    enrollment_id: uuid.UUID = Field(description="Id of the cancelled enrolment.")
    session_id: uuid.UUID = Field(description="Id of the session.")
    lot_id: uuid.UUID = Field(description="Id of the lot the tokens went back to.")
    tokens: int = Field(1, ge=1, description="Number of tokens refunded.")
    balance_after: int = Field(ge=0, description="Usable tokens of the account after the refund.")
    lots: list[LotTokens] = Field(
        default_factory=list, description="Every lot the tokens went back to, each with its own expiry."
    )


class TokensExpired(WalletEvent):
    """The unused tokens of a lot expired."""

    type: Literal["TokensExpired"] = "TokensExpired"
    lot_id: uuid.UUID = Field(description="Id of the expired lot.")
    tokens: int = Field(ge=1, description="Number of unused tokens lost.")
    expired_at: UtcDatetime = Field(description="When the lot expired (UTC).")
    balance_after: int = Field(ge=0, description="Usable tokens of the account after the expiry.")


class TokensExpiringSoon(WalletEvent):
    """A lot still holds unused tokens close to its expiry; the account manager is reminded."""

    type: Literal["TokensExpiringSoon"] = "TokensExpiringSoon"
    lot_id: uuid.UUID = Field(description="Id of the lot.")
    tokens: int = Field(ge=1, description="Number of unused tokens in the lot.")
    expires_at: UtcDatetime = Field(description="When the lot expires (UTC).")
    notice: Notice | None = Field(None, description="Who bought the lot and is reminded; None when unknown.")


class PurchaseOrderReceived(WalletEvent):
    """A manager sent a purchase order (pay on invoice); an organiser is to validate or refuse it."""

    type: Literal["PurchaseOrderReceived"] = "PurchaseOrderReceived"
    order_id: uuid.UUID = Field(description="Id of the order.")
    reference: NonEmptyStr = Field(description="Visiopass reference of the order, e.g. C2026-000042.")
    buyer_order_number: NonEmptyStr = Field(description="The buyer's own purchase-order number.")
    institution_name: NonEmptyStr = Field(description="Name of the buying institution.")
    tokens: int = Field(ge=1, description="Tokens ordered, bonus included.")
    amounts: VatAmounts = Field(description="Price of the order, with VAT.")
    received_at: UtcDatetime = Field(description="When the order was received (UTC).")
    notice: Notice | None = Field(None, description="The manager who sent it (told that it was received).")


class PurchaseOrderRefused(WalletEvent):
    """An organiser refused a purchase order; no token is credited and nothing is owed."""

    type: Literal["PurchaseOrderRefused"] = "PurchaseOrderRefused"
    order_id: uuid.UUID = Field(description="Id of the order.")
    reference: NonEmptyStr = Field(description="Visiopass reference of the order.")
    reason: NonEmptyStr = Field(description="Why, in the organiser's words.")
    refused_at: UtcDatetime = Field(description="When it was refused (UTC).")
    notice: Notice | None = Field(None, description="The manager who sent it.")


class InvoiceEvent(Event):
    topic: ClassVar[str] = "billing.invoice"
    key_field: ClassVar[str] = "invoice_id"

    invoice_id: uuid.UUID = Field(description="Id of the invoice; the Kafka key.")


class InvoiceIssued(InvoiceEvent):
    """An invoice was issued for an order; its PDF is ready to download."""

    type: Literal["InvoiceIssued"] = "InvoiceIssued"
    number: NonEmptyStr = Field(description="Legal, sequential invoice number, e.g. VP-2025-000123.")
    account_id: uuid.UUID = Field(description="Id of the invoiced account.")
    order_id: uuid.UUID = Field(description="Id of the invoiced order.")
    amounts: VatAmounts = Field(description="Invoiced amounts, with VAT.")
    issued_at: UtcDatetime = Field(description="Date of issue (UTC).")
    pdf_url: NonEmptyStr = Field(
        description="Path of the PDF on the public site, relative to its base URL, e.g. /invoices/<id>.pdf."
    )
    payment_method: PaymentMethod = Field("card", description="How the order is paid.")
    paid: bool = Field(True, description="True when already paid (card); False when payable by transfer.")
    due_at: UtcDatetime | None = Field(None, description="When payment is due, for an invoice not yet paid (UTC).")
    tokens: int | None = Field(None, ge=1, description="Tokens the order credited, bonus tokens included.")
    notice: Notice | None = Field(None, description="Who is sent the invoice.")


class CreditNoteIssued(InvoiceEvent):
    """A credit note cancelled all or part of an invoice; `invoice_id` is the invoice it corrects."""

    type: Literal["CreditNoteIssued"] = "CreditNoteIssued"
    credit_note_id: uuid.UUID = Field(description="Id of the credit note.")
    number: NonEmptyStr = Field(description="Legal, sequential credit-note number, e.g. A2026-000007.")
    invoice_number: NonEmptyStr = Field(description="Number of the invoice it corrects.")
    account_id: uuid.UUID = Field(description="Id of the account.")
    amounts: VatAmounts = Field(description="Credited amounts, with VAT.")
    reason: NonEmptyStr = Field(description="Why the invoice is corrected.")
    issued_at: UtcDatetime = Field(description="Date of issue (UTC).")
    pdf_url: NonEmptyStr = Field(description="Path of the PDF on the public site, relative to its base URL.")
    notice: Notice | None = Field(None, description="Who is sent the credit note.")
