"""The mails of the accounts events: templates in each language, and the event → delivery dispatch."""

from datetime import UTC, datetime

import pytest
from markupsafe import escape

from contracts.events.accounts import (
    AccountClosed,
    AccountRegistered,
    AccountVerified,
    EmailChanged,
    EmailChangeRequested,
    MemberAdded,
    MemberInvited,
    MemberRemoved,
    PasswordChanged,
    PasswordResetRequested,
    SignUpAttemptedWithTakenEmail,
)
from contracts.examples import EXAMPLE_KEYRING, EXAMPLE_TOKENS, example
from contracts.topics import TOPICS
from notifier import handlers
from notifier.handlers import ACCOUNT_MAILS, SUPERSEDED_ACCOUNT_MAILS, Mail
from notifier.models import deliveries
from notifier.service import local_datetime, render

BASE_URL = "https://visiopass.example"


def account_mails(event, base_url):
    """The mails of an event whose tokens were sealed with the examples' keyring."""
    return handlers.account_mails(event, base_url, EXAMPLE_KEYRING)


def plain(event, field):
    """The plain token the example's sealed `field` holds."""
    return EXAMPLE_TOKENS[(type(event).event_name(), field)]


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
MEMBER_ADDED = {
    "name": "Paul <Durand>",
    "institution_name": "Lycée <Jean> Moulin & Cie",
    "link": "http://127.0.0.1:8000/join?token=abc&x=1",
    "expires_at": "17 mars 2025 10:00 UTC+1",
}
EMAIL_CHANGE = {
    "name": "Claire <Martin>",
    "link": "http://127.0.0.1:8000/confirm-email?token=abc&x=1",
    "expires_at": "12 mars 2025 10:00 UTC+1",
}
EMAIL_CHANGED = {
    "new_email": "claire&<martin>@lycee-moulin.fr",
    "changed_at": "10 mars 2025 11:00 UTC+1",
    "link": "http://127.0.0.1:8000/revert-email?token=abc&x=1",
    "expires_at": "17 mars 2025 11:00 UTC+1",
}
CLOSED = {"closed_at": "10 mars 2025 10:00 UTC+1"}
SIGN_UP_ATTEMPTED = {
    "attempted_at": "10 mars 2025 10:00 UTC+1",
    "link": "http://127.0.0.1:8000/forgot-password?x=1&y=2",
}
REGISTERED = {
    "contact_name": "Claire <Martin>",
    "institution_name": "Lycée <Jean> Moulin & Cie",
    "link": "http://127.0.0.1:8000/verify-email?token=abc&x=1",
    "expires_at": "12 mars 2025 10:00 UTC+1",
}
TEMPLATES = [("password_reset", RESET), ("member_invitation", INVITATION), ("email_change_confirmation", EMAIL_CHANGE)]
NEW_TEMPLATES = [
    ("member_added", MEMBER_ADDED),
    ("email_change_confirmation", EMAIL_CHANGE),
    ("email_changed", EMAIL_CHANGED),
    ("account_closed", CLOSED),
    ("sign_up_attempted", SIGN_UP_ATTEMPTED),
]
# mails whose variables hold text someone else chose (an institution's name): it goes in the body, never the
# subject, which spam filters and people read first
CHOSEN_TEXT = [("member_invitation", INVITATION), ("member_added", MEMBER_ADDED), ("account_registered", REGISTERED)]


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
        ("fr", "On vous invite à rejoindre un compte sur Visiopass", "Bonjour Paul <Durand>,"),
        ("en", "You are invited to join an account on Visiopass", "Hello Paul <Durand>,"),
    ],
)
def test_the_invitation_names_the_institution_in_its_body_only_and_escapes_html(language, subject, greeting):
    rendered = render("member_invitation", language, INVITATION)
    assert rendered.subject == subject, "the subject is ours alone: the inviter chose the institution's name"
    assert rendered.text.startswith(greeting)
    assert "Lycée <Jean> Moulin & Cie" in rendered.text
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
def test_a_line_break_in_a_name_never_reaches_the_subject(language):
    rendered = render("member_invitation", language, INVITATION | {"institution_name": "Lycée\nBcc: x@y.fr"})
    assert "\n" not in rendered.subject and "Bcc" not in rendered.subject
    assert "Lycée\nBcc: x@y.fr" in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "variables"), NEW_TEMPLATES)
def test_each_new_template_shows_its_variables_raw_in_text_and_escaped_in_html(template, variables, language):
    rendered = render(template, language, variables)
    assert rendered.subject
    assert "\n" not in rendered.subject
    for name, value in variables.items():
        assert value in rendered.text, f"the text part carries {name} as is"
        if name == "link":
            assert f'href="{escape(value)}"' in rendered.html, "the link is escaped in the HTML attribute"
        else:
            assert escape(value) in rendered.html, f"{name} is escaped in HTML"
        if escape(value) != value:
            assert value not in rendered.html
    assert rendered.text.endswith("\n") and rendered.html.endswith("\n")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("template", "missing"),
    [(template, name) for template, variables in NEW_TEMPLATES for name in variables],
)
def test_each_new_template_needs_each_variable(template, missing, language):
    variables = dict(NEW_TEMPLATES)[template]
    with pytest.raises(Exception, match=missing):
        render(template, language, {k: v for k, v in variables.items() if k != missing})


@pytest.mark.parametrize(
    ("template", "variables", "language", "subject", "greeting", "phrases"),
    [
        (
            "member_added",
            MEMBER_ADDED,
            "fr",
            "Invitation à rejoindre un compte Visiopass",
            "Bonjour Paul <Durand>,",
            ["Vous ne le rejoignez que si vous acceptez", "accepter ou refuser depuis votre compte"],
        ),
        (
            "member_added",
            MEMBER_ADDED,
            "en",
            "You are asked to join an account on Visiopass",
            "Hello Paul <Durand>,",
            ["You join only if you accept", "accept or decline from your account"],
        ),
        (
            "email_change_confirmation",
            EMAIL_CHANGE,
            "fr",
            "Confirmez votre nouvelle adresse e-mail Visiopass",
            "Bonjour Claire <Martin>,",
            ["Confirmer cette nouvelle adresse", "ignorez ce message", "votre adresse e-mail reste inchangée"],
        ),
        (
            "email_change_confirmation",
            EMAIL_CHANGE,
            "en",
            "Confirm your new Visiopass email address",
            "Hello Claire <Martin>,",
            ["confirm this new address", "ignore this message", "your email address stays unchanged"],
        ),
        (
            "email_changed",
            EMAIL_CHANGED,
            "fr",
            "L'adresse e-mail de votre compte Visiopass a été modifiée",
            "Bonjour,",
            ["remplacée par", "annulez ce changement", "nouveau mot de passe"],
        ),
        (
            "email_changed",
            EMAIL_CHANGED,
            "en",
            "Your Visiopass email address was changed",
            "Hello,",
            ["changed to", "undo the change", "new password"],
        ),
        (
            "sign_up_attempted",
            SIGN_UP_ATTEMPTED,
            "fr",
            "Tentative d'inscription à Visiopass avec votre adresse",
            "Bonjour,",
            ["ouvrir un nouveau compte", "aucun nouveau compte", "ignorez ce message"],
        ),
        (
            "sign_up_attempted",
            SIGN_UP_ATTEMPTED,
            "en",
            "Someone tried to open a Visiopass account with your address",
            "Hello,",
            ["tried to open a new Visiopass account", "no new account was opened", "ignore this message"],
        ),
        (
            "account_closed",
            CLOSED,
            "fr",
            "Votre compte Visiopass a été clôturé",
            "Bonjour,",
            ["clôturé le", "données personnelles", "effacées", "factures sont conservées", "la loi"],
        ),
        (
            "account_closed",
            CLOSED,
            "en",
            "Your Visiopass account was closed",
            "Hello,",
            ["closed on", "personal data", "erased", "invoices are kept", "the law"],
        ),
    ],
)
def test_each_new_mail_says_what_it_must(template, variables, language, subject, greeting, phrases):
    rendered = render(template, language, variables)
    assert rendered.subject == subject, "subject and text are plain text, not HTML-escaped"
    assert rendered.text.startswith(greeting)
    for phrase in phrases:
        assert phrase.lower() in rendered.text.lower()
        assert escape(phrase).lower() in rendered.html.lower()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "variables"), CHOSEN_TEXT)
def test_no_subject_carries_text_someone_chose(template, variables, language):
    rendered = render(template, language, variables)
    assert variables["institution_name"] in rendered.text, "the name is in the body"
    for value in variables.values():
        assert value not in rendered.subject
    assert "Lycée" not in rendered.subject and "Moulin" not in rendered.subject


def test_a_sign_up_with_a_taken_address_tells_its_owner_with_the_forgot_password_link():
    event = example(SignUpAttemptedWithTakenEmail)
    [mail] = account_mails(event, BASE_URL)
    assert (mail.template, mail.recipient, mail.language) == ("sign_up_attempted", event.email, event.language)
    assert mail.variables == {
        "attempted_at": local_datetime(event.attempted_at, "fr"),
        "link": f"{BASE_URL}/forgot-password",
    }


# --- dispatch ----------------------------------------------------------------------------------------------


def test_account_registered_asks_for_the_verification_mail():
    event = example(AccountRegistered)
    assert account_mails(event, BASE_URL) == [
        Mail(
            template="account_registered",
            language=event.language,
            recipient=event.email,
            variables={
                "contact_name": event.contact_name,
                "institution_name": event.institution_name,
                "link": f"{BASE_URL}/verify-email?token={plain(event, 'verification_token')}",
                "expires_at": local_datetime(event.verification_expires_at, event.language),
            },
        )
    ]


def test_password_reset_requested_asks_for_the_reset_mail():
    event = example(PasswordResetRequested)
    assert account_mails(event, BASE_URL) == [
        Mail(
            template="password_reset",
            language=event.language,
            recipient=event.email,
            variables={
                "link": f"{BASE_URL}/reset-password?token={plain(event, 'reset_token')}",
                "expires_at": local_datetime(event.expires_at, event.language),
            },
        )
    ]


@pytest.mark.parametrize("reason", ["reset", "changed"])
def test_password_changed_asks_for_the_notice_with_the_forgot_password_link(reason):
    event = example(PasswordChanged).model_copy(update={"reason": reason})
    assert account_mails(event, BASE_URL) == [
        Mail(
            template="password_changed",
            language=event.language,
            recipient=event.email,
            variables={
                "changed_at": local_datetime(event.changed_at, event.language),
                "link": f"{BASE_URL}/forgot-password",
            },
        )
    ]


def test_the_change_time_is_shown_in_paris_time_in_the_event_language():
    event = example(PasswordChanged).model_copy(
        update={"language": "en", "changed_at": datetime(2025, 7, 1, 8, 0, tzinfo=UTC)}
    )
    (mail,) = account_mails(event, BASE_URL)
    assert mail.variables["changed_at"].startswith("1 July 2025 10:00")


def test_member_invited_asks_for_the_invitation_mail():
    event = example(MemberInvited)
    assert account_mails(event, BASE_URL) == [
        Mail(
            template="member_invitation",
            language=event.language,
            recipient=event.email,
            variables={
                "name": event.name,
                "institution_name": event.institution_name,
                "link": f"{BASE_URL}/accept-invitation?token={plain(event, 'invitation_token')}",
                "expires_at": local_datetime(event.expires_at, event.language),
            },
        )
    ]


def test_member_added_asks_the_person_to_accept_with_the_join_link():
    event = example(MemberAdded)
    assert account_mails(event, BASE_URL) == [
        Mail(
            template="member_added",
            language=event.language,
            recipient=event.email,
            variables={
                "name": event.name,
                "institution_name": event.institution_name,
                "link": f"{BASE_URL}/join?token={plain(event, 'join_token')}",
                "expires_at": local_datetime(event.expires_at, event.language),
            },
        )
    ]


def test_email_change_requested_sends_the_confirmation_link_to_the_new_address():
    event = example(EmailChangeRequested)
    assert account_mails(event, BASE_URL) == [
        Mail(
            template="email_change_confirmation",
            language=event.language,
            recipient=event.new_email,
            variables={
                "name": event.name,
                "link": f"{BASE_URL}/confirm-email?token={plain(event, 'confirmation_token')}",
                "expires_at": local_datetime(event.expires_at, event.language),
            },
        )
    ]


def test_email_changed_gives_the_old_address_the_link_that_undoes_it():
    event = example(EmailChanged)
    assert account_mails(event, BASE_URL) == [
        Mail(
            template="email_changed",
            language=event.language,
            recipient=event.old_email,
            variables={
                "new_email": event.new_email,
                "changed_at": local_datetime(event.changed_at, event.language),
                "link": f"{BASE_URL}/revert-email?token={plain(event, 'revert_token')}",
                "expires_at": local_datetime(event.revert_expires_at, event.language),
            },
        )
    ]
    rendered = render("email_changed", "fr", account_mails(event, BASE_URL)[0].variables)
    assert "annulez ce changement" in rendered.text and "Mot de passe oublié" not in rendered.text


def test_email_changed_without_a_revert_link_points_to_forgot_password():
    event = example(EmailChanged).model_copy(update={"revert_token": None, "revert_expires_at": None})
    [mail] = account_mails(event, BASE_URL)
    assert mail.variables["link"] == f"{BASE_URL}/forgot-password"
    for language in LANGUAGES:
        rendered = render("email_changed", language, mail.variables)
        assert mail.variables["link"] in rendered.text and "revert-email" not in rendered.text


def test_account_closed_sends_the_same_notice_to_each_address():
    event = example(AccountClosed).model_copy(
        update={"notice_emails": ["claire.martin@example.fr", "paul.durand@example.fr"], "language": "en"}
    )
    variables = {"closed_at": local_datetime(event.closed_at, "en")}
    assert account_mails(event, BASE_URL) == [
        Mail(template="account_closed", language="en", recipient="claire.martin@example.fr", variables=variables),
        Mail(template="account_closed", language="en", recipient="paul.durand@example.fr", variables=variables),
    ]


def test_account_closed_without_addresses_asks_for_no_mail():
    event = example(AccountClosed).model_copy(update={"notice_emails": []})
    assert account_mails(event, BASE_URL) == []


def test_the_expiry_is_shown_in_paris_time_in_the_event_language():
    event = example(PasswordResetRequested).model_copy(
        update={"language": "en", "expires_at": datetime(2025, 7, 1, 8, 0, tzinfo=UTC)}
    )
    (mail,) = account_mails(event, BASE_URL)
    assert mail.language == "en"
    assert mail.variables["expires_at"].startswith("1 July 2025 10:00")


NO_MAIL = [AccountVerified, MemberRemoved]


@pytest.mark.parametrize("model", NO_MAIL)
def test_other_accounts_events_ask_for_no_mail(model):
    assert account_mails(example(model), BASE_URL) == []


def test_every_accounts_event_makes_mails_or_is_known_to_make_none():
    current = set(TOPICS["accounts.account"].events)
    assert current | set(SUPERSEDED_ACCOUNT_MAILS) == set(ACCOUNT_MAILS) | set(NO_MAIL)


@pytest.mark.parametrize("model", [model for model in ACCOUNT_MAILS if model not in SUPERSEDED_ACCOUNT_MAILS])
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_planned_mail_renders_with_its_variables(model, language):
    event = example(model).model_copy(update={"language": language})
    mails = account_mails(event, BASE_URL)
    assert mails
    for mail in mails:
        assert mail.language == language
        rendered = render(mail.template, mail.language, mail.variables)
        for value in mail.variables.values():
            assert value in rendered.text
        if "link" in mail.variables:
            assert mail.variables["link"].startswith(f"{BASE_URL}/")
        assert "\n" not in rendered.subject


def test_the_consumer_subscribes_exactly_to_the_events_that_make_a_mail():
    from notifier.main import service

    (consumer,) = [c for c in service.consumers if c.name == "account-mails"]
    assert consumer.topic == "accounts.account"
    assert set(consumer.events) == set(ACCOUNT_MAILS)


def test_one_event_may_plan_one_delivery_per_recipient():
    (once,) = [c for c in deliveries.constraints if c.name == "deliveries_once_per_event"]
    assert [column.name for column in once.columns] == ["event_id", "template", "recipient"]
