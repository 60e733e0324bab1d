"""Events of the billing service: token wallet (`billing.wallet`) and invoices (`billing.invoice`)."""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Event, NonEmptyStr, UtcDatetime, VatAmounts

DebitRejection = Literal["insufficient_balance", "account_unverified", "account_closed", "unknown_account"]


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
    payment_method: Literal["card", "purchase_order"] = Field(description="How the order is paid.")
    expires_at: UtcDatetime = Field(description="When the lot's unused tokens expire (UTC).")
    balance_after: int = Field(ge=0, description="Usable tokens of the account after the credit.")


class TokensDebited(WalletEvent):
    """Tokens were debited for an enrolment (earliest-expiring lot first)."""

    type: Literal["TokensDebited"] = "TokensDebited"
    enrollment_id: uuid.UUID = Field(description="Id of the enrolment paid for.")
    session_id: uuid.UUID = Field(description="Id of the session enrolled in.")
    lot_id: uuid.UUID = Field(description="Id of the lot the tokens were taken from.")
    tokens: int = Field(1, ge=1, description="Number of tokens debited.")
    balance_after: int = Field(ge=0, description="Usable tokens of the account after the debit.")


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
