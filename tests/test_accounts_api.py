"""Members, self-service and GDPR through the gateway's public API and portal pages, with the real services:
gateway -> accounts -> outbox -> Kafka -> notifier -> SMTP -> the mailed link -> the portal."""

import uuid

import httpx
import pytest

from api_world import MEMBER_PASSWORD, PASSWORD, link_path, log_in, sign_up, unique_email
from mail import hidden_fields, wait_for_mail

pytestmark = pytest.mark.infra

UTF8_BOM = b"\xef\xbb\xbf"


def members_csv(tag: str) -> bytes:
    rows = [
        "Prénom;Nom;E-mail",
        f"Léa;Petit;lea-{tag}@lycee-test.fr",
        "Jean;Dupont;jean.dupont@",
        f"Karim;Benali;karim-{tag}@lycee-test.fr",
        f"Inès;Roux;ines-{tag}@lycee-test.fr",
    ]
    return "\r\n".join([*rows, ""]).encode()


async def test_a_manager_adds_members_who_accept_the_invitation(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Hugo", verified_with=stack.mail_api)
        members = f"/api/v1/accounts/{manager.account_id}/members"
        member_email = unique_email("lea")
        added = await gateway.post(
            members,
            json={"members": [{"name": "Léa Petit", "email": member_email}, {"name": "X", "email": "pas-un-email"}]},
            headers=manager.auth,
        )
        assert added.status_code == 200, added.text
        report = added.json()
        assert (report["invited"], report["already_members"]) == (1, 0) and "joined" not in report
        assert [(row["line"], row["code"]) for row in report["rejected"]] == [(2, "email_invalid")]

        mail = await wait_for_mail(stack.mail_api, member_email, subject_contains="vous invite")
        assert "Lycée Hugo" in mail["text"] and "Lycée" not in mail["subject"], "the name typed stays out of it"
        page = await gateway.get(link_path(mail, "accept-invitation"))
        assert page.status_code == 200
        form = hidden_fields(page.text)
        assert (await gateway.post("/accept-invitation", data={"token": form["token"]})).status_code == 403
        accepted = await gateway.post("/accept-invitation", data={**form, "new_password": MEMBER_PASSWORD})
        assert accepted.status_code == 200, accepted.text
        assert 'id="done"' in accepted.text

        member_auth = await log_in(gateway, member_email, MEMBER_PASSWORD)
        me = (await gateway.get("/api/v1/me", headers=member_auth)).json()
        assert (me["email"], me["email_verified"], me["memberships"]) == (
            member_email,
            True,
            {manager.account_id: "member"},
        )
        listed = await gateway.get(members, headers=manager.auth)
        assert listed.status_code == 200
        assert listed.json()["counts"] == {"total": 2, "active": 2, "invited": 0, "managers": 1}
        not_a_manager = await gateway.get(members, headers=member_auth)
        assert (not_a_manager.status_code, not_a_manager.json()["code"]) == (403, "forbidden")


async def test_an_unverified_manager_invites_nobody_and_a_member_gets_so_many_mails_an_hour(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        unverified = await sign_up(gateway, "Pressé")
        members = f"/api/v1/accounts/{unverified.account_id}/members"
        refused = await gateway.post(
            members, json={"members": [{"name": "Léa", "email": unique_email("lea")}]}, headers=unverified.auth
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "email_not_verified")

        manager = await sign_up(gateway, "Patient", verified_with=system.stack.mail_api)
        members = f"/api/v1/accounts/{manager.account_id}/members"
        member_email = unique_email("lea")
        added = await gateway.post(
            members, json={"members": [{"name": "Léa", "email": member_email}]}, headers=manager.auth
        )
        assert added.json()["invited"] == 1
        [member_id] = [
            m["member_id"]
            for m in (await gateway.get(members, headers=manager.auth)).json()["members"]
            if m["email"] == member_email
        ]
        again = [await gateway.post(f"{members}/{member_id}/invitation", headers=manager.auth) for _ in range(4)]
        assert [response.status_code for response in again] == [202, 202, 202, 429]
        assert again[-1].json()["code"] == "member_mail_limit"
        retry_after = again[-1].json()["retry_after"]
        assert 0 < retry_after <= 3600 and again[-1].headers["Retry-After"] == str(retry_after)


async def test_logging_out_ends_only_this_session(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Session")
        second = await log_in(gateway, manager.email)
        logged_out = await gateway.delete("/api/v1/sessions/current", headers=manager.auth)
        assert logged_out.status_code == 204
        ended = await gateway.get("/api/v1/me", headers=manager.auth)
        assert (ended.status_code, ended.json()["code"]) == (401, "session_expired")
        assert (await gateway.get("/api/v1/me", headers=second)).status_code == 200


async def test_members_import_from_a_csv_file_raw_or_as_a_form(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Import", verified_with=system.stack.mail_api)
        path = f"/api/v1/accounts/{manager.account_id}/members/import"
        raw = await gateway.post(
            path, content=members_csv(uuid.uuid4().hex[:8]), headers={**manager.auth, "Content-Type": "text/csv"}
        )
        form = await gateway.post(
            path, files={"file": ("membres.csv", members_csv(uuid.uuid4().hex[:8]), "text/csv")}, headers=manager.auth
        )
        for imported in (raw, form):
            assert imported.status_code == 200, imported.text
            report = imported.json()
            assert (report["invited"], report["already_members"]) == (3, 0)
            assert [(row["line"], row["code"]) for row in report["rejected"]] == [(3, "email_invalid")]
        listed = (await gateway.get(f"/api/v1/accounts/{manager.account_id}/members", headers=manager.auth)).json()
        assert listed["counts"] == {"total": 7, "active": 1, "invited": 6, "managers": 1}

        too_large = b"name;email\r\n" + b"x" * (5 * 1024 * 1024)
        for upload in (
            {"content": too_large, "headers": {**manager.auth, "Content-Type": "text/csv"}},
            {"files": {"file": ("big.csv", too_large, "text/csv")}, "headers": manager.auth},
        ):
            refused = await gateway.post(path, **upload)
            assert (refused.status_code, refused.json()["code"]) == (413, "file_too_large")
        for unreadable, code in ((b"", "file_empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "file_binary")):
            refused = await gateway.post(path, content=unreadable, headers={**manager.auth, "Content-Type": "text/csv"})
            assert (refused.status_code, refused.json()["code"]) == (400, code), refused.text
        after = (await gateway.get(f"/api/v1/accounts/{manager.account_id}/members", headers=manager.auth)).json()
        assert after["counts"] == listed["counts"], "a refused file imports nothing"

        template = await gateway.get("/api/v1/member-import-template")
        assert template.status_code == 200
        assert template.content.startswith(UTF8_BOM)
        assert b";" in template.content
        assert template.headers["content-type"].startswith("text/csv")
        assert template.headers["content-disposition"].startswith("attachment")


async def test_changing_ones_email_needs_the_password_and_the_new_address(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Courriel")
        new_email = unique_email("nouvelle")
        wrong = await gateway.post(
            "/api/v1/me/email-change",
            json={"password": "not the password at all", "new_email": new_email},
            headers=manager.auth,
        )
        assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_password")
        asked = await gateway.post(
            "/api/v1/me/email-change", json={"password": PASSWORD, "new_email": new_email}, headers=manager.auth
        )
        assert asked.status_code == 202, asked.text

        mail = await wait_for_mail(stack.mail_api, new_email, subject_contains="nouvelle adresse")
        page = await gateway.get(link_path(mail, "confirm-email"))
        assert page.status_code == 200
        assert (
            await gateway.post("/confirm-email", data={"token": hidden_fields(page.text)["token"]})
        ).status_code == 403
        confirmed = await gateway.post("/confirm-email", data=hidden_fields(page.text))
        assert confirmed.status_code == 200, confirmed.text
        assert 'id="confirmed"' in confirmed.text

        renewed = await log_in(gateway, new_email)
        assert (await gateway.get("/api/v1/me", headers=renewed)).json()["email"] == new_email
        old = await gateway.post("/api/v1/sessions", json={"email": manager.email, "password": PASSWORD})
        assert (old.status_code, old.json()["code"]) == (401, "invalid_credentials")
        notice = await wait_for_mail(stack.mail_api, manager.email, subject_contains="adresse e-mail de votre compte")
        assert new_email in notice["text"]

        # "this was not me": the old address takes the account back, and the known password stops working
        page = await gateway.get(link_path(notice, "revert-email"))
        assert page.status_code == 200 and "Annuler le changement" in page.text
        reverted = await gateway.post("/revert-email", data=hidden_fields(page.text))
        assert reverted.status_code == 200 and 'id="reverted"' in reverted.text, reverted.text
        assert (await gateway.get("/api/v1/me", headers=renewed)).status_code == 401
        for email in (new_email, manager.email):
            refused = await gateway.post("/api/v1/sessions", json={"email": email, "password": PASSWORD})
            assert refused.status_code == 401
        reset = await wait_for_mail(stack.mail_api, manager.email, subject_contains="Réinitialisez")
        page = await gateway.get(link_path(reset, "reset-password"))
        fields = hidden_fields(page.text) | {"new_password": MEMBER_PASSWORD}
        assert (await gateway.post("/reset-password", data=fields)).status_code == 200
        await log_in(gateway, manager.email, MEMBER_PASSWORD)


async def test_an_institution_never_reaches_another_ones_members(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        a = await sign_up(gateway, "A", verified_with=system.stack.mail_api)
        b = await sign_up(gateway, "B", verified_with=system.stack.mail_api)
        b_members = f"/api/v1/accounts/{b.account_id}/members"
        member_email = unique_email("membre-b")
        added = await gateway.post(
            b_members, json={"members": [{"name": "Léa Petit", "email": member_email}]}, headers=b.auth
        )
        assert added.json()["invited"] == 1
        listed = (await gateway.get(b_members, headers=b.auth)).json()
        [member_id] = [m["member_id"] for m in listed["members"] if m["email"] == member_email]
        member = f"{b_members}/{member_id}"
        through_a = f"/api/v1/accounts/{a.account_id}/members/{member_id}"  # B's member under A's own account

        csv_file = {**a.auth, "Content-Type": "text/csv"}
        for method, path, kwargs in [
            ("GET", b_members, {}),
            ("POST", b_members, {"json": {"members": [{"name": "Intrus", "email": unique_email("intrus")}]}}),
            ("POST", f"{b_members}/import", {"content": members_csv(uuid.uuid4().hex[:8]), "headers": csv_file}),
            ("PATCH", member, {"json": {"role": "manager"}}),
            ("PATCH", member, {"json": {"email": unique_email("autre")}}),
            ("DELETE", member, {}),
            ("POST", f"{member}/invitation", {}),
            ("POST", f"{member}/password-reset", {}),
            ("GET", f"/api/v1/accounts/{b.account_id}/export", {}),
            ("POST", f"/api/v1/accounts/{b.account_id}/closure", {"json": {"password": PASSWORD}}),
            ("GET", f"/api/v1/accounts/{b.account_id}/profile", {}),
            ("PATCH", f"/api/v1/accounts/{b.account_id}/profile", {"json": {"city": "Paris"}}),
            ("PATCH", through_a, {"json": {"role": "manager"}}),
            ("DELETE", through_a, {}),
            ("POST", f"{through_a}/invitation", {}),
            ("POST", f"{through_a}/password-reset", {}),
        ]:
            response = await gateway.request(method, path, **{"headers": a.auth, **kwargs})
            assert (response.status_code, response.json()["code"]) == (404, "not_found"), (method, path)

        after = (await gateway.get(b_members, headers=b.auth)).json()
        assert after["counts"] == {"total": 2, "active": 1, "invited": 1, "managers": 1}
        assert {(m["email"], m["role"]) for m in after["members"]} == {(b.email, "manager"), (member_email, "member")}


async def test_an_account_is_exported_then_closed_and_erased(system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as gateway:
        manager = await sign_up(gateway, "Fermeture", verified_with=stack.mail_api)
        member_email = unique_email("lea")
        await gateway.post(
            f"/api/v1/accounts/{manager.account_id}/members",
            json={"members": [{"name": "Léa Petit", "email": member_email}]},
            headers=manager.auth,
        )
        export = await gateway.get(f"/api/v1/accounts/{manager.account_id}/export", headers=manager.auth)
        assert export.status_code == 200, export.text
        assert export.headers["content-disposition"] == (
            f'attachment; filename="visiopass-account-{manager.account_id}.json"'
        )
        data = export.json()
        assert (data["account"]["id"], data["account"]["identifier"]) == (manager.account_id, manager.uai)
        people = {person["email"]: person for person in data["people"]}
        assert set(people) == {manager.email, member_email}
        assert (people[manager.email]["status"], people[member_email]["status"]) == ("active", "invited")
        assert "password_hash" not in export.text
        assert all("password_hash" not in person for person in data["people"])

        closure = f"/api/v1/accounts/{manager.account_id}/closure"
        wrong = await gateway.post(closure, json={"password": "not the password at all"}, headers=manager.auth)
        assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_password")
        closed = await gateway.post(closure, json={"password": PASSWORD}, headers=manager.auth)
        assert closed.status_code == 200, closed.text

        refused = await gateway.post("/api/v1/sessions", json={"email": manager.email, "password": PASSWORD})
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
        gone = await gateway.get("/api/v1/me", headers=manager.auth)
        assert (gone.status_code, gone.json()["code"]) == (401, "session_expired")
        await wait_for_mail(stack.mail_api, manager.email, subject_contains="clôturé")

        again = await sign_up(gateway, "Fermeture", uai=manager.uai, email=manager.email)
        assert again.account_id != manager.account_id


async def test_the_internal_and_public_apis_are_documented_in_openapi(system):
    async with httpx.AsyncClient(timeout=10) as client:
        internal = (await client.get(system.url("accounts") + "/schema/openapi.json")).json()
        public = (await client.get(system.url("gateway") + "/schema/openapi.json")).json()
    for spec, expected in (
        (internal, ["/internal/accounts/{account_id}/members/import", "/internal/sessions/{session_id}"]),
        (public, ["/api/v1/accounts/{account_id}/members/import", "/api/v1/sessions/current"]),
    ):
        for path in expected:
            assert path in spec["paths"], path
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                assert operation.get("summary"), f"{method.upper()} {path} has no summary"
