"""The mails of the billing events: who is told what, in which language, with amounts and dates written the
reader's way, the PDFs attached by reference only, and every template rendering in both languages."""

import uuid
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from contracts.events.billing import (
    CreditNoteIssued,
    InvoiceIssued,
    PurchaseOrderReceived,
    PurchaseOrderRefused,
    TokenDebitRejected,
    TokenPurchased,
    TokensDebited,
    TokensExpired,
    TokensExpiringSoon,
    TokensRefunded,
)
from contracts.examples import example
from contracts.topics import TOPICS
from notifier.billing_mails import BILLING_MAILS, INVOICE_MAILS, ORGANISER_MAILS, WALLET_MAILS, billing_mails
from notifier.handlers import Mail
from notifier.service import ATTACHMENTS, local_datetime, render
from notifier.settings import NotifierSettings

BASE_URL = "https://visiopass.example"
ORGANISERS = ["compta@visiopass.example", "ops@visiopass.example"]
SETTINGS = NotifierSettings(public_base_url=BASE_URL, back_office_emails=ORGANISERS)
LANGUAGES = ["fr", "en"]
# 72.00 € TTC (the examples' price), as each language writes it
GROSS = {"fr": "72,00\u00a0€", "en": "€72.00"}
NET = {"fr": "60,00\u00a0€", "en": "€60.00"}
TEMPLATES = [
    "payment_received",
    "purchase_order_received",
    "purchase_order_alert",
    "purchase_order_validated",
    "purchase_order_refused",
    "tokens_expiring",
    "credit_note_issued",
]


def in_language(event, language):
    return event.model_copy(update={"notice": event.notice.model_copy(update={"language": language})})


def without_notice(event):
    return event.model_copy(update={"notice": None})


def purchase_order_invoice(language="fr"):
    return in_language(
        example(InvoiceIssued).model_copy(
            update={
                "payment_method": "purchase_order",
                "paid": False,
                "due_at": datetime(2025, 4, 9, 22, 30, tzinfo=UTC),  # 10 April in Paris, 9 April in UTC
            }
        ),
        language,
    )


# --- dispatch ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_card_invoice_thanks_the_buyer_with_the_invoice_attached(language):
    event = in_language(example(InvoiceIssued), language)
    assert billing_mails(event, SETTINGS) == [
        Mail(
            template="payment_received",
            language=language,
            recipient=event.notice.email,
            variables={
                "name": event.notice.name,
                "number": event.number,
                "amount": GROSS[language],
                "issued_at": {"fr": "10 mars 2025", "en": "10 March 2025"}[language],
                "link": f"{BASE_URL}/account/invoices",
                "tokens": "1",
                ATTACHMENTS: [
                    {
                        "document_id": str(event.invoice_id),
                        "account_id": str(event.account_id),
                        "filename": "F2025-000123.pdf",
                    }
                ],
            },
        )
    ]


@pytest.mark.parametrize(("language", "due_at"), [("fr", "10 avril 2025"), ("en", "10 April 2025")])
def test_a_validated_purchase_order_sends_the_invoice_payable_by_its_due_day_in_paris(language, due_at):
    event = purchase_order_invoice(language)
    [mail] = billing_mails(event, SETTINGS)
    assert (mail.template, mail.language, mail.recipient) == ("purchase_order_validated", language, event.notice.email)
    assert mail.variables["due_at"] == due_at
    assert mail.variables["amount"] == GROSS[language]
    assert [ref["document_id"] for ref in mail.variables[ATTACHMENTS]] == [str(event.invoice_id)]
    rendered = render(mail.template, language, _template_variables(mail))
    assert due_at in rendered.text and {"fr": "virement", "en": "bank transfer"}[language] in rendered.text


def test_an_invoice_without_a_due_date_renders_without_one():
    [mail] = billing_mails(purchase_order_invoice().model_copy(update={"due_at": None}), SETTINGS)
    assert mail.variables["due_at"] == ""
    assert "payable par virement ;" in render(mail.template, "fr", _template_variables(mail)).text


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_purchase_order_received_tells_the_manager_and_alerts_each_organiser_in_french(language):
    event = in_language(example(PurchaseOrderReceived), language)
    manager, *alerts = billing_mails(event, SETTINGS)
    assert manager == Mail(
        template="purchase_order_received",
        language=language,
        recipient=event.notice.email,
        variables={
            "name": event.notice.name,
            "buyer_order_number": "BC-2025-117",
            "reference": "C2025-000042",
            "tokens": "10",
            "amount": GROSS[language],
            "link": f"{BASE_URL}/account/tokens",
        },
    )
    assert [alert.recipient for alert in alerts] == ORGANISERS
    for alert in alerts:
        assert (alert.template, alert.language) == ("purchase_order_alert", "fr")
        assert alert.variables == {
            "institution_name": "Lycée Jean Moulin",
            "reference": "C2025-000042",
            "buyer_order_number": "BC-2025-117",
            "tokens": "10",
            "net_amount": NET["fr"],
            "amount": GROSS["fr"],
            "received_at": local_datetime(event.received_at, "fr"),
            "link": f"{BASE_URL}/back-office/purchase-orders",
        }
    assert "purchase_order_alert" in ORGANISER_MAILS, "the alert is the organisers' mail, not the account's"


def test_the_purchase_order_mail_says_it_is_validated_within_24_hours():
    [manager, _, _] = billing_mails(example(PurchaseOrderReceived), SETTINGS)
    text = render(manager.template, "fr", manager.variables).text
    for phrase in ["bon de commande BC-2025-117", "notre référence C2025-000042", "sous 24 heures", "10 jetons"]:
        assert phrase in text
    text = render(manager.template, "en", manager.variables).text
    for phrase in ["purchase order BC-2025-117", "our reference C2025-000042", "within 24 hours", "10 tokens"]:
        assert phrase in text


def test_without_back_office_addresses_no_alert_is_planned():
    [manager] = billing_mails(example(PurchaseOrderReceived), NotifierSettings(public_base_url=BASE_URL))
    assert manager.template == "purchase_order_received"


def test_a_purchase_order_without_notice_still_alerts_the_organisers():
    mails = billing_mails(without_notice(example(PurchaseOrderReceived)), SETTINGS)
    assert [(mail.template, mail.recipient) for mail in mails] == [
        ("purchase_order_alert", address) for address in ORGANISERS
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_refused_purchase_order_gives_the_reason(language):
    event = in_language(example(PurchaseOrderRefused), language)
    assert billing_mails(event, SETTINGS) == [
        Mail(
            template="purchase_order_refused",
            language=language,
            recipient=event.notice.email,
            variables={
                "name": event.notice.name,
                "reference": "C2025-000042",
                "reason": "Numéro d'engagement manquant",
                "link": f"{BASE_URL}/account/tokens",
            },
        )
    ]


@pytest.mark.parametrize(
    ("language", "expires_at"),
    [("fr", "1 septembre 2026 00:00"), ("en", "1 September 2026 00:00")],
)
def test_expiring_tokens_give_the_count_and_the_paris_time_in_the_readers_language(language, expires_at):
    event = in_language(example(TokensExpiringSoon), language).model_copy(
        update={"expires_at": datetime(2026, 8, 31, 22, 0, tzinfo=UTC)}  # midnight in Paris, summer time
    )
    [mail] = billing_mails(event, SETTINGS)
    assert (mail.template, mail.language, mail.recipient) == ("tokens_expiring", language, event.notice.email)
    assert mail.variables["tokens"] == "3"
    assert mail.variables["expires_at"].startswith(expires_at)
    assert mail.variables["link"] == f"{BASE_URL}/planning"


@pytest.mark.parametrize(
    ("tokens", "fr", "en"),
    [("1", "1 jeton de votre établissement expire le", "1 token of your institution expires on"),
     ("3", "3 jetons de votre établissement expirent le", "3 tokens of your institution expire on")],
)  # fmt: skip
def test_the_expiry_mail_agrees_with_its_count(tokens, fr, en):
    [mail] = billing_mails(example(TokensExpiringSoon).model_copy(update={"tokens": int(tokens)}), SETTINGS)
    assert fr in render("tokens_expiring", "fr", mail.variables).text
    assert en in render("tokens_expiring", "en", mail.variables).text


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_credit_note_is_sent_with_its_pdf(language):
    event = in_language(example(CreditNoteIssued), language)
    assert billing_mails(event, SETTINGS) == [
        Mail(
            template="credit_note_issued",
            language=language,
            recipient=event.notice.email,
            variables={
                "name": event.notice.name,
                "number": "A2025-000007",
                "invoice_number": "F2025-000123",
                "amount": GROSS[language],
                "reason": "Commande annulée",
                "link": f"{BASE_URL}/account/invoices",
                ATTACHMENTS: [
                    {
                        "document_id": str(event.credit_note_id),
                        "account_id": str(event.account_id),
                        "filename": "A2025-000007.pdf",
                    }
                ],
            },
        )
    ]


def test_amounts_are_written_the_readers_way():
    big = example(InvoiceIssued).amounts.model_copy(
        update={"gross": example(InvoiceIssued).amounts.gross.model_copy(update={"amount_cents": 123456})}
    )
    event = example(InvoiceIssued).model_copy(update={"amounts": big})
    assert billing_mails(event, SETTINGS)[0].variables["amount"] == "1\u202f234,56\u00a0€"
    assert billing_mails(in_language(event, "en"), SETTINGS)[0].variables["amount"] == "€1,234.56"


def test_a_document_number_never_makes_an_odd_file_name():
    event = example(InvoiceIssued).model_copy(update={"number": "F2025/000123 x"})
    [mail] = billing_mails(event, SETTINGS)
    assert mail.variables[ATTACHMENTS][0]["filename"] == "F2025_000123_x.pdf"


@pytest.mark.parametrize(
    "model", [TokensExpiringSoon, PurchaseOrderRefused, InvoiceIssued, CreditNoteIssued]
)  # fmt: skip
def test_an_event_without_notice_plans_no_mail(model):
    assert billing_mails(without_notice(example(model)), SETTINGS) == []


NO_MAIL = [TokenPurchased, TokensDebited, TokenDebitRejected, TokensRefunded, TokensExpired]


@pytest.mark.parametrize("model", NO_MAIL)
def test_other_billing_events_ask_for_no_mail(model):
    assert billing_mails(example(model), SETTINGS) == []


def test_every_billing_event_makes_mails_or_is_known_to_make_none():
    assert set(TOPICS["billing.wallet"].events) == set(WALLET_MAILS) | set(NO_MAIL)
    assert set(TOPICS["billing.invoice"].events) == set(INVOICE_MAILS)


def test_the_consumers_subscribe_exactly_to_the_events_that_make_a_mail_or_a_webhook():
    from notifier.main import service
    from notifier.webhooks import INVOICE_WEBHOOKS, WALLET_WEBHOOKS

    consumers = {c.name: c for c in service.consumers}
    assert (consumers["wallet-mails"].topic, set(consumers["wallet-mails"].events)) == (
        "billing.wallet",
        set(WALLET_MAILS) | set(WALLET_WEBHOOKS),
    )
    assert (consumers["invoice-mails"].topic, set(consumers["invoice-mails"].events)) == (
        "billing.invoice",
        set(INVOICE_MAILS) | set(INVOICE_WEBHOOKS),
    )


def test_the_back_office_addresses_are_read_comma_separated(monkeypatch):
    monkeypatch.setenv("NOTIFIER_BACK_OFFICE_EMAILS", " compta@visiopass.example, ops@visiopass.example ,")
    assert NotifierSettings().back_office_emails == ORGANISERS
    monkeypatch.setenv("NOTIFIER_BACK_OFFICE_EMAILS", "")
    assert NotifierSettings().back_office_emails == []
    monkeypatch.setenv("NOTIFIER_BACK_OFFICE_EMAILS", "not-an-address")
    with pytest.raises(ValueError, match="back_office_emails"):
        NotifierSettings()


# --- templates ---------------------------------------------------------------------------------------------


def _template_variables(mail):
    """What the template is given: the delivery's variables without the attachment references."""
    return {name: value for name, value in mail.variables.items() if name != ATTACHMENTS}


def _planned(language):
    """One planned mail of each template, from the contracts' examples, in `language` (the alert: French)."""
    events = [
        example(InvoiceIssued),
        purchase_order_invoice(),
        example(PurchaseOrderReceived),
        example(PurchaseOrderRefused),
        example(TokensExpiringSoon),
        example(CreditNoteIssued),
    ]
    mails = [mail for event in events for mail in billing_mails(in_language(event, language), SETTINGS)]
    return {mail.template: mail for mail in mails}


def test_every_billing_template_is_planned_by_some_event():
    assert set(_planned("fr")) == set(_planned("en")) == set(TEMPLATES)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_renders_every_variable_raw_in_text_and_escaped_in_html(template, language):
    variables = _template_variables(_planned(language)[template]) | {
        "name": "Claire <Martin>",
        "reason": "Numéro <manquant> & signature",
        "institution_name": "Lycée <Jean> Moulin & Cie",
        "link": f"{BASE_URL}/x?a=1&b=2",
    }
    variables = {name: variables[name] for name in _planned(language)[template].variables if name != ATTACHMENTS}
    rendered = render(template, language, variables)
    assert rendered.subject and "\n" not in rendered.subject
    for name, value in variables.items():
        if not value:
            continue
        assert value in rendered.text, f"the text part carries {name} as is"
        if name == "link":
            assert f'href="{escape(value)}"' in rendered.html
        else:
            assert escape(value) in rendered.html, f"{name} is escaped in HTML"
        if escape(value) != value:
            assert value not in rendered.html
    assert rendered.text.endswith("\n") and rendered.html.endswith("\n")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_needs_each_of_its_variables(template, language):
    variables = _template_variables(_planned(language)[template])
    for missing in variables:
        with pytest.raises(Exception, match=missing):
            render(template, language, {k: v for k, v in variables.items() if k != missing})


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_no_subject_carries_text_someone_chose(template, language):
    mail = _planned(language)[template]
    rendered = render(template, language, _template_variables(mail))
    for name in ("name", "institution_name", "buyer_order_number", "reason"):
        if mail.variables.get(name):
            assert mail.variables[name] not in rendered.subject


@pytest.mark.parametrize(
    ("language", "greeting"), [("fr", "Bonjour,"), ("en", "Hello,")]
)  # fmt: skip
def test_a_notice_without_a_name_greets_without_one(language, greeting):
    event = in_language(example(PurchaseOrderRefused), language)
    event = event.model_copy(update={"notice": event.notice.model_copy(update={"name": ""})})
    [mail] = billing_mails(event, SETTINGS)
    assert render(mail.template, language, mail.variables).text.startswith(greeting)


@pytest.mark.parametrize(
    ("template", "language", "phrases"),
    [
        ("payment_received", "fr", ["Merci", "72,00\u00a0€ TTC", "Jetons crédités : 1", "jointe", "F2025-000123"]),
        ("payment_received", "en", ["Thank you", "€72.00 incl. VAT", "Tokens credited: 1", "attached", "F2025-000123"]),
        ("purchase_order_validated", "fr", ["validé", "crédités", "jointe", "virement", "10 avril 2025"]),
        ("purchase_order_validated", "en", ["validated", "credited", "attached", "bank transfer", "10 April 2025"]),
        ("purchase_order_refused", "fr", ["refusé", "Numéro d'engagement manquant", "ne devez rien"]),
        ("purchase_order_refused", "en", ["refused", "Numéro d'engagement manquant", "owe nothing"]),
        ("credit_note_issued", "fr", ["avoir A2025-000007", "facture F2025-000123", "Commande annulée", "joint"]),
        ("credit_note_issued", "en", ["credit note A2025-000007", "invoice F2025-000123", "Commande annulée"]),
        ("purchase_order_alert", "fr", ["Lycée Jean Moulin", "C2025-000042", "BC-2025-117", "60,00\u00a0€ HT"]),
    ],
)
def test_each_mail_says_what_it_must(template, language, phrases):
    mail = _planned(language)[template]
    rendered = render(template, mail.language, _template_variables(mail))
    for phrase in phrases:
        assert phrase in rendered.text
        assert str(escape(phrase)) in rendered.html


def test_the_organisers_alert_is_planned_in_french_whatever_the_managers_language():
    assert _planned("en")["purchase_order_alert"].language == "fr"


def test_the_delivery_row_holds_a_reference_to_the_pdf_never_the_pdf():
    for mail in _planned("fr").values():
        for reference in mail.variables.get(ATTACHMENTS, []):
            assert set(reference) == {"document_id", "account_id", "filename"}
            uuid.UUID(reference["document_id"])


def test_every_billing_mail_builder_is_listed_once():
    assert set(BILLING_MAILS) == set(WALLET_MAILS) | set(INVOICE_MAILS)
