"""The mails of the accounts events: templates in each language, and the event → delivery dispatch."""

import uuid
from datetime import UTC, datetime

import pytest

from contracts import Envelope
from contracts.events.accounts import (
    AccountClosed,
    AccountRegistered,
    AccountVerified,
    MemberInvited,
    PasswordChanged,
    PasswordResetRequested,
)
from contracts.examples import example
from notifier import service as notifier
from notifier.handlers import ACCOUNT_MAILS, Mail, account_handlers, account_mail
from notifier.service import local_datetime, render
from notifier.settings import NotifierSettings

BASE_URL = "https://visiopass.example"
LANGUAGES = ["fr", "en"]

RESET = {
    "link": "http://127.0.0.1:8000/reset-password?token=abc&x=1",
    "expires_at": "10 mars 2025 10:30 UTC+1",
}
INVITATION = {
    "name": "Paul <Durand>",
    "institution_name": "Lycée <Jean> Moulin & Cie",
    "link": "http://127.0.0.1:8000/accept-invitation?token=abc&x=1",
    "expires_at": "17 mars 2025 10:00 UTC+1",
}
CHANGED = {
    "changed_at": "10 mars 2025 10:20 UTC+1",
    "link": "http://127.0.0.1:8000/forgot-password",
}
TEMPLATES = [("password_reset", RESET), ("member_invitation", INVITATION)]


# --- templates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "variables"), TEMPLATES)
def test_each_template_renders_in_each_language(template, variables, language):
    rendered = render(template, language, variables)
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert variables["link"] in rendered.text, "the text part carries the raw link"
    assert variables["expires_at"] in rendered.text
    assert variables["expires_at"] in rendered.html
    href = variables["link"].replace("&", "&amp;")
    assert f'href="{href}"' in rendered.html, "the link is escaped in the HTML attribute"
    assert "&x=1" not in rendered.html
    assert rendered.text.endswith("\n") and rendered.html.endswith("\n")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "variables"), TEMPLATES)
def test_a_missing_variable_is_an_error(template, variables, language):
    with pytest.raises(Exception, match="link"):
        render(template, language, {k: v for k, v in variables.items() if k != "link"})


@pytest.mark.parametrize(
    ("language", "greeting", "once", "thirty", "ignore"),
    [
        ("fr", "Bonjour,", "une seule fois", "30 minutes", "ignorez ce message"),
        ("en", "Hello,", "only once", "30 minutes", "ignore this message"),
    ],
)
def test_the_reset_mail_says_single_use_thirty_minutes_and_ignore(language, greeting, once, thirty, ignore):
    rendered = render("password_reset", language, RESET)
    for part in (rendered.text, rendered.html):
        assert once in part
        assert thirty in part
        assert ignore in part
    assert rendered.text.startswith(greeting)


@pytest.mark.parametrize(
    ("language", "subject", "greeting"),
    [
        ("fr", "Lycée <Jean> Moulin & Cie vous invite sur Visiopass", "Bonjour Paul <Durand>,"),
        ("en", "Lycée <Jean> Moulin & Cie invites you to Visiopass", "Hello Paul <Durand>,"),
    ],
)
def test_the_invitation_names_the_institution_and_escapes_html(language, subject, greeting):
    rendered = render("member_invitation", language, INVITATION)
    assert rendered.subject == subject, "subject and text are plain text, not HTML-escaped"
    assert rendered.text.startswith(greeting)
    assert "Paul &lt;Durand&gt;" in rendered.html
    assert "Lycée &lt;Jean&gt; Moulin &amp; Cie" in rendered.html
    assert "<Durand>" not in rendered.html and "<Jean>" not in rendered.html


@pytest.mark.parametrize(
    ("language", "greeting", "subject", "forgot", "support"),
    [
        ("fr", "Bonjour,", "Le mot de passe de votre compte Visiopass a été modifié", "Mot de passe oublié", "support"),
        ("en", "Hello,", "Your Visiopass password was changed", "Forgot password", "support"),
    ],
)
def test_the_password_changed_mail_gives_the_time_and_the_forgot_password_link(
    language, greeting, subject, forgot, support
):
    rendered = render("password_changed", language, CHANGED)
    assert rendered.subject == subject
    assert rendered.text.startswith(greeting)
    for part in (rendered.text, rendered.html):
        assert CHANGED["changed_at"] in part
        assert forgot in part
        assert support in part
    assert CHANGED["link"] in rendered.text, "the text part carries the raw link"
    assert f'href="{CHANGED["link"]}"' in rendered.html
    assert rendered.text.endswith("\n") and rendered.html.endswith("\n")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("missing", ["changed_at", "link"])
def test_the_password_changed_mail_needs_each_variable(language, missing):
    with pytest.raises(Exception, match=missing):
        render("password_changed", language, {k: v for k, v in CHANGED.items() if k != missing})


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_subject_with_a_line_break_is_folded_onto_one_line(language):
    rendered = render("member_invitation", language, INVITATION | {"institution_name": "Lycée\nJean Moulin"})
    assert "\n" not in rendered.subject
    assert "Lycée Jean Moulin" in rendered.subject


# --- dispatch ----------------------------------------------------------------------------------------------


def test_account_registered_asks_for_the_verification_mail():
    event = example(AccountRegistered)
    assert account_mail(event, BASE_URL) == Mail(
        template="account_registered",
        language=event.language,
        recipient=event.email,
        variables={
            "contact_name": event.contact_name,
            "institution_name": event.institution_name,
            "link": f"{BASE_URL}/verify-email?token={event.verification_token}",
            "expires_at": local_datetime(event.verification_expires_at, event.language),
        },
    )


def test_password_reset_requested_asks_for_the_reset_mail():
    event = example(PasswordResetRequested)
    assert account_mail(event, BASE_URL) == Mail(
        template="password_reset",
        language=event.language,
        recipient=event.email,
        variables={
            "link": f"{BASE_URL}/reset-password?token={event.reset_token}",
            "expires_at": local_datetime(event.expires_at, event.language),
        },
    )


@pytest.mark.parametrize("reason", ["reset", "changed"])
def test_password_changed_asks_for_the_notice_with_the_forgot_password_link(reason):
    event = example(PasswordChanged).model_copy(update={"reason": reason})
    assert account_mail(event, BASE_URL) == Mail(
        template="password_changed",
        language=event.language,
        recipient=event.email,
        variables={
            "changed_at": local_datetime(event.changed_at, event.language),
            "link": f"{BASE_URL}/forgot-password",
        },
    )


def test_the_change_time_is_shown_in_paris_time_in_the_event_language():
    event = example(PasswordChanged).model_copy(
        update={"language": "en", "changed_at": datetime(2025, 7, 1, 8, 0, tzinfo=UTC)}
    )
    mail = account_mail(event, BASE_URL)
    assert mail is not None
    assert mail.variables["changed_at"].startswith("1 July 2025 10:00")


def test_member_invited_asks_for_the_invitation_mail():
    event = example(MemberInvited)
    assert account_mail(event, BASE_URL) == Mail(
        template="member_invitation",
        language=event.language,
        recipient=event.email,
        variables={
            "name": event.name,
            "institution_name": event.institution_name,
            "link": f"{BASE_URL}/accept-invitation?token={event.invitation_token}",
            "expires_at": local_datetime(event.expires_at, event.language),
        },
    )


def test_the_expiry_is_shown_in_paris_time_in_the_event_language():
    event = example(PasswordResetRequested).model_copy(
        update={"language": "en", "expires_at": datetime(2025, 7, 1, 8, 0, tzinfo=UTC)}
    )
    mail = account_mail(event, BASE_URL)
    assert mail is not None
    assert mail.language == "en"
    assert mail.variables["expires_at"].startswith("1 July 2025 10:00")


@pytest.mark.parametrize("model", [AccountVerified, AccountClosed])
def test_other_accounts_events_ask_for_no_mail(model):
    assert account_mail(example(model), BASE_URL) is None


@pytest.mark.parametrize("model", list(ACCOUNT_MAILS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_planned_mail_renders_with_its_variables(model, language):
    event = example(model).model_copy(update={"language": language})
    mail = account_mail(event, BASE_URL)
    assert mail is not None
    rendered = render(mail.template, mail.language, mail.variables)
    assert mail.variables["link"] in rendered.text
    assert mail.variables["link"].startswith(f"{BASE_URL}/")
    assert "\n" not in rendered.subject


def test_the_consumer_subscribes_exactly_to_the_events_that_make_a_mail():
    from notifier.main import service

    (consumer,) = [c for c in service.consumers if c.name == "account-mails"]
    assert consumer.topic == "accounts.account"
    assert set(consumer.events) == set(ACCOUNT_MAILS)


# --- handler (notifier.plan replaced: no database) ---------------------------------------------------------


def _envelope(event):
    return Envelope(
        id=uuid.uuid4(),
        source="/visiopass/accounts",
        type=f"fr.visiopass.accounts.{type(event).__name__}.v1",
        time=datetime(2025, 3, 10, 9, 0, tzinfo=UTC),
        subject=event.aggregate_id(),
        dataschema=f"urn:visiopass:schema:{type(event).__name__}:v1",
        correlation_id=None,
        causation_id=None,
        event=event,
    )


@pytest.fixture
def planned(monkeypatch):
    calls = []

    async def fake_plan(session, **kwargs):
        calls.append((session, kwargs))

    monkeypatch.setattr(notifier, "plan", fake_plan)
    return calls


async def test_the_handler_plans_the_mail_under_the_event_id(planned):
    handler = account_handlers(NotifierSettings(public_base_url=BASE_URL))
    envelope = _envelope(example(MemberInvited))
    session = object()
    await handler(session, envelope)
    mail = account_mail(envelope.event, BASE_URL)
    assert mail is not None
    assert planned == [(session, {"event_id": envelope.id, **mail._asdict()})]


async def test_the_handler_plans_the_password_changed_notice(planned):
    handler = account_handlers(NotifierSettings(public_base_url=BASE_URL))
    envelope = _envelope(example(PasswordChanged))
    session = object()
    await handler(session, envelope)
    assert planned == [
        (
            session,
            {
                "event_id": envelope.id,
                "template": "password_changed",
                "language": "fr",
                "recipient": "claire.martin@example.fr",
                "variables": {
                    "changed_at": local_datetime(envelope.event.changed_at, "fr"),
                    "link": f"{BASE_URL}/forgot-password",
                },
            },
        )
    ]


async def test_the_handler_does_nothing_for_an_event_without_mail(planned):
    handler = account_handlers(NotifierSettings(public_base_url=BASE_URL))
    await handler(object(), _envelope(example(AccountVerified)))
    assert planned == []
