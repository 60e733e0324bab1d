"""Billing's PDFs (invoices, credit notes), fetched from its internal API when a mail attaching one is sent.

A document billing answers 404 for will never come: `DocumentNotFound` fails the delivery at once. Anything else
(billing down or slow, a 5xx, a refused token, a body that is not a PDF) fails only this attempt: the delivery
loop tries again with its backoff, and billing's answer then is what counts."""

import uuid

import httpx

from notifier.service import Undeliverable
from notifier.settings import NotifierSettings
from servicekit.http import INTERNAL_TOKEN_HEADER


class DocumentNotFound(Undeliverable):
    """Billing does not know the document: the mail that was to attach it cannot be sent."""


class BillingDocuments:
    def __init__(self, base_url: str, internal_token: str | None, timeout: float) -> None:
        self.base_url = base_url
        self.headers = {INTERNAL_TOKEN_HEADER: internal_token} if internal_token else {}
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> "BillingDocuments":
        token = settings.internal_token.get_secret_value() if settings.internal_token else None
        return cls(settings.billing_url, token, settings.billing_timeout_seconds)

    async def pdf(self, document_id: uuid.UUID) -> bytes:
        # a client per fetch: mails with attachments are few, and nothing outlives the delivery loop's turn
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout) as client:
            response = await client.get(f"/internal/documents/{document_id}/pdf")
        if response.status_code == 404:
            raise DocumentNotFound(f"billing has no document {document_id}")
        response.raise_for_status()
        if not response.content.startswith(b"%PDF-"):
            raise ValueError(f"billing's document {document_id} is not a PDF")
        return response.content
