"""The mails of taking part in a session (issue 13): the institution's participation link, the link a manager shares
with a colleague (by mail or SMS), and each participant's thanks with their attendance certificate.

- **ParticipationLinkIssued** (J-2, or at confirmation when later): `participation_link` to the enrolment's contact,
  from the notifier's copy of the enrolments (notifier.enrolment_mails); no copy, a cancelled one or one naming
  nobody: no mail (logged). Bulk: every institution of a session gets its link at once. The superseded v1 (token in
  clear, never produced) only feeds the webhooks.
- **ParticipationLinkShared**: `participation_link_shared` to the recipient the manager typed, by mail or by SMS (the
  template's `sms` block; the personal message shortened so that the link always fits).
- **CertificateIssued**: `session_thanks` to the participant's address, else to the enrolment's contact (the event's
  `notice`); neither: no mail. The certificate's PDF is attached by reference (`service.attachment`, source
  enrollment), fetched from enrollment when the mail is sent (notifier.documents). Bulk: a session's certificates
  come together.

The tokens of the links come sealed (contracts.secrets) and are opened here with the notifier's keyring
(handlers.opened), in memory. Times are written in the session's own zone and the reader's language; the session is
the notifier's copy (notifier.sessions): a link for a session it has no copy of yet raises (tried again)."""

import logging
import re
from datetime import time
from typing import Any

import babel.dates
from sqlalchemy import Row

from contracts.base import Event
from contracts.events.enrollment import CertificateIssued, ParticipationLinkIssued, ParticipationLinkShared
from contracts.secrets import Keyring
from notifier import service as notifier
from notifier.handlers import Mail, opened
from notifier.settings import NotifierSettings
from notifier.sms import InvalidPhoneNumber, normalise

log = logging.getLogger(__name__)

PARTICIPATION_EVENTS = [ParticipationLinkIssued, ParticipationLinkShared, CertificateIssued]
ROOM_OPENS_MINUTES_BEFORE = 15  # enrollment's ENROLLMENT_ROOM_OPENS_MINUTES_BEFORE: when the join page lets people in
SMS_MESSAGE_CHARACTERS = 120  # a personal message longer than this is shortened in an SMS (the link comes first)
WEBVISIO_PAGE = "/account/webvisio"
_WORDS = {"fr": ("du {first} au {last}", "et"), "en": ("{first} to {last}", "and")}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def support_hours(days: str, hours: str, language: str) -> str:
    """The support's opening hours in words, e.g. "du lundi au vendredi, 08:30-12:00 et 13:30-17:00" (en dashes);
    `days` "mon-fri" (or one day), `hours` "08:30-12:00,13:30-17:00" (notifier.settings checks both)."""
    span, conjunction = _WORDS.get(language, _WORDS["en"])
    names = babel.dates.get_day_names("wide", locale=language)
    first, _, last = days.strip().lower().partition("-")
    said = names[_DAYS.index(first)]
    if last and last != first:
        said = span.format(first=said, last=names[_DAYS.index(last)])
    periods = []
    for period in hours.split(","):
        opens, _, closes = period.strip().partition("-")
        periods.append(
            "\u2013".join(
                babel.dates.format_time(time.fromisoformat(t), "short", locale=language) for t in (opens, closes)
            )
        )
    return f"{said}, {f' {conjunction} '.join(periods)}"


def _session(session_row: Row[Any], language: str) -> dict[str, str]:
    return {
        "title": session_row.title,
        "starts_at": notifier.local_datetime(session_row.starts_at, language, session_row.timezone),
    }


def _joining(settings: NotifierSettings, token: str, language: str) -> dict[str, str]:
    """What every link mail says of joining: the link, when the page opens, the equipment test, the phone."""
    return {
        "link": f"{settings.public_base_url}/join/{token}",
        "opens_minutes": str(ROOM_OPENS_MINUTES_BEFORE),
        "equipment_test_url": settings.equipment_test_url,
        "dial_in_phone": settings.dial_in_phone or "",
        "support_phone": settings.support_phone,
        "support_hours": support_hours(settings.support_days, settings.support_hours, language),
    }


def link_issued_mails(
    event: ParticipationLinkIssued, copy: Row[Any] | None, session_row: Row[Any] | None, settings: NotifierSettings
) -> list[Mail]:
    """`event` opened (its token plain); `copy`: the notifier's copy of the enrolment."""
    if copy is None or copy.status != "active" or not copy.email:
        state = "no copy" if copy is None else "cancelled" if copy.status != "active" else "no contact"
        log.warning("no participation link mail for enrolment %s: %s", event.enrollment_id, state)
        return []
    if session_row is None:
        raise LookupError(f"the notifier has no copy of session {event.session_id} yet")
    language = copy.language
    variables = {
        "name": copy.name or "",
        **_session(session_row, language),
        **_joining(settings, event.join_token, language),
        "webvisio_link": f"{settings.public_base_url}{WEBVISIO_PAGE}",
    }
    return [Mail("participation_link", language, copy.email, variables, bulk=True)]


def _shortened(message: str, limit: int) -> str:
    flat = " ".join(message.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.") + "\u2026"


def link_shared_mails(
    event: ParticipationLinkShared, session_row: Row[Any] | None, settings: NotifierSettings
) -> list[Mail]:
    """`event` opened (its token plain). By SMS: to the number made E.164, the personal message shortened."""
    if session_row is None:
        raise LookupError(f"the notifier has no copy of session {event.session_id} yet")
    language = event.language
    variables = {
        "name": event.recipient_name or "",
        "sender_name": event.sender_name or "",
        "message": event.message or "",
        **_session(session_row, language),
        **_joining(settings, event.join_token, language),
    }
    if event.channel == "email":
        return [Mail("participation_link_shared", language, event.recipient, variables)]
    try:
        number = normalise(event.recipient, settings.sms_default_region)
    except InvalidPhoneNumber as exc:  # enrollment checked its form; a number no SMS can reach is told, not retried
        log.warning("participation link share %s not sent by SMS: %s", event.share_id, exc)
        return []
    variables["message"] = _shortened(variables["message"], SMS_MESSAGE_CHARACTERS)
    return [Mail("participation_link_shared", language, number, variables, channel="sms")]


def _certificate_filename(code: str | None, language: str) -> str:
    stem = "attestation" if language == "fr" else "certificate"
    return f"{stem}-{re.sub(r'[^A-Za-z0-9-]', '', code)}.pdf" if code else f"{stem}.pdf"


def thanks_mails(
    event: CertificateIssued, copy: Row[Any] | None, session_row: Row[Any] | None, settings: NotifierSettings
) -> list[Mail]:
    """`event` opened (its feedback token plain). To the participant, else the enrolment's contact, in the contact's
    language (the participant's own is not known)."""
    recipient = event.participant_email or (event.notice.email if event.notice else None)
    if recipient is None:
        log.info("no thanks mail for certificate %s: no address", event.certificate_id)
        return []
    if session_row is None:
        raise LookupError(f"the notifier has no copy of session {event.session_id} yet")
    language = event.notice.language if event.notice else copy.language if copy is not None else "fr"
    base = settings.public_base_url
    code = event.verification_code or ""
    variables = {
        "name": event.participant_name,
        **_session(session_row, language),
        "code": code,
        "verify_link": f"{base}/certificates/verify?code={code}" if code else "",
        "feedback_link": f"{base}/feedback/{event.feedback_token}" if event.feedback_token else "",
        notifier.ATTACHMENTS: [
            notifier.attachment(
                event.certificate_id,
                event.account_id,
                _certificate_filename(event.verification_code, language),
                notifier.ENROLLMENT,
            )
        ],
    }
    return [Mail("session_thanks", language, recipient, variables, bulk=True)]


def participation_mails(
    event: Event,
    copy: Row[Any] | None,
    session_row: Row[Any] | None,
    settings: NotifierSettings,
    keyring: Keyring | None,
) -> list[Mail]:
    """The mails (and SMS) of a participation event; none for another event."""
    if isinstance(event, ParticipationLinkIssued):
        return link_issued_mails(opened(event, keyring), copy, session_row, settings)
    if isinstance(event, ParticipationLinkShared):
        return link_shared_mails(opened(event, keyring), session_row, settings)
    if isinstance(event, CertificateIssued):
        return thanks_mails(opened(event, keyring), copy, session_row, settings)
    return []
