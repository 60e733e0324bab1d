"""The walking skeleton, through real processes: gateway -> accounts -> outbox -> Kafka -> notifier -> SMTP ->
the link -> accounts -> AccountVerified on Kafka."""

import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from contracts import decode
from identifiers import new_siret, new_uai
from kit import records_with_keys, wait_for
from mail import hidden_fields, links_in, mails_to, wait_for_mail
from metrics import sample

pytestmark = pytest.mark.infra


async def test_sign_up_mail_link_verifies_the_account(system, stack, kafka):
    email = f"direction-{uuid.uuid4().hex[:8]}@lycee-test.fr"
    correlation = f"test-{uuid.uuid4()}"
    password = "violet tramway under nineteen lanterns"
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        created = await gateway.post(
            "/api/v1/accounts",
            json={
                "institution_name": "Lycée Victor Hugo",
                "institution_kind": "school",
                "institution_identifier": new_uai(),
                "contact_name": "Camille Martin",
                "email": email,
                "password": password,
                "language": "fr",
            },
            headers={"X-Correlation-ID": correlation},
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Correlation-ID"] == correlation
        account_id = created.json()["account_id"]
        assert created.json()["status"] == "pending_verification"

        mail = await wait_for_mail(stack.mail_api, email, subject_contains="Confirmez votre adresse")
        assert "Lycée Victor Hugo" in mail["text"] and "Lycée" not in mail["subject"], "typed names stay out of it"
        assert "Camille Martin" in mail["text"]
        [link] = [link for link in links_in(mail["text"]) if "/verify-email" in link]
        assert link.startswith(system.url("gateway"))

        page = await gateway.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert page.status_code == 200
        form = hidden_fields(page.text)
        token = form["token"]
        forged = await gateway.post("/verify-email", data={"token": token})
        assert forged.status_code == 403, "a form post without the CSRF token is refused"
        confirmed = await gateway.post("/verify-email", data=form)
        assert confirmed.status_code == 200
        assert "Adresse e-mail confirmée" in confirmed.text

        again = await gateway.post("/api/v1/accounts/verification", json={"token": token})
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_token"

    async def verified_published() -> bool:
        records = await records_with_keys(kafka, "accounts.account", [account_id])
        return any(dict(r.headers)["ce_type"].endswith(b".AccountVerified.v1") for r in records)

    await wait_for(verified_published, timeout=30, what="AccountVerified on accounts.account")
    records = await records_with_keys(kafka, "accounts.account", [account_id])
    events = [decode(r.topic, r.key, r.value, r.headers) for r in records]
    assert [e.event.type for e in events] == ["AccountRegistered", "AccountVerified"]
    assert events[0].correlation_id == correlation
    assert all(e.source == "/visiopass/accounts" for e in events)

    notifier_log = (system.log_dir / "notifier.log").read_text()
    assert f'"correlation_id": "{correlation}"' in notifier_log, "the consumer logs under the HTTP request's id"
    logs = [path.read_text() for path in system.log_dir.glob("*.log")]
    mails = [m["subject"] + m["text"] + (m["html"] or "") for m in await mails_to(stack.mail_api, email)]
    scanned = [*logs, *(r.value.decode() for r in records), *mails]
    assert not [text for text in scanned if password in text], "the password never appears in logs, events or mails"

    async with httpx.AsyncClient(timeout=10) as client:
        accounts_metrics = (await client.get(f"{system.url('accounts')}/metrics")).text
        notifier_metrics = (await client.get(f"{system.url('notifier')}/metrics")).text
        # the gateway's metrics are on its internal port only; its public port answers 404 there
        gateway_metrics = (await client.get(system.metrics_url("gateway"))).text
        public_metrics = await client.get(f"{system.url('gateway')}/metrics")
        api_answer = await client.get(f"{system.url('gateway')}/api/v1/member-import-template")
    assert system.metrics_url("gateway") != f"{system.url('gateway')}/metrics"
    assert sample(gateway_metrics, "http_requests_total", app_name="gateway") > 0
    assert public_metrics.status_code == 404 and public_metrics.headers["cache-control"] == "no-store"
    assert api_answer.status_code == 200, api_answer.text
    assert api_answer.headers["cache-control"] == "no-store"
    assert "script-src 'self';" in api_answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in api_answer.headers["content-security-policy"]
    assert api_answer.headers["x-content-type-options"] == "nosniff"
    assert api_answer.headers["referrer-policy"] == "no-referrer"
    assert sample(accounts_metrics, "outbox_published_events_total", service="accounts") >= len(events)
    assert sample(accounts_metrics, "outbox_backlog_events", service="accounts") >= 0
    assert sample(accounts_metrics, "http_requests_total") > 0
    assert sample(notifier_metrics, "faststream_received_messages_total") > 0
    processed = sample(notifier_metrics, "consumer_events_total", consumer="account-mails", outcome="processed")
    assert processed >= 1


async def test_forgotten_password_through_the_portal_and_the_mail(system, stack):
    email = f"reset-{uuid.uuid4().hex[:8]}@college-test.fr"
    body = {
        "institution_name": "Collège Jean Moulin",
        "institution_kind": "school",
        "institution_identifier": new_uai(),
        "contact_name": "Sam Leroy",
        "email": email,
        "password": "quiet otters juggle amber kites",
        "language": "en",
    }
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        assert (await gateway.post("/api/v1/accounts", json=body)).status_code == 201
        unknown = await gateway.post("/api/v1/password-resets", json={"email": f"x{email}"})
        known = await gateway.post("/api/v1/password-resets", json={"email": email})
        assert (
            (unknown.status_code, unknown.json()) == (known.status_code, known.json()) == (202, {"status": "accepted"})
        )

        mail = await wait_for_mail(stack.mail_api, email, subject_contains="Reset your")
        [link] = [link for link in mail["links"] if "/reset-password" in link]
        page = await gateway.get(urlsplit(link).path + "?" + urlsplit(link).query)
        weak = await gateway.post("/reset-password", data={**hidden_fields(page.text), "new_password": "password123"})
        assert weak.status_code == 400
        assert 'id="error-new_password"' in weak.text
        done = await gateway.post(
            "/reset-password", data={**hidden_fields(weak.text), "new_password": "seven copper herons over the loire"}
        )
        assert done.status_code == 200
        assert 'id="done"' in done.text

    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("accounts"), timeout=10, headers=headers) as accounts:
        login = {"email": email, "password": "seven copper herons over the loire", "source": "127.0.0.1"}
        opened = await accounts.post("/internal/sessions", json=login)
        assert (opened.status_code, opened.json()["identity"]["email"]) == (201, email)
        old = await accounts.post("/internal/sessions", json={**login, "password": body["password"]})
        assert old.json()["code"] == "invalid_credentials"
    notice = await wait_for_mail(stack.mail_api, email, subject_contains="changed")
    assert "/forgot-password" in notice["text"]


async def test_a_second_sign_up_with_the_same_email_looks_the_same_and_tells_the_owner(system, stack):
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
        first = await gateway.post("/api/v1/accounts", json=body)
        assert first.status_code == 201
        second = await gateway.post(
            "/api/v1/accounts", json={**body, "email": email.upper(), "institution_identifier": new_siret()}
        )
        assert (second.status_code, second.json().keys()) == (201, first.json().keys()), "the same answer"
        assert second.json()["status"] == "pending_verification"
        assert second.json()["account_id"] != first.json()["account_id"]
        notice = await wait_for_mail(stack.mail_api, email, subject_contains="Tentative d'inscription")
        assert "/forgot-password" in notice["text"] and "ACME" not in notice["text"]
        await wait_for_mail(stack.mail_api, email, subject_contains="Confirmez votre adresse")  # one, not two
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


async def test_sessions_log_in_identify_and_log_out_everywhere(system, stack):
    email = f"session-{uuid.uuid4().hex[:8]}@college-test.fr"
    password = "quiet otters juggle amber kites"
    body = {
        "institution_name": "Collège Session",
        "institution_kind": "school",
        "institution_identifier": new_uai(),
        "contact_name": "Sam Leroy",
        "email": email,
        "password": password,
    }
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        account_id = (await gateway.post("/api/v1/accounts", json=body)).json()["account_id"]
        assert (await gateway.get("/api/v1/me")).json()["code"] == "unauthenticated"
        resent = await gateway.post("/api/v1/accounts/verification/resend", json={"email": email})
        assert (resent.status_code, resent.json()) == (202, {"status": "accepted"})
        await wait_for_mail(stack.mail_api, email, subject_contains="nouveau lien")
        wrong = await gateway.post("/api/v1/sessions", json={"email": email, "password": "not the password!"})
        unknown = await gateway.post("/api/v1/sessions", json={"email": f"x{email}", "password": "not the password!"})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()

        created = await gateway.post("/api/v1/sessions", json={"email": email, "password": password})
        assert created.status_code == 201
        auth = {"Authorization": f"Bearer {created.json()['token']}"}
        me = (await gateway.get("/api/v1/me", headers=auth)).json()
        assert (me["email"], me["email_verified"], me["memberships"]) == (email, False, {account_id: "manager"})
        assert (me["language"], "session_id" in me) == ("fr", False)
        tampered = {"Authorization": auth["Authorization"][:-2] + "xx"}
        assert (await gateway.get("/api/v1/me", headers=tampered)).status_code == 401

        assert (await gateway.post("/api/v1/sessions/logout-everywhere", headers=auth)).status_code == 204
        ended = await gateway.get("/api/v1/me", headers=auth)
        assert (ended.status_code, ended.json()["code"]) == (401, "session_expired")

        for _ in range(5):  # the successful login above cleared the earlier failure
            await gateway.post("/api/v1/sessions", json={"email": email, "password": "not the password!"})
        locked = await gateway.post("/api/v1/sessions", json={"email": email, "password": password})
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 0
        assert "minute" in locked.json()["detail"]


async def test_an_institution_never_sees_another_ones_profile(system):
    async def signed_in(gateway, name):  # type: ignore[no-untyped-def]
        email = f"{name}-{uuid.uuid4().hex[:8]}@lycee-test.fr"
        password = "quiet otters juggle amber kites"
        body = {
            "institution_name": f"Lycée {name}",
            "institution_kind": "school",
            "institution_identifier": new_uai(),
            "contact_name": "Sam Leroy",
            "email": email,
            "password": password,
        }
        account_id = (await gateway.post("/api/v1/accounts", json=body)).json()["account_id"]
        token = (await gateway.post("/api/v1/sessions", json={"email": email, "password": password})).json()["token"]
        return account_id, {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        a, as_a = await signed_in(gateway, "a")
        b, _ = await signed_in(gateway, "b")
        own = await gateway.patch(f"/api/v1/accounts/{a}/profile", json={"phone": "06 12 34 56 78"}, headers=as_a)
        assert (own.status_code, own.json()["phone"]) == (200, "+33612345678")
        for request in (
            gateway.get(f"/api/v1/accounts/{b}/profile", headers=as_a),
            gateway.patch(f"/api/v1/accounts/{b}/profile", json={"city": "Paris"}, headers=as_a),
            gateway.get(f"/api/v1/accounts/{uuid.uuid4()}/profile", headers=as_a),
        ):
            response = await request
            assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert (await gateway.get(f"/api/v1/accounts/{a}/profile")).status_code == 401
