import re
from datetime import UTC, datetime

import pytest

from notifier.service import compose, local_datetime, render

VARIABLES = {
    "contact_name": "Camille <Martin>",
    "institution_name": "Lycée Victor Hugo",
    "link": "http://127.0.0.1:8000/verify-email?token=abc&x=1",
    "expires_at": "12 mars 2026 10:00 UTC+1",
}


@pytest.mark.parametrize(("language", "greeting"), [("fr", "Bonjour"), ("en", "Hello")])
def test_account_registered_renders_in_each_language(language, greeting):
    rendered = render("account_registered", language, VARIABLES)
    assert "Lycée Victor Hugo" not in rendered.subject, "the name someone typed stays out of the subject"
    assert "Lycée Victor Hugo" in rendered.text
    assert "\n" not in rendered.subject
    assert rendered.text.startswith(f"{greeting} Camille <Martin>,")
    assert VARIABLES["link"] in rendered.text
    assert "Camille &lt;Martin&gt;" in rendered.html, "variables are escaped in HTML"
    assert 'href="http://127.0.0.1:8000/verify-email?token=abc&amp;x=1"' in rendered.html


def test_a_missing_variable_is_an_error_not_a_blank():
    with pytest.raises(Exception, match="link"):
        render("account_registered", "fr", {k: v for k, v in VARIABLES.items() if k != "link"})


def test_dates_are_shown_in_paris_time():
    assert local_datetime(datetime(2026, 7, 1, 8, 0, tzinfo=UTC), "fr").startswith("1 juillet 2026 10:00")


def test_the_message_has_text_and_html_alternatives():
    from email import message_from_bytes
    from email import policy as email_policy

    from notifier.mailer import to_wire

    composed = compose("Visiopass <no-reply@x.fr>", "a@b.fr", render("account_registered", "en", VARIABLES), "en")
    message = message_from_bytes(to_wire(composed), policy=email_policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_a_french_subject_survives_the_wire_intact():
    from email import message_from_bytes
    from email import policy as email_policy

    from notifier.mailer import to_wire
    from notifier.service import Rendered

    subject = "Inscription confirmée : « Pronote avancé » ✓ pour le Lycée Victor Hugo de Saint-Étienne"
    message = compose("Visiopass <no-reply@x.fr>", "a@b.fr", Rendered(subject, "texte", "<p>texte</p>"), "fr")
    wire = to_wire(message)
    assert message_from_bytes(wire, policy=email_policy.default)["Subject"] == subject
    encoded_words = re.findall(rb"=\?[^?]+\?[bqBQ]\?[^?]*\?=", wire)
    assert encoded_words and all(len(word) <= 75 for word in encoded_words), "RFC 2047: 75 characters at most"
