"""Internal HTTP API of accounts (called by the gateway)."""

import uuid
from datetime import timedelta
from typing import Annotated, Literal

from litestar import Controller, post
from pydantic import BaseModel, EmailStr, Field, StringConstraints

from accounts import service as accounts
from accounts.settings import AccountsSettings
from servicekit.http import ProblemError
from servicekit.runtime import Service

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SignUpRequest(BaseModel):
    institution_name: Name
    institution_kind: Literal["school", "company", "other"]
    contact_name: Name
    email: EmailStr
    password: Annotated[str, Field(min_length=12, max_length=1024)]
    language: Literal["fr", "en"] = "fr"


class SignUpResponse(BaseModel):
    account_id: uuid.UUID
    status: Literal["pending_verification"] = "pending_verification"


class VerifyRequest(BaseModel):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class VerifyResponse(BaseModel):
    account_id: uuid.UUID
    status: Literal["verified"] = "verified"


class AccountsController(Controller):
    path = "/internal/accounts"

    @post("/", status_code=201)
    async def sign_up(self, data: SignUpRequest, service: Service) -> SignUpResponse:
        settings = service.settings
        assert isinstance(settings, AccountsSettings)
        try:
            async with service.db.transaction() as session:
                account_id = await accounts.sign_up(
                    session,
                    service.outbox,
                    accounts.SignUp(**data.model_dump()),
                    verification_ttl=timedelta(hours=settings.verification_ttl_hours),
                )
        except accounts.EmailTaken as exc:
            raise ProblemError(
                409, exc.code, "Email already registered", "An account already uses this email address."
            ) from exc
        return SignUpResponse(account_id=account_id)

    @post("/verification", status_code=200)
    async def verify(self, data: VerifyRequest, service: Service) -> VerifyResponse:
        try:
            async with service.db.transaction() as session:
                account_id = await accounts.verify_email(session, service.outbox, data.token)
        except accounts.InvalidToken as exc:
            raise ProblemError(
                400, exc.code, "Invalid or expired link", "This verification link is invalid, used or expired."
            ) from exc
        return VerifyResponse(account_id=account_id)
