"""The PDFs mails attach, fetched from their owner's internal API when the mail is sent: billing's invoices and
credit notes (GET /internal/documents/{id}/pdf), enrollment's attendance certificates
(GET /internal/certificates/{id}/pdf). A delivery's reference names its owner (`service.attachment`'s `source`).

A document its owner answers 404 for will never come: `DocumentNotFound` fails the delivery at once. Anything else
(the owner down or slow, a 5xx, a refused token, a body that is not a PDF) fails only this attempt: the delivery
loop tries again with its backoff, and the owner's answer then is what counts."""

import uuid
from typing import ClassVar, Self

import httpx

from notifier.service import BILLING, ENROLLMENT, Documents, Undeliverable
from notifier.settings import NotifierSettings
from servicekit.http import INTERNAL_TOKEN_HEADER


class DocumentNotFound(Undeliverable):
    """The owner does not know the document: the mail that was to attach it cannot be sent."""


class InternalDocuments:
    """One service's PDFs, from its internal API (`path`, with `{id}`), behind the internal token."""

    source: ClassVar[str]
    path: ClassVar[str]

    def __init__(self, base_url: str, internal_token: str | None, timeout: float) -> None:
        self.base_url = base_url
        self.headers = {INTERNAL_TOKEN_HEADER: internal_token} if internal_token else {}
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> Self:
        token = settings.internal_token.get_secret_value() if settings.internal_token else None
        return cls(getattr(settings, f"{cls.source}_url"), token, getattr(settings, f"{cls.source}_timeout_seconds"))

    async def pdf(self, document_id: uuid.UUID, source: str = BILLING) -> bytes:
        if source != self.source:  # a misrouted reference: wait (tried again) rather than attach the wrong file
            raise RuntimeError(f"{self.source} does not serve {source}'s documents")
        # a client per fetch: mails with attachments are few, and nothing outlives the delivery loop's turn
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout) as client:
            response = await client.get(self.path.format(id=document_id))
        if response.status_code == 404:
            raise DocumentNotFound(f"{self.source} has no document {document_id}")
        response.raise_for_status()
        if not response.content.startswith(b"%PDF-"):
            raise ValueError(f"{self.source}'s document {document_id} is not a PDF")
        return response.content


class BillingDocuments(InternalDocuments):
    """Invoices and credit notes (the billing mails)."""

    source = BILLING
    path = "/internal/documents/{id}/pdf"


class EnrollmentDocuments(InternalDocuments):
    """Attendance certificates (the thank-you mail after a session, notifier.participation_mails)."""

    source = ENROLLMENT
    path = "/internal/certificates/{id}/pdf"


class DocumentSources:
    """Each reference's document fetched from its own source."""

    def __init__(self, *sources: InternalDocuments) -> None:
        self.sources: dict[str, Documents] = {each.source: each for each in sources}

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> Self:
        return cls(BillingDocuments.from_settings(settings), EnrollmentDocuments.from_settings(settings))

    async def pdf(self, document_id: uuid.UUID, source: str = BILLING) -> bytes:
        owner = self.sources.get(source)
        if owner is None:
            raise RuntimeError(f"no document source is configured for {source}'s documents")
        return await owner.pdf(document_id, source)
