"""The participation mails on the running system, through Kafka: an enrolment confirmed through the saga (the
notifier's copy names its contact), then the participation link issued and shared (by mail and by SMS), sealed
with the system's keyring as enrollment seals them: the contact gets the link, the colleague the link with the
manager's message escaped, the phone an SMS with the link. Mails and SMS are read from the catcher."""

import secrets
import uuid
from typing import Any

import httpx
from test_billing_saga import publish
from test_enrolment_mails import confirmed_enrolment
from test_enrolment_saga import clients

from contracts.events.enrollment import ParticipationLinkIssued, ParticipationLinkShared
from contracts.secrets import Keyring, seal, secret_context
from kit import wait_for
from mail import wait_for_mail


def sealed(model: type, enrollment_id: str, token: str, keyring: Keyring) -> str:
    return seal(token, keyring, secret_context(model, "join_token", uuid.UUID(enrollment_id)))


async def sms_to(mail_api: str, number: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=mail_api, timeout=30) as client:
        return list((await client.get("/api/sms", params={"to": number})).json())


async def test_the_participation_link_is_mailed_to_the_contact_and_shared_by_mail_and_sms(system) -> None:  # type: ignore[no-untyped-def]
    gateway, enrollment = clients(system)
    mail_api, keyring = system.stack.mail_api, Keyring.parse(system.event_secret_keys)
    contact, colleague = (f"{who}-{uuid.uuid4().hex[:12]}@example.fr" for who in ("claire", "paul"))
    phone = f"+3361{secrets.randbelow(10**7):07d}"
    async with gateway, enrollment:
        account_id, session_id, enrollment_id = await confirmed_enrolment(system, gateway, enrollment, contact, "fr")
        await wait_for_mail(mail_api, contact, subject_contains="Inscription confirmée")  # the copy is there

    ids = {"enrollment_id": enrollment_id, "account_id": account_id, "session_id": session_id}
    token, shared_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    share = {
        "sender_name": "Claire Martin",
        "message": "Paul, voici le lien <b>de jeudi</b> & à bientôt",
        "join_token": sealed(ParticipationLinkShared, enrollment_id, shared_token, keyring),
        **ids,
    }
    await publish(
        system,
        [
            ParticipationLinkIssued(join_token=sealed(ParticipationLinkIssued, enrollment_id, token, keyring), **ids),
            ParticipationLinkShared(
                share_id=uuid.uuid4(), channel="email", recipient=colleague, language="en", **share
            ),
            ParticipationLinkShared(share_id=uuid.uuid4(), channel="sms", recipient=phone, **share),
        ],
    )
    base = system.url("gateway")
    link = await wait_for_mail(mail_api, contact, subject_contains="Votre lien de participation")
    assert f"{base}/join/{token}" in link["text"] and "Prise en main de Pronote" in link["subject"]
    assert "https://test.webrtc.org/" in link["text"]
    passed_on = await wait_for_mail(mail_api, colleague, subject_contains="Participation link")
    assert f"{base}/join/{shared_token}" in passed_on["text"]
    assert "> Paul, voici le lien <b>de jeudi</b> & à bientôt" in passed_on["text"]
    assert "&lt;b&gt;de jeudi&lt;/b&gt; &amp; à bientôt" in passed_on["html"]

    async def texted() -> bool:
        return bool(await sms_to(mail_api, phone))

    await wait_for(texted, timeout=30, what="the SMS")
    [sms] = await sms_to(mail_api, phone)
    assert f"{base}/join/{shared_token}" in sms["text"] and "Claire Martin" in sms["text"]
