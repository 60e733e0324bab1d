"""The enrolment mails on the running system: an enrolment asked for with a `notice` is confirmed through the saga
and the person named gets the confirmation with its calendar invitation (METHOD:REQUEST, the enrolment's UID);
cancelling it sends the withdrawal (METHOD:CANCEL, a higher SEQUENCE). Mails are read raw from the catcher."""

import email
import email.policy
import uuid
from email.message import Message
from typing import Any

import httpx
import icalendar
from test_billing_saga import funded_account
from test_enrolment_saga import clients, new_session, status_until

from mail import wait_for_mail


async def raw_mail(mail_api: str, mail: dict[str, Any]) -> Message:
    async with httpx.AsyncClient(base_url=mail_api, timeout=30) as client:
        raw = (await client.get(f"/api/messages/{mail['id']}/raw")).content
    return email.message_from_bytes(raw, policy=email.policy.default)


def calendar_of(message: Message) -> Any:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = icalendar.Calendar.from_ical(payload)
    (event,) = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), str(event["UID"]), int(event["SEQUENCE"])


async def confirmed_enrolment(
    system: Any, gateway: httpx.AsyncClient, enrollment: httpx.AsyncClient, to: str, language: str
) -> tuple[str, str, str]:
    """An enrolment asked for by Claire Martin (`to`, `language`) and confirmed through the saga: its account,
    session and enrolment ids."""
    account_id = await funded_account(system, gateway, 2)  # one for billing's probe, one to enrol
    session_id = await new_session(system, enrollment)
    asked = await enrollment.post(
        "/internal/enrolments",
        json={
            "account_id": account_id,
            "session_id": session_id,
            "expected_participants": 5,
            "notice": {"email": to, "name": "Claire Martin", "language": language},
        },
    )
    assert asked.status_code == 202, asked.text
    enrollment_id = asked.json()["id"]
    await status_until(enrollment, enrollment_id, account_id, "confirmed")
    return account_id, session_id, enrollment_id


async def test_a_confirmed_enrolment_is_mailed_with_its_invitation_and_a_cancellation_withdraws_it(system) -> None:  # type: ignore[no-untyped-def]
    gateway, enrollment = clients(system)
    mail_api = system.stack.mail_api
    to = f"claire-{uuid.uuid4().hex[:12]}@example.fr"
    async with gateway, enrollment:
        account_id, _, enrollment_id = await confirmed_enrolment(system, gateway, enrollment, to, "en")

        confirmed = await wait_for_mail(mail_api, to, subject_contains="Enrolment confirmed")
        assert "Claire Martin" in confirmed["text"] and "Prise en main de Pronote" in confirmed["text"]
        method, uid, request_sequence = calendar_of(await raw_mail(mail_api, confirmed))
        assert (method, uid) == ("REQUEST", f"enrolment-{enrollment_id}@visiopass")

        cancelled = await enrollment.post(
            f"/internal/enrolments/{enrollment_id}/cancellation", json={"account_id": account_id}
        )
        assert cancelled.status_code == 200, cancelled.text
        withdrawn = await wait_for_mail(mail_api, to, subject_contains="Enrolment cancelled")
        assert "credited back" in withdrawn["text"]
        method, uid, sequence = calendar_of(await raw_mail(mail_api, withdrawn))
        assert (method, uid) == ("CANCEL", f"enrolment-{enrollment_id}@visiopass")
        assert sequence > request_sequence
