"""The refusals of the accounts service. Each carries its HTTP status and a stable code, so the internal API
turns any of them into problem details in one place (`api.problem`)."""

import math
from datetime import timedelta
from typing import Any, ClassVar

from accounts.validators import ValidationFailure, normalise_name


class AccountsError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "accounts_error"
    title: ClassVar[str] = "Refused"
    detail: ClassVar[str | None] = None

    def members(self) -> dict[str, Any]:
        """Extra members of the problem details."""
        return {}

    def message(self) -> str | None:
        return self.detail


class NotFound(AccountsError):
    status, code, title = 404, "not_found", "Not found"


class Forbidden(AccountsError):
    status, code, title = 403, "forbidden", "Forbidden"
    detail = "Only the account's managers can do this."


class OrganisersOnly(Forbidden):
    detail = "Only organisers can do this."


class AccountClosed(AccountsError):
    status, code, title = 409, "account_closed", "Account closed"
    detail = "This account is closed."


class EmailTaken(AccountsError):
    status, code, title = 409, "email_taken", "Email already registered"
    detail = "An account already uses this email address."


class InstitutionExists(AccountsError):
    status, code, title = 409, "institution_exists", "Institution already registered"
    detail = (
        "This institution already has a Visiopass account. Ask its account manager to add you as a manager; "
        "if you cannot reach them, write to support, who will forward your request to them."
    )


class InvalidToken(AccountsError):
    status, code, title = 400, "invalid_token", "Invalid or expired link"
    detail = "This link is invalid, used or expired."


class WrongPassword(AccountsError):
    status, code, title = 403, "wrong_password", "Wrong password"
    detail = "The current password is wrong."


class LastManager(AccountsError):
    status, code, title = 409, "last_manager", "The account needs a manager"
    detail = "An account keeps at least one manager: make someone else a manager first."


class LastOrganiser(AccountsError):
    status, code, title = 409, "last_organiser", "Visiopass needs an organiser"
    detail = "At least one organiser must remain."


class MemberActive(AccountsError):
    status, code, title = 409, "member_active", "The member already uses the account"
    detail = "This member has already set a password: only they can change their address, from their profile."


class MemberInvited(AccountsError):
    status, code, title = 409, "member_invited", "The member has not accepted the invitation"
    detail = "This member has no password yet: send the invitation again instead."


class InvalidField(AccountsError):
    """A field broke a rule; `failure.code` says which (e.g. uai_checksum, password_common)."""

    status, title = 400, "Invalid field"

    def __init__(self, field: str, failure: ValidationFailure) -> None:
        super().__init__(failure.message)
        self.field = field
        self.failure = failure

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.failure.code

    def members(self) -> dict[str, Any]:
        return {"field": self.field}

    def message(self) -> str | None:
        return self.failure.message


def valid_name(field: str, value: str | None) -> str:
    """`value` as the rule of every name makes it (`validators.normalise_name`), or InvalidField for `field`;
    None is a missing name."""
    try:
        return normalise_name("" if value is None else value)
    except ValidationFailure as exc:
        raise InvalidField(field, exc) from exc


class EmailNotVerified(AccountsError):
    status, code, title = 403, "email_not_verified", "Email address not verified"
    detail = "Confirm your email address with the link we mailed you before inviting people."


class TooManyRequests(AccountsError):
    """A throttle is exhausted; `retry_after` (whole seconds) goes in the problem and its Retry-After header."""

    status, code, title = 429, "too_many_requests", "Too many requests"

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(self.detail)
        self.retry_after = max(1, math.ceil(retry_after.total_seconds()))

    def members(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class TooManyPasswordAttempts(TooManyRequests):
    """Too many wrong passwords for this user (at login or a re-check): locked as login locks."""

    code, title = "too_many_attempts", "Too many failed attempts"
    detail = "Too many wrong passwords: try again later."


class TooManySignUps(TooManyRequests):
    code, title = "too_many_sign_ups", "Too many sign-ups"
    detail = "Too many accounts were opened from your network recently: try again later."


class MemberMailLimit(TooManyRequests):
    code, title = "member_mail_limit", "Too many mails to this member"
    detail = "This member was sent several mails in the last hour: try again later."


class InvitationLimit(TooManyRequests):
    """Inviting these people would exceed the account's daily allowance; nobody was invited."""

    code, title = "invitation_limit", "Daily invitation limit reached"

    def __init__(self, retry_after: timedelta, *, limit: int, remaining: int, requested: int) -> None:
        super().__init__(retry_after)
        self.limit, self.remaining, self.requested = limit, remaining, requested

    def members(self) -> dict[str, Any]:
        return {**super().members(), "limit": self.limit, "remaining": self.remaining, "requested": self.requested}

    def message(self) -> str | None:
        return (
            f"An account may send {self.limit} invitations a day; {self.remaining} remain today and this would send "
            f"{self.requested}. Nobody was invited: send fewer, or try again later."
        )
