"""The portal's shell, end to end through the gateway: web sessions (the cookie and its flags, logout, ended by
accounts at once), CSRF, the language switch remembered per person, the sign-up and login forms' refusals, the
footer's support line, and no open redirect after login."""

import httpx
import pytest
from portal_world import csrf_token, portal_login, submit

from api_world import PASSWORD, log_in, sign_up, unique_email
from identifiers import new_uai

pytestmark = pytest.mark.infra


async def test_login_opens_an_http_only_lax_cookie_and_logout_ends_it(system, stack) -> None:  # type: ignore[no-untyped-def]
    base = system.url("gateway")
    async with httpx.AsyncClient(base_url=base, timeout=15) as gateway:
        manager = await sign_up(gateway, "shell-cookie", verified_with=stack.mail_api)
    client = await portal_login(base, manager.email)
    try:
        set_cookie = next(h for h in client.cookies.jar if h.name == "vp_session")
        assert set_cookie.has_nonstandard_attr("HttpOnly") and not set_cookie.secure
        assert (set_cookie.get_nonstandard_attr("SameSite") or "").lower() == "lax"
        account = await client.get("/account", follow_redirects=False)
        assert account.status_code == 200, account.text
        out = await client.post("/logout", data={"_csrf_token": csrf_token(account.text)})
        assert (out.status_code, out.headers["location"]) == (303, "/login?logged_out=1")
        after = await client.get("/account", follow_redirects=False)
        assert after.status_code == 303 and after.headers["location"].startswith("/login?next=%2Faccount")
    finally:
        await client.aclose()


async def test_an_end_made_in_accounts_ends_the_web_session_at_once(system, stack) -> None:  # type: ignore[no-untyped-def]
    """Logging out everywhere through the API (another device) sends the portal's next page to the login."""
    base = system.url("gateway")
    async with httpx.AsyncClient(base_url=base, timeout=15) as gateway:
        manager = await sign_up(gateway, "shell-ended")
        client = await portal_login(base, manager.email)
        try:
            assert (await client.get("/account", follow_redirects=False)).status_code == 200
            ended = await gateway.post("/api/v1/sessions/logout-everywhere", headers=manager.auth)
            assert ended.status_code == 204
            after = await client.get("/account", follow_redirects=False)
            assert after.status_code == 303 and after.headers["location"].startswith("/login")
        finally:
            await client.aclose()


async def test_forms_without_a_csrf_token_are_refused(system) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as client:
        await client.get("/login")  # the CSRF cookie, but no token in the form
        refused = await client.post("/login", data={"email": "a@b.fr", "password": PASSWORD})
        assert refused.status_code == 403
        assert "vp_session" not in client.cookies


async def test_the_language_switch_is_remembered_per_person(system, stack) -> None:  # type: ignore[no-untyped-def]
    base = system.url("gateway")
    async with httpx.AsyncClient(base_url=base, timeout=15) as anonymous:
        assert 'lang="fr"' in (await anonymous.get("/help")).text
        switched = await submit(anonymous, "/help", "/language", {"language": "en", "next": "/help"})
        assert (switched.status_code, switched.headers["location"]) == (303, "/help")
        english = await anonymous.get("/help")
        assert 'lang="en"' in english.text and "Help and FAQs" in english.text
        manager = await sign_up(anonymous, "shell-language")
    client = await portal_login(base, manager.email)  # a new browser: French, the person's language so far
    try:
        assert 'lang="fr"' in (await client.get("/account")).text
        await submit(client, "/account", "/language", {"language": "en", "next": "/account"})
    finally:
        await client.aclose()
    async with httpx.AsyncClient(base_url=base, timeout=15) as gateway:  # remembered by accounts: emails too
        me = await gateway.get("/api/v1/me", headers=await log_in(gateway, manager.email))
        assert me.json()["language"] == "en"
    elsewhere = await portal_login(base, manager.email)  # another browser, no language cookie of its own
    try:
        page = await elsewhere.get("/account")
        assert 'lang="en"' in page.text and "My account" in page.text
    finally:
        await elsewhere.aclose()


async def test_sign_up_refusals_are_shown_next_to_their_field_with_the_values_kept(system) -> None:  # type: ignore[no-untyped-def]
    fields = {
        "institution_kind": "school",
        "institution_name": "Lycée Victor Hugo",
        "institution_identifier": "0750652A",  # wrong check letter
        "city": "Paris",
        "contact_name": "Alix Moreau",
        "email": unique_email("shell-signup"),
        "password": PASSWORD,
    }
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as client:
        refused = await submit(client, "/signup", "/signup", fields)
        assert refused.status_code == 400
        assert 'id="error-institution_identifier"' in refused.text and "lettre de contrôle" in refused.text
        assert 'aria-invalid="true"' in refused.text and 'href="#field-institution_identifier"' in refused.text
        assert 'value="Lycée Victor Hugo"' in refused.text and f'value="{fields["email"]}"' in refused.text
        assert PASSWORD not in refused.text
        uai = new_uai()
        assert (
            await submit(client, "/signup", "/signup", {**fields, "institution_identifier": uai})
        ).status_code == 200
        again = {**fields, "institution_identifier": uai, "email": unique_email("shell-signup-2")}
        taken = await submit(client, "/signup", "/signup", again)
        assert taken.status_code == 409 and "n'a qu'un compte" in taken.text  # the one-account rule, explained


async def test_a_throttled_login_says_how_many_minutes_are_left(system, stack) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as client:
        manager = await sign_up(client, "shell-throttle")
        for _ in range(12):
            answer = await submit(client, "/login", "/login", {"email": manager.email, "password": "wrong " * 3})
            if answer.status_code == 429:
                break
        assert answer.status_code == 429, answer.text
        assert "Trop de tentatives : réessayez dans" in answer.text and "minute" in answer.text
        assert int(answer.headers["Retry-After"]) > 0


async def test_after_login_only_a_path_of_this_site_is_followed(system) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as gateway:
        manager = await sign_up(gateway, "shell-next")
        for target, expected in (
            ("//evil.example/x", "/account"),
            ("https://evil.example", "/account"),
            ("/help", "/help"),
        ):
            fields = {"email": manager.email, "password": PASSWORD, "next": target}
            async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as client:
                done = await submit(client, "/login", "/login", fields)
                assert (done.status_code, done.headers["location"]) == (303, expected)


async def test_every_page_has_the_support_line_and_the_assets_are_cached(system) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as client:
        page = await client.get("/")
        assert "01 84 80 00 00" in page.text and "du lundi au vendredi" in page.text and "08:30" in page.text
        assert page.headers["cache-control"] == "no-store"
        [css] = [part.split('"')[0] for part in page.text.split('href="')[1:] if part.startswith("/static/portal.css")]
        asset = await client.get(css)
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
