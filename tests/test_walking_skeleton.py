"""The walking skeleton, through real processes: gateway -> accounts -> outbox -> Kafka -> notifier -> SMTP ->
the link -> accounts -> AccountVerified on Kafka."""

import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from contracts import decode
from identifiers import new_siret, new_uai
from kit import records_with_keys, wait_for
from mail import links_in, wait_for_mail

pytestmark = pytest.mark.infra


async def test_sign_up_mail_link_verifies_the_account(system, stack, kafka):
    email = f"direction-{uuid.uuid4().hex[:8]}@lycee-test.fr"
    correlation = f"test-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        created = await gateway.post(
            "/api/v1/accounts",
            json={
                "institution_name": "Lycée Victor Hugo",
                "institution_kind": "school",
                "institution_identifier": new_uai(),
                "contact_name": "Camille Martin",
                "email": email,
                "password": "violet tramway under nineteen lanterns",
                "language": "fr",
            },
            headers={"X-Correlation-ID": correlation},
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Correlation-ID"] == correlation
        account_id = created.json()["account_id"]
        assert created.json()["status"] == "pending_verification"

        mail = await wait_for_mail(stack.mail_api, email)
        assert "Lycée Victor Hugo" in mail["subject"]
        assert "Camille Martin" in mail["text"]
        [link] = [link for link in links_in(mail["text"]) if "/verify-email" in link]
        assert link.startswith(system.url("gateway"))

        page = await gateway.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert page.status_code == 200
        token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
        confirmed = await gateway.post("/verify-email", data={"token": token})
        assert confirmed.status_code == 200
        assert "Adresse e-mail confirmée" in confirmed.text

        again = await gateway.post("/api/v1/accounts/verification", json={"token": token})
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_token"

    async def verified_published() -> bool:
        records = await records_with_keys(kafka, "accounts.account", [account_id])
        return any(dict(r.headers)["ce_type"].endswith(b".AccountVerified.v1") for r in records)

    await wait_for(verified_published, timeout=30, what="AccountVerified on accounts.account")
    events = [
        decode(r.topic, r.key, r.value, r.headers)
        for r in await records_with_keys(kafka, "accounts.account", [account_id])
    ]
    assert [e.event.type for e in events] == ["AccountRegistered", "AccountVerified"]
    assert events[0].correlation_id == correlation
    assert all(e.source == "/visiopass/accounts" for e in events)

    notifier_log = (system.log_dir / "notifier.log").read_text()
    assert f'"correlation_id": "{correlation}"' in notifier_log, "the consumer logs under the HTTP request's id"
    assert "correct horse" not in notifier_log + (system.log_dir / "accounts.log").read_text()

    async with httpx.AsyncClient(timeout=10) as client:
        accounts_metrics = (await client.get(f"{system.url('accounts')}/metrics")).text
        notifier_metrics = (await client.get(f"{system.url('notifier')}/metrics")).text
    assert 'outbox_published_events_total{service="accounts"}' in accounts_metrics
    assert "outbox_backlog_events" in accounts_metrics
    assert "http_requests_total" in accounts_metrics
    assert "faststream_received_messages_total" in notifier_metrics
    assert 'consumer_events_total{consumer="account-mails"' in notifier_metrics


async def test_a_second_sign_up_with_the_same_email_is_refused(system):
    email = f"dup-{uuid.uuid4().hex[:8]}@entreprise-test.fr"
    body = {
        "institution_name": "ACME",
        "institution_kind": "company",
        "institution_identifier": new_siret(),
        "contact_name": "Alex Dupont",
        "email": email,
        "password": "quiet otters juggle amber kites",
    }
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        assert (await gateway.post("/api/v1/accounts", json=body)).status_code == 201
        second = await gateway.post(
            "/api/v1/accounts", json={**body, "email": email.upper(), "institution_identifier": new_siret()}
        )
        assert second.status_code == 409
        assert second.headers["content-type"].startswith("application/problem+json")
        assert second.json()["code"] == "email_taken"
        same_company = await gateway.post("/api/v1/accounts", json={**body, "email": f"other-{email}"})
        assert same_company.status_code == 409
        assert same_company.json()["code"] == "institution_exists"
        assert email not in same_company.text, "the existing manager's email is never revealed"
        weak = await gateway.post(
            "/api/v1/accounts",
            json={**body, "email": f"w-{email}", "institution_identifier": new_siret(), "password": "motdepasse2024"},
        )
        assert weak.status_code == 400
        assert (weak.json()["code"], weak.json()["field"]) == ("password_common", "password")
        invalid = await gateway.post("/api/v1/accounts", json={**body, "email": "not-an-email"})
        assert invalid.status_code == 400
        assert invalid.json()["code"] == "invalid_request"
