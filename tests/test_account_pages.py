"""The pages of "Mon compte" and the organisers' back-office, through the portal's forms against the real
services: the dashboard's parts, join requests and the switcher between institutions; Mes informations edited by
a manager and only read by a member; the person's own page (password, email, log out everywhere, API tokens);
the GDPR export and the closure; the back-office's organisers and delivery log, which nobody else sees."""

import asyncio
import json
import re
import time

import httpx
import pytest
from portal_world import csrf_token, portal_login, submit

from api_world import MEMBER_PASSWORD, PASSWORD, Manager, grant_organiser, link_path, sign_up, unique_email
from mail import wait_for_mail

pytestmark = pytest.mark.infra

NEW_PASSWORD = "seventeen amber kites above the harbour"


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


async def new_manager(gateway: httpx.AsyncClient, system, label: str, verified: bool = True) -> Manager:  # type: ignore[no-untyped-def]
    return await sign_up(gateway, label, verified_with=system.stack.mail_api if verified else None)


async def new_member(gateway: httpx.AsyncClient, system, manager: Manager, label: str) -> str:  # type: ignore[no-untyped-def]
    """A member of the manager's account who accepted the invitation; their address."""
    email = unique_email(label)
    members = f"/api/v1/accounts/{manager.account_id}/members"
    added = await gateway.post(members, json={"members": [{"name": "Léa Petit", "email": email}]}, headers=manager.auth)
    assert added.status_code == 200, added.text
    token = link_path(await wait_for_mail(system.stack.mail_api, email), "accept-invitation").split("token=")[1]
    accepted = await gateway.post(
        "/api/v1/invitations/acceptance", json={"token": token, "new_password": MEMBER_PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    return email


async def post_from(client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
    return await submit(client, page, action, fields, follow_redirects=False)


async def test_the_dashboard_shows_its_parts_the_join_requests_and_the_switcher(gateway, system):
    manager = await new_manager(gateway, system, "pages-dash-a")
    other = await new_manager(gateway, system, "pages-dash-b")
    # B asks A's manager (who has an identity already) to join B
    asked = await gateway.post(
        f"/api/v1/accounts/{other.account_id}/members",
        json={"members": [{"name": "Camille Martin", "email": manager.email}]},
        headers=other.auth,
    )
    assert asked.status_code == 200, asked.text
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        dashboard = await client.get("/account")
        assert dashboard.status_code == 200, dashboard.text
        for part in ("part-institution", "part-person", "part-members", "part-recent-mails", "invitations"):
            assert f'id="{part}"' in dashboard.text, part
        assert "Lycée pages-dash-a" in dashboard.text and "Lycée pages-dash-b" in dashboard.text
        assert "Confirmation de votre adresse e-mail, " in dashboard.text  # the recent mails say which mail
        assert 'id="unverified"' not in dashboard.text and "switch-account" not in dashboard.text
        joined = await post_from(client, "/account", f"/account/invitations/{other.account_id}/acceptance", {})
        assert (joined.status_code, joined.headers["location"]) == (303, "/account?done=joined")
        after = await client.get("/account")
        assert 'id="switch-account"' in after.text and 'id="invitations"' not in after.text
        switched = await post_from(client, "/account", "/account/switch", {"account_id": other.account_id})
        assert switched.status_code == 303 and client.cookies["vp_account"] == other.account_id
        information = await client.get("/account/information")
        assert (
            "Lycée pages-dash-b" in information.text and 'id="profile-read-only"' in information.text
        )  # a member of B
        stranger = await post_from(client, "/account", "/account/switch", {"account_id": str(manager.account_id)[::-1]})
        assert stranger.status_code == 303 and client.cookies["vp_account"] == other.account_id
    finally:
        await client.aclose()


async def test_an_unverified_address_is_noticed_with_the_resend_link(gateway, system):
    manager = await new_manager(gateway, system, "pages-unverified", verified=False)
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        dashboard = await client.get("/account")
        assert 'id="unverified"' in dashboard.text and 'href="/verification/resend"' in dashboard.text
    finally:
        await client.aclose()


async def test_a_manager_edits_the_information_and_a_member_only_reads_it(gateway, system):
    manager = await new_manager(gateway, system, "pages-info")
    member_email = await new_member(gateway, system, manager, "pages-info-member")
    client = await portal_login(system.url("gateway"), manager.email)
    member = await portal_login(system.url("gateway"), member_email, MEMBER_PASSWORD)
    fields = {
        "name": "Lycée Victor Hugo",
        "contact_name": "Camille Martin",
        "phone": "01 23 45 67 89",
        "city": "Besançon",
        "postal_address": "1 rue de la Paix",
        "billing_address": "",
        "vat_number": "",
    }
    try:
        saved = await post_from(client, "/account/information", "/account/information", fields)
        assert (saved.status_code, saved.headers["location"]) == (303, "/account/information?done=saved")
        shown = await client.get("/account/information?done=saved")
        assert 'value="Besançon"' in shown.text and "Lycée Victor Hugo" in shown.text
        refused = await post_from(client, "/account/information", "/account/information", fields | {"phone": "12"})
        assert refused.status_code == 400 and 'id="error-phone"' in refused.text and 'value="12"' in refused.text
        read = await member.get("/account/information")
        assert read.status_code == 200 and 'id="profile-read-only"' in read.text and "Besançon" in read.text
        assert 'action="/account/information"' not in read.text
        tried = await member.post(
            "/account/information", data={"_csrf_token": csrf_token(read.text), **fields, "city": "Dole"}
        )
        assert tried.status_code == 403
        assert 'value="Besançon"' in (await client.get("/account/information")).text
    finally:
        await client.aclose()
        await member.aclose()


async def test_changing_the_password_ends_the_other_web_sessions_and_keeps_this_one(gateway, system):
    manager = await new_manager(gateway, system, "pages-password")
    here = await portal_login(system.url("gateway"), manager.email)
    elsewhere = await portal_login(system.url("gateway"), manager.email)
    try:
        wrong = await post_from(
            here,
            "/account/me",
            "/account/me/password",
            {"current_password": "not it at all", "new_password": NEW_PASSWORD},
        )
        assert wrong.status_code == 403 and 'id="error-current_password"' in wrong.text
        changed = await post_from(
            here, "/account/me", "/account/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert (changed.status_code, changed.headers["location"]) == (303, "/account/me?done=password")
        assert (await here.get("/account", follow_redirects=False)).status_code == 200
        ended = await elsewhere.get("/account", follow_redirects=False)
        assert ended.status_code == 303 and ended.headers["location"].startswith("/login")
    finally:
        await here.aclose()
        await elsewhere.aclose()


async def test_logging_out_everywhere_ends_this_web_session_at_once(gateway, system):
    manager = await new_manager(gateway, system, "pages-everywhere")
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        me = await client.get("/account/me")
        assert 'action="/logout-everywhere"' in me.text
        out = await client.post("/logout-everywhere", data={"_csrf_token": csrf_token(me.text)})
        assert (out.status_code, out.headers["location"]) == (303, "/login?logged_out=all")
        assert (await client.get("/account", follow_redirects=False)).status_code == 303
    finally:
        await client.aclose()


async def test_changing_the_email_mails_a_confirmation_link_and_settings_are_saved(gateway, system):
    manager = await new_manager(gateway, system, "pages-email")
    client = await portal_login(system.url("gateway"), manager.email)
    new_email = unique_email("pages-email-new")
    try:
        wrong = await post_from(
            client, "/account/me", "/account/me/email", {"new_email": new_email, "password": "not my password"}
        )
        assert wrong.status_code == 403 and 'id="error-password"' in wrong.text and f'value="{new_email}"' in wrong.text
        asked = await post_from(
            client, "/account/me", "/account/me/email", {"new_email": new_email, "password": PASSWORD}
        )
        assert (asked.status_code, asked.headers["location"]) == (303, "/account/me?done=email_sent")
        mail = await wait_for_mail(system.stack.mail_api, new_email)
        assert link_path(mail, "confirm-email").startswith("/confirm-email?token=")
        saved = await post_from(client, "/account/me", "/account/me", {"name": "Camille Martin-Roux", "language": "en"})
        assert saved.status_code == 303 and client.cookies["vp_lang"] == "en"
        me = await client.get("/account/me")
        assert 'value="Camille Martin-Roux"' in me.text and '<html lang="en">' in me.text
    finally:
        await client.aclose()


async def test_a_manager_makes_an_api_token_seen_once_and_revokes_it(gateway, system):
    manager = await new_manager(gateway, system, "pages-tokens")
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        made = await post_from(
            client,
            "/account/me",
            "/account/me/api-tokens",
            {"token_name": "Export ENT", "scope": "read", "expires_in_days": ""},
        )
        assert made.status_code == 200 and 'id="new-token"' in made.text
        secret = re.search(r'<p class="secret">([^<]+)</p>', made.text)
        assert secret, made.text
        listed = await client.get("/account/me")
        assert "Export ENT" in listed.text and secret.group(1) not in listed.text
        [token_id] = re.findall(r'action="/account/me/api-tokens/([0-9a-f-]+)/revocation"', listed.text)
        revoked = await post_from(client, "/account/me", f"/account/me/api-tokens/{token_id}/revocation", {})
        assert revoked.status_code == 303
        assert "Export ENT" not in (await client.get("/account/me")).text  # the list leaves revoked tokens out
        bad = await post_from(
            client,
            "/account/me",
            "/account/me/api-tokens",
            {"token_name": "x", "scope": "read", "expires_in_days": "-3"},
        )
        assert bad.status_code == 400 and 'id="error-expires_in_days"' in bad.text
    finally:
        await client.aclose()


async def test_the_export_downloads_json_and_the_closure_logs_out(gateway, system):
    manager = await new_manager(gateway, system, "pages-closure")
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        privacy = await client.get("/account/privacy")
        assert 'data-confirm="' in privacy.text and 'href="/account/privacy/export"' in privacy.text
        export = await client.get("/account/privacy/export")
        assert export.status_code == 200 and export.headers["content-disposition"].startswith("attachment")
        assert json.loads(export.content)["account"]["id"] == manager.account_id
        wrong = await post_from(client, "/account/privacy", "/account/privacy/closure", {"password": "not my password"})
        assert wrong.status_code == 403 and 'id="error-password"' in wrong.text
        closed = await post_from(client, "/account/privacy", "/account/privacy/closure", {"password": PASSWORD})
        assert (closed.status_code, closed.headers["location"]) == (303, "/account-closed")
        assert "vp_session" not in client.cookies
        assert 'id="closed"' in (await client.get("/account-closed")).text
        assert (
            await gateway.post("/api/v1/sessions", json={"email": manager.email, "password": PASSWORD})
        ).status_code == 401
    finally:
        await client.aclose()


async def test_an_organiser_grants_and_revokes_the_role_and_nobody_else_sees_the_back_office(gateway, system):
    organiser = await new_manager(gateway, system, "pages-organiser")
    await grant_organiser(system, organiser.email)
    colleague = await new_manager(gateway, system, "pages-colleague")
    client = await portal_login(system.url("gateway"), organiser.email)
    outsider = await portal_login(system.url("gateway"), colleague.email)
    try:
        assert (await client.get("/back-office", follow_redirects=False)).headers[
            "location"
        ] == "/back-office/organisers"
        listed = await client.get("/back-office/organisers")
        assert listed.status_code == 200 and organiser.email in listed.text and colleague.email not in listed.text
        unknown = await post_from(
            client, "/back-office/organisers", "/back-office/organisers", {"email": unique_email("x")}
        )
        assert unknown.status_code == 404 and 'id="error-email"' in unknown.text
        granted = await post_from(
            client, "/back-office/organisers", "/back-office/organisers", {"email": colleague.email.upper()}
        )
        assert (granted.status_code, granted.headers["location"]) == (303, "/back-office/organisers?done=granted")
        listed = await client.get("/back-office/organisers")
        assert colleague.email in listed.text
        [colleague_id] = re.findall(
            r'action="/back-office/organisers/([0-9a-f-]+)/revocation"[^>]*>\s*<input[^>]*>\s*<button[^>]*>[^<]*'
            rf'<span class="visually-hidden"> {re.escape(colleague.email)}</span>',
            listed.text,
        )
        revoked = await post_from(
            client, "/back-office/organisers", f"/back-office/organisers/{colleague_id}/revocation", {}
        )
        assert (revoked.status_code, revoked.headers["location"]) == (303, "/back-office/organisers?done=revoked")
        assert colleague.email not in (await client.get("/back-office/organisers")).text
        for path in ("/back-office", "/back-office/organisers", "/back-office/deliveries"):
            assert (await outsider.get(path, follow_redirects=False)).status_code == 404, path
        home = await outsider.get("/account")
        tried = await outsider.post(
            "/back-office/organisers", data={"_csrf_token": csrf_token(home.text), "email": colleague.email}
        )
        assert tried.status_code == 404
        anonymous = await gateway.get("/back-office/organisers", follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    finally:
        await client.aclose()
        await outsider.aclose()


async def test_the_delivery_log_page_lists_a_sent_mail(gateway, system):
    organiser = await new_manager(gateway, system, "pages-log-organiser")
    await grant_organiser(system, organiser.email)
    manager = await new_manager(gateway, system, "pages-log")  # its verification mail was sent and caught
    client = await portal_login(system.url("gateway"), organiser.email)
    try:
        deadline = time.monotonic() + 30
        while True:
            shown = await client.get("/back-office/deliveries", params={"recipient": manager.email, "status": "sent"})
            assert shown.status_code == 200, shown.text
            if manager.email in shown.text:
                break
            assert time.monotonic() < deadline, shown.text
            await asyncio.sleep(0.3)
        assert 'id="delivery-log"' in shown.text and "envoyé" in shown.text
        event_link = shown.text.split('href="?event=')[1].split('"')[0]  # the mail's template links to its event's
        of_event = await client.get("/back-office/deliveries", params={"event": event_link})
        assert 'id="event-filter"' in of_event.text and manager.email in of_event.text
        ignored = await client.get("/back-office/deliveries", params={"event": "x" * 40})
        assert ignored.status_code == 200 and 'id="event-filter"' not in ignored.text
        none = await client.get("/back-office/deliveries", params={"recipient": manager.email, "status": "failed"})
        assert manager.email not in none.text.split('id="deliveries"')[1].split("</form>")[1]
        odd = await client.get("/back-office/deliveries", params={"status": "<b>", "offset": "-5", "recipient": "\x00"})
        assert odd.status_code in (200, 400)
    finally:
        await client.aclose()
