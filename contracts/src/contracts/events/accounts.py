"""Events of the accounts service, on topic `accounts.account` keyed by account id."""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Email, Event, Language, NonEmptyStr, UtcDatetime
from contracts.secrets import SealedSecret


class AccountEvent(Event):
    topic: ClassVar[str] = "accounts.account"
    key_field: ClassVar[str] = "account_id"

    account_id: uuid.UUID = Field(description="Id of the institution's account; the Kafka key.")


# Superseded by v2 (its token travelled in clear on Kafka); still decodable, never produced any more.
class AccountRegisteredV1(AccountEvent):
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


class AccountRegistered(AccountEvent):
    """An institution signed up; its email address awaits verification."""

    type: Literal["AccountRegistered"] = "AccountRegistered"
    version: ClassVar[int] = 2
    institution_name: NonEmptyStr = Field(description="Name of the institution.")
    institution_kind: Literal["school", "company", "other"] = Field(description="Kind of institution.")
    contact_name: NonEmptyStr = Field(description="Full name of the account manager who signed up.")
    email: Email = Field(description="Email address of the account manager, to be verified.")
    language: Language = Field(description="Language of the account manager's emails.")
    verification_token: SealedSecret = Field(
        description="Single-use token of the verification link, sealed for the notifier (see contracts.secrets)."
    )
    verification_expires_at: UtcDatetime = Field(description="When the verification token expires (UTC).")


class SignUpAttemptedWithTakenEmail(AccountEvent):
    """Someone tried to open an account with an address that already has a Visiopass identity. The sign-up
    was answered as if it had worked (so the answer does not tell who is registered); the owner is told."""

    type: Literal["SignUpAttemptedWithTakenEmail"] = "SignUpAttemptedWithTakenEmail"
    user_id: uuid.UUID = Field(description="Id of the user who owns the address.")
    email: Email = Field(description="The owner's address, where the notice is sent.")
    language: Language = Field(description="Language of the owner's emails.")
    attempted_at: UtcDatetime = Field(description="When the sign-up was attempted (UTC).")


class AccountVerified(AccountEvent):
    """The account manager verified the email address; the account may buy and enrol."""

    type: Literal["AccountVerified"] = "AccountVerified"
    email: Email = Field(description="The verified email address.")
    verified_at: UtcDatetime = Field(description="When the address was verified (UTC).")


# Superseded by v2 (its token travelled in clear on Kafka); still decodable, never produced any more.
class PasswordResetRequestedV1(AccountEvent):
    """A user asked to reset the password; the notifier sends the reset link."""

    type: Literal["PasswordResetRequested"] = "PasswordResetRequested"
    user_id: uuid.UUID = Field(description="Id of the user whose password is reset.")
    email: Email = Field(description="Email address the reset link is sent to.")
    language: Language = Field(description="Language of the email.")
    reset_token: NonEmptyStr = Field(description="Raw single-use reset token the notifier puts in the link.")
    expires_at: UtcDatetime = Field(description="When the reset token expires (UTC).")


class PasswordResetRequested(AccountEvent):
    """A user asked to reset the password; the notifier sends the reset link."""

    type: Literal["PasswordResetRequested"] = "PasswordResetRequested"
    version: ClassVar[int] = 2
    user_id: uuid.UUID = Field(description="Id of the user whose password is reset.")
    email: Email = Field(description="Email address the reset link is sent to.")
    language: Language = Field(description="Language of the email.")
    reset_token: SealedSecret = Field(
        description="Single-use token of the reset link, sealed for the notifier (see contracts.secrets)."
    )
    expires_at: UtcDatetime = Field(description="When the reset token expires (UTC).")


# Superseded by v2 (its token travelled in clear on Kafka); still decodable, never produced any more.
class VerificationLinkRequestedV1(AccountEvent):
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


class VerificationLinkRequested(AccountEvent):
    """A new email verification link was issued (the first one was lost or expired); older links are void."""

    type: Literal["VerificationLinkRequested"] = "VerificationLinkRequested"
    version: ClassVar[int] = 2
    user_id: uuid.UUID = Field(description="Id of the user whose address awaits verification.")
    contact_name: NonEmptyStr = Field(description="Full name of the user, for the greeting.")
    email: Email = Field(description="Email address to verify, where the link is sent.")
    language: Language = Field(description="Language of the email.")
    verification_token: SealedSecret = Field(
        description="Single-use token of the verification link, sealed for the notifier (see contracts.secrets)."
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


# Superseded by v2 (its token travelled in clear on Kafka); still decodable, never produced any more.
class MemberInvitedV1(AccountEvent):
    """The account manager invited a staff member to the institution's account."""

    type: Literal["MemberInvited"] = "MemberInvited"
    member_id: uuid.UUID = Field(description="Id of the invited member.")
    institution_name: NonEmptyStr = Field(description="Name of the inviting institution.")
    name: NonEmptyStr = Field(description="Full name of the invited member.")
    email: Email = Field(description="Email address the invitation is sent to.")
    language: Language = Field(description="Language of the invitation email.")
    invitation_token: NonEmptyStr = Field(description="Raw single-use invitation token the notifier puts in the link.")
    expires_at: UtcDatetime = Field(description="When the invitation expires (UTC).")


class MemberInvited(AccountEvent):
    """The account manager invited a staff member to the institution's account."""

    type: Literal["MemberInvited"] = "MemberInvited"
    version: ClassVar[int] = 2
    member_id: uuid.UUID = Field(description="Id of the invited member.")
    institution_name: NonEmptyStr = Field(description="Name of the inviting institution.")
    name: NonEmptyStr = Field(description="Full name of the invited member.")
    email: Email = Field(description="Email address the invitation is sent to.")
    language: Language = Field(description="Language of the invitation email.")
    invitation_token: SealedSecret = Field(
        description="Single-use token of the invitation link, sealed for the notifier (see contracts.secrets)."
    )
    expires_at: UtcDatetime = Field(description="When the invitation expires (UTC).")


class MemberAdded(AccountEvent):
    """An institution asked a person who already has a Visiopass identity to join its account as a staff
    member. They join only once they accept: with the mailed link (`join_token`), or from their account."""

    type: Literal["MemberAdded"] = "MemberAdded"
    member_id: uuid.UUID = Field(description="Id of the user asked to join.")
    institution_name: NonEmptyStr = Field(description="Name of the institution asking.")
    name: NonEmptyStr = Field(description="Full name of the person, for the greeting.")
    email: Email = Field(description="Email address the request is sent to.")
    language: Language = Field(description="Language of the email.")
    join_token: SealedSecret | None = Field(
        None,
        description="Single-use token of the link that accepts joining, sealed for the notifier (contracts.secrets) "
        "and bound to this event, field and account; absent from events written before joining needed "
        "acceptance (the person had joined at once).",
    )
    expires_at: UtcDatetime | None = Field(None, description="When the join token expires (UTC).")


class MemberRemoved(AccountEvent):
    """The account manager removed a staff member from the institution's account."""

    type: Literal["MemberRemoved"] = "MemberRemoved"
    member_id: uuid.UUID = Field(description="Id of the user who no longer belongs to the institution.")
    removed_at: UtcDatetime = Field(description="When the member was removed (UTC).")


# Superseded by v2 (its token travelled in clear on Kafka); still decodable, never produced any more.
class EmailChangeRequestedV1(AccountEvent):
    """A user asked to change the email address; the new address must be confirmed with the mailed link."""

    type: Literal["EmailChangeRequested"] = "EmailChangeRequested"
    user_id: uuid.UUID = Field(description="Id of the user changing the address.")
    name: NonEmptyStr = Field(description="Full name of the user, for the greeting.")
    new_email: Email = Field(description="The new address, where the confirmation link is sent.")
    language: Language = Field(description="Language of the email.")
    confirmation_token: NonEmptyStr = Field(description="Raw single-use token the notifier puts in the link.")
    expires_at: UtcDatetime = Field(description="When the confirmation token expires (UTC).")


class EmailChangeRequested(AccountEvent):
    """A user asked to change the email address; the new address must be confirmed with the mailed link."""

    type: Literal["EmailChangeRequested"] = "EmailChangeRequested"
    version: ClassVar[int] = 2
    user_id: uuid.UUID = Field(description="Id of the user changing the address.")
    name: NonEmptyStr = Field(description="Full name of the user, for the greeting.")
    new_email: Email = Field(description="The new address, where the confirmation link is sent.")
    language: Language = Field(description="Language of the email.")
    confirmation_token: SealedSecret = Field(
        description="Single-use token of the confirmation link, sealed for the notifier (see contracts.secrets)."
    )
    expires_at: UtcDatetime = Field(description="When the confirmation token expires (UTC).")


# Superseded by v2 (its token travelled in clear on Kafka); still decodable, never produced any more.
class EmailChangedV1(AccountEvent):
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


class EmailChanged(AccountEvent):
    """A user's email address changed (the new one confirmed); the old address is told."""

    type: Literal["EmailChanged"] = "EmailChanged"
    version: ClassVar[int] = 2
    user_id: uuid.UUID = Field(description="Id of the user.")
    old_email: Email = Field(description="The former address, where the notice is sent.")
    new_email: Email = Field(description="The new, verified address.")
    language: Language = Field(description="Language of the email.")
    changed_at: UtcDatetime = Field(description="When the address changed (UTC).")
    revert_token: SealedSecret | None = Field(
        None,
        description='Single-use token of the "this was not me" link mailed to the old address (it restores '
        "that address, ends every session and asks for a new password), sealed for the notifier "
        "(see contracts.secrets).",
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
