"""Events of the accounts service, on topic `accounts.account` keyed by account id."""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Email, Event, Language, NonEmptyStr, UtcDatetime


class AccountEvent(Event):
    topic: ClassVar[str] = "accounts.account"
    key_field: ClassVar[str] = "account_id"

    account_id: uuid.UUID = Field(description="Id of the institution's account; the Kafka key.")


class AccountRegistered(AccountEvent):
    """An institution signed up; its email address awaits verification."""

    type: Literal["AccountRegistered"] = "AccountRegistered"
    institution_name: NonEmptyStr = Field(description="Name of the institution.")
    institution_kind: Literal["school", "company", "other"] = Field(description="Kind of institution.")
    contact_name: NonEmptyStr = Field(description="Full name of the account manager who signed up.")
    email: Email = Field(description="Email address of the account manager, to be verified.")
    language: Language = Field(description="Language of the account manager's emails.")
    verification_token: NonEmptyStr = Field(
        description="Raw single-use verification token the notifier puts in the verification link."
    )
    verification_expires_at: UtcDatetime = Field(description="When the verification token expires (UTC).")


class AccountVerified(AccountEvent):
    """The account manager verified the email address; the account may buy and enrol."""

    type: Literal["AccountVerified"] = "AccountVerified"
    email: Email = Field(description="The verified email address.")
    verified_at: UtcDatetime = Field(description="When the address was verified (UTC).")


class PasswordResetRequested(AccountEvent):
    """A user asked to reset the password; the notifier sends the reset link."""

    type: Literal["PasswordResetRequested"] = "PasswordResetRequested"
    user_id: uuid.UUID = Field(description="Id of the user whose password is reset.")
    email: Email = Field(description="Email address the reset link is sent to.")
    language: Language = Field(description="Language of the email.")
    reset_token: NonEmptyStr = Field(description="Raw single-use reset token the notifier puts in the link.")
    expires_at: UtcDatetime = Field(description="When the reset token expires (UTC).")


class VerificationLinkRequested(AccountEvent):
    """A new email verification link was issued (the first one was lost or expired); older links are void."""

    type: Literal["VerificationLinkRequested"] = "VerificationLinkRequested"
    user_id: uuid.UUID = Field(description="Id of the user whose address awaits verification.")
    contact_name: NonEmptyStr = Field(description="Full name of the user, for the greeting.")
    email: Email = Field(description="Email address to verify, where the link is sent.")
    language: Language = Field(description="Language of the email.")
    verification_token: NonEmptyStr = Field(
        description="Raw single-use verification token the notifier puts in the verification link."
    )
    expires_at: UtcDatetime = Field(description="When the verification token expires (UTC).")


class PasswordChanged(AccountEvent):
    """The password of a user was changed (after a reset or by the user); the owner is told by email."""

    type: Literal["PasswordChanged"] = "PasswordChanged"
    user_id: uuid.UUID = Field(description="Id of the user whose password was changed.")
    email: Email = Field(description="Email address the notice is sent to.")
    language: Language = Field(description="Language of the email.")
    changed_at: UtcDatetime = Field(description="When the password was changed (UTC).")
    reason: Literal["reset", "changed"] = Field(
        description="How: `reset` through a reset link, `changed` by the signed-in user."
    )


class MemberInvited(AccountEvent):
    """The account manager invited a staff member to the institution's account."""

    type: Literal["MemberInvited"] = "MemberInvited"
    member_id: uuid.UUID = Field(description="Id of the invited member.")
    institution_name: NonEmptyStr = Field(description="Name of the inviting institution.")
    name: NonEmptyStr = Field(description="Full name of the invited member.")
    email: Email = Field(description="Email address the invitation is sent to.")
    language: Language = Field(description="Language of the invitation email.")
    invitation_token: NonEmptyStr = Field(description="Raw single-use invitation token the notifier puts in the link.")
    expires_at: UtcDatetime = Field(description="When the invitation expires (UTC).")


class MemberAdded(AccountEvent):
    """A person who already had a Visiopass identity joined the institution's account as a staff member."""

    type: Literal["MemberAdded"] = "MemberAdded"
    member_id: uuid.UUID = Field(description="Id of the user who joined.")
    institution_name: NonEmptyStr = Field(description="Name of the institution they joined.")
    name: NonEmptyStr = Field(description="Full name of the member.")
    email: Email = Field(description="Email address the notice is sent to.")
    language: Language = Field(description="Language of the email.")


class MemberRemoved(AccountEvent):
    """The account manager removed a staff member from the institution's account."""

    type: Literal["MemberRemoved"] = "MemberRemoved"
    member_id: uuid.UUID = Field(description="Id of the user who no longer belongs to the institution.")
    removed_at: UtcDatetime = Field(description="When the member was removed (UTC).")


class EmailChangeRequested(AccountEvent):
    """A user asked to change the email address; the new address must be confirmed with the mailed link."""

    type: Literal["EmailChangeRequested"] = "EmailChangeRequested"
    user_id: uuid.UUID = Field(description="Id of the user changing the address.")
    name: NonEmptyStr = Field(description="Full name of the user, for the greeting.")
    new_email: Email = Field(description="The new address, where the confirmation link is sent.")
    language: Language = Field(description="Language of the email.")
    confirmation_token: NonEmptyStr = Field(description="Raw single-use token the notifier puts in the link.")
    expires_at: UtcDatetime = Field(description="When the confirmation token expires (UTC).")


class EmailChanged(AccountEvent):
    """A user's email address changed (the new one confirmed); the old address is told."""

    type: Literal["EmailChanged"] = "EmailChanged"
    user_id: uuid.UUID = Field(description="Id of the user.")
    old_email: Email = Field(description="The former address, where the notice is sent.")
    new_email: Email = Field(description="The new, verified address.")
    language: Language = Field(description="Language of the email.")
    changed_at: UtcDatetime = Field(description="When the address changed (UTC).")
    revert_token: NonEmptyStr | None = Field(
        None,
        description='Raw single-use token of the "this was not me" link mailed to the old address: it restores '
        "that address, ends every session and asks for a new password.",
    )
    revert_expires_at: UtcDatetime | None = Field(None, description="When the revert token expires (UTC).")


class AccountClosed(AccountEvent):
    """The account was closed and its personal data erased; other services anonymise their copies.
    It can no longer buy or enrol."""

    type: Literal["AccountClosed"] = "AccountClosed"
    closed_at: UtcDatetime = Field(description="When the account was closed (UTC).")
    notice_emails: list[Email] = Field(
        default_factory=list,
        description="Addresses of the account's managers, sent a last confirmation of the closure; "
        "consumers must not keep them.",
    )
    language: Language = Field("fr", description="Language of the confirmation email.")
