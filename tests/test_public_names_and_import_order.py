"""Through the gateway, with every service running: names made of invisible or control characters are refused
wherever a name comes in, a CSV import is refused to whoever does not manage the account before its file is
read, and the OpenAPI page loads only what the gateway serves."""

import re

import httpx
import pytest

from api_world import PASSWORD, sign_up, unique_email

pytestmark = pytest.mark.infra

NOT_A_CSV = b"\x00\x01\x02\x03 binary, not a CSV file"


async def test_a_csv_import_checks_who_sends_it_before_the_file(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        a = await sign_up(gateway, "ImportA")
        b = await sign_up(gateway, "ImportB")
        path = f"/api/v1/accounts/{a.account_id}/members/import"
        csv = {"Content-Type": "text/csv"}
        anonymous = await gateway.post(path, content=NOT_A_CSV, headers=csv)
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
        outsider = await gateway.post(path, content=NOT_A_CSV, headers={**csv, **b.auth})
        assert (outsider.status_code, outsider.json()["code"]) == (404, "not_found")
        form = await gateway.post(path, files={"nothing": ("x.csv", NOT_A_CSV)}, headers=b.auth)
        assert (form.status_code, form.json()["code"]) == (404, "not_found")
        manager = await gateway.post(path, content=NOT_A_CSV, headers={**csv, **a.auth})
        assert (manager.status_code, manager.json()["code"], manager.json()["field"]) == (400, "file_binary", "file")


async def test_names_of_invisible_or_control_characters_are_refused_everywhere(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        body = {
            "institution_kind": "other",
            "email": unique_email("names"),
            "password": PASSWORD,
            "institution_name": "Lycée Hugo",
            "contact_name": "Camille Martin",
        }
        for field, value in (("contact_name", "\u200b\u2060"), ("institution_name", "Lycée\u202eHugo")):
            refused = await gateway.post("/api/v1/accounts", json={**body, field: value})
            assert refused.status_code == 400, refused.text
            assert (refused.json()["code"], refused.json()["field"]) == ("name_invalid", field)

        manager = await sign_up(gateway, "Names")
        renamed = await gateway.patch("/api/v1/me", json={"name": "\u2066Camille\u2069"}, headers=manager.auth)
        assert (renamed.status_code, renamed.json()["code"], renamed.json()["field"]) == (400, "name_invalid", "name")

        profile = f"/api/v1/accounts/{manager.account_id}/profile"
        for changes, code in (({"name": None}, "name_missing"), ({"name": "\ufeff"}, "name_invalid")):
            answer = await gateway.patch(profile, json=changes, headers=manager.auth)
            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert (answer.json()["code"], answer.json()["field"]) == (code, "name")
        assert (await gateway.get(profile, headers=manager.auth)).json()["name"] == "Lycée Names"


async def test_the_openapi_page_loads_only_what_the_gateway_serves(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        page = await gateway.get("/schema")
        assert page.status_code == 200
        references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page.text)
        assert references
        for reference in references:
            assert reference.startswith("/") and not reference.startswith("//"), reference
            asset = await gateway.get(reference)
            assert asset.status_code == 200 and "max-age=" in asset.headers["cache-control"], reference
        wrong = await gateway.put("/api/v1/sessions")
        assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]
