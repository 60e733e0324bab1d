"""The notifier opens the sealed tokens of the accounts events to build its links, and nothing else opens."""

import uuid

import pytest

from contracts.events.accounts import (
    AccountRegistered,
    AccountRegisteredV1,
    EmailChanged,
    EmailChangedV1,
    EmailChangeRequested,
    MemberInvited,
    PasswordResetRequested,
    VerificationLinkRequested,
)
from contracts.examples import EXAMPLE_KEYRING, EXAMPLE_TOKENS, example
from contracts.secrets import Keyring, SecretError, secret_fields
from notifier.handlers import ACCOUNT_MAILS, SUPERSEDED_ACCOUNT_MAILS, account_handlers, account_mails, opened
from notifier.settings import NotifierSettings

BASE_URL = "https://visiopass.example"
LINKED = [
    AccountRegistered,
    VerificationLinkRequested,
    PasswordResetRequested,
    MemberInvited,
    EmailChangeRequested,
    EmailChanged,
]


@pytest.mark.parametrize("model", LINKED)
def test_the_link_carries_the_plain_token_never_the_sealed_one(model):
    event = example(model)
    [field] = secret_fields(model)
    [mail] = account_mails(event, BASE_URL, EXAMPLE_KEYRING)
    assert mail.variables["link"].endswith(f"?token={EXAMPLE_TOKENS[(model.event_name(), field)]}")
    assert getattr(event, field) not in str(mail.variables)


def test_no_mail_of_any_event_carries_a_sealed_value():
    for model in ACCOUNT_MAILS:
        if model in SUPERSEDED_ACCOUNT_MAILS:
            continue
        event = example(model)
        for mail in account_mails(event, BASE_URL, EXAMPLE_KEYRING):
            for field in secret_fields(model):
                assert getattr(event, field) not in str(mail.variables), f"{model.__name__}.{field}"


def test_opened_gives_plain_tokens_and_leaves_the_event_alone():
    event = example(AccountRegistered)
    plain = opened(event, EXAMPLE_KEYRING)
    assert plain.verification_token == EXAMPLE_TOKENS[("AccountRegistered", "verification_token")]
    assert event.verification_token.startswith("v1.example.")


@pytest.mark.parametrize(
    "keyring",
    [None, Keyring.generate("example"), Keyring.generate("other")],
    ids=["no keyring", "another key of the same id", "an unknown key id"],
)
def test_a_token_that_does_not_open_fails_the_mail(keyring):
    with pytest.raises(SecretError):
        account_mails(example(AccountRegistered), BASE_URL, keyring)


def test_a_sealed_token_moved_to_another_account_or_event_does_not_open():
    registered = example(AccountRegistered)
    moved = registered.model_copy(update={"account_id": uuid.uuid4()})
    with pytest.raises(SecretError, match="does not open"):
        account_mails(moved, BASE_URL, EXAMPLE_KEYRING)
    invited = example(MemberInvited).model_copy(update={"invitation_token": registered.verification_token})
    with pytest.raises(SecretError, match="does not open"):
        account_mails(invited, BASE_URL, EXAMPLE_KEYRING)


def test_an_event_without_its_optional_token_needs_no_keyring():
    event = example(EmailChanged).model_copy(update={"revert_token": None, "revert_expires_at": None})
    [mail] = account_mails(event, BASE_URL, None)
    assert mail.variables["link"] == f"{BASE_URL}/forgot-password"


def test_superseded_v1_events_are_still_mailed_with_their_clear_tokens():
    assert {AccountRegisteredV1, EmailChangedV1} <= set(SUPERSEDED_ACCOUNT_MAILS)
    current = example(AccountRegistered)
    old = AccountRegisteredV1(**{**current.model_dump(), "verification_token": "plain-old-token-123"})
    [mail] = account_mails(old, BASE_URL, None)
    assert mail.variables["link"] == f"{BASE_URL}/verify-email?token=plain-old-token-123"


def test_the_keys_come_from_the_settings_and_are_never_shown():
    text = EXAMPLE_KEYRING.to_text()
    settings = NotifierSettings(event_secret_keys=text)
    assert settings.keyring() == EXAMPLE_KEYRING
    assert text.partition(":")[2] not in repr(settings) and text.partition(":")[2] not in str(settings.model_dump())
    assert NotifierSettings(event_secret_keys=None).keyring() is None
    account_handlers(settings)  # builds with it
