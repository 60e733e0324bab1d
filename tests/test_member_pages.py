"""The "Membres" pages of Mon compte (gateway.member_pages) through the real services, as a browser uses them:
the list and its counts, adding one person, several, a CSV import and its report, correcting an invited
member's address, inviting again, a reset link, roles, removal; and who may do what: a plain member sees no
action and is refused if they post anyway, another institution's manager finds nothing (404), a form without
its CSRF token is refused, an unverified manager may not invite."""

import re
from dataclasses import dataclass
from html import unescape

import httpx
import pytest
from portal_world import csrf_token, portal_login, submit

from api_world import MEMBER_PASSWORD, Manager, link_path, sign_up, unique_email
from mail import wait_for_mail

pytestmark = pytest.mark.infra

MEMBERS = "/account/members"
INVITATION = "vous invite"
RESET = "Réinitialisez"


@dataclass
class Scene:
    manager: Manager  # of institution A, verified
    portal: httpx.AsyncClient  # A's manager, logged in through the portal
    member_email: str  # an active member of A
    member: httpx.AsyncClient  # that member, logged in through the portal
    other: Manager  # the manager of institution B
    other_portal: httpx.AsyncClient
    mail_api: str


@pytest.fixture(scope="module")
async def scene(system):
    mail_api, base = system.stack.mail_api, system.url("gateway")
    async with httpx.AsyncClient(base_url=base, timeout=30) as gateway:
        manager = await sign_up(gateway, "membres-a", verified_with=mail_api)
        member_email = unique_email("membres-member")
        added = await gateway.post(
            f"/api/v1/accounts/{manager.account_id}/members",
            json={"members": [{"name": "Léa Petit", "email": member_email}]},
            headers=manager.auth,
        )
        assert added.status_code == 200, added.text
        invitation = await wait_for_mail(mail_api, member_email, subject_contains=INVITATION)
        token = link_path(invitation, "accept-invitation").split("token=")[1]
        accepted = await gateway.post(
            "/api/v1/invitations/acceptance", json={"token": token, "new_password": MEMBER_PASSWORD}
        )
        assert accepted.status_code == 200, accepted.text
        other = await sign_up(gateway, "membres-b", verified_with=mail_api)
    clients = [
        await portal_login(base, manager.email),
        await portal_login(base, member_email, MEMBER_PASSWORD),
        await portal_login(base, other.email),
    ]
    yield Scene(manager, clients[0], member_email, clients[1], other, clients[2], mail_api)
    for client in clients:
        await client.aclose()


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no #{element_id} in the page"
    return unescape(found.group(1)).strip()


def member_row(html: str, email: str) -> str:
    """The list's row of `email` (its <tr>), with its id `member-<uuid>`."""
    found = re.search(rf'<tr id="member-[^"]+" data-email="{re.escape(email)}".*?</tr>', html, re.S)
    assert found, f"{email} is not in the list"
    return found.group(0)


def member_id_of(html: str, email: str) -> str:
    found = re.search(r'id="member-([0-9a-f-]{36})"', member_row(html, email))
    assert found
    return found.group(1)


def rejected_rows(html: str) -> list[tuple[int, str]]:
    table = re.search(r'<table id="rejected-rows".*?</table>', html, re.S)
    assert table, "no rejected rows table"
    return [(int(line), code) for line, code in re.findall(r'data-line="(\d+)" data-code="([^"]+)"', table.group(0))]


async def counts(client: httpx.AsyncClient) -> dict[str, int]:
    shown = await client.get(MEMBERS)
    assert shown.status_code == 200, shown.text
    return {name: int(text_of(shown.text, f"count-{name}")) for name in ("total", "active", "invited", "managers")}


async def post_form(client: httpx.AsyncClient, action: str, fields: dict[str, str]) -> httpx.Response:
    return await submit(client, MEMBERS, action, fields, follow_redirects=False)


async def test_the_list_shows_the_people_and_counts_and_one_person_is_added(scene: Scene) -> None:
    page = await scene.portal.get(MEMBERS)
    assert page.status_code == 200 and 'id="members-title"' in page.text
    assert 'data-status="active"' in member_row(page.text, scene.member_email)
    assert 'data-role="manager"' in member_row(page.text, scene.manager.email)
    assert 'href="/api/v1/member-import-template"' in page.text
    before = await counts(scene.portal)
    assert before["total"] >= 2 and before["managers"] >= 1

    email = unique_email("membres-one")
    added = await post_form(scene.portal, f"{MEMBERS}/add", {"name": "Camille Durand", "email": email})
    assert (added.status_code, added.headers["location"]) == (303, f"{MEMBERS}?done=invited")
    shown = await scene.portal.get(added.headers["location"])
    assert "Invitation envoyée" in shown.text
    assert 'data-status="invited"' in member_row(shown.text, email) and "Camille Durand" in shown.text
    after = await counts(scene.portal)
    assert (after["total"], after["invited"]) == (before["total"] + 1, before["invited"] + 1)
    await wait_for_mail(scene.mail_api, email, subject_contains=INVITATION)

    again = await post_form(scene.portal, f"{MEMBERS}/add", {"name": "Camille Durand", "email": email.upper()})
    assert again.headers["location"] == f"{MEMBERS}?done=already"

    refused = await post_form(scene.portal, f"{MEMBERS}/add", {"name": "Camille Durand", "email": "pas-une-adresse"})
    assert refused.status_code == 400
    assert 'id="error-email"' in refused.text and "adresse e-mail n'est pas valide" in unescape(refused.text)
    assert 'value="pas-une-adresse"' in refused.text and 'value="Camille Durand"' in refused.text


async def test_several_people_at_once_with_a_report_of_each_rejected_line(scene: Scene) -> None:
    good = [unique_email(f"membres-batch{i}") for i in range(3)]
    lines = [
        f"Anne Leroy ; {good[0]}",
        "",
        f"Bruno Caron\t{good[1]}",  # copied from a spreadsheet
        "Sans séparateur",
        f"Chloé Morel, {good[2]}",
        f"Doublon ; {good[0].upper()}",
        "Mauvaise Adresse ; jean.dupont@",
        f"   ; {unique_email('membres-noname')}",
    ]
    report = await post_form(scene.portal, f"{MEMBERS}/batch", {"people": "\r\n".join(lines)})
    assert report.status_code == 200, report.text
    assert 'id="report-title"' in report.text
    assert (text_of(report.text, "report-invited"), text_of(report.text, "report-rejected")) == ("3", "4")
    assert text_of(report.text, "report-already") == "0"
    assert rejected_rows(report.text) == [
        (4, "line_format"),
        (6, "email_duplicate"),
        (7, "email_invalid"),
        (8, "name_missing"),
    ]
    shown = unescape(report.text)
    assert "Cette adresse figure déjà sur une ligne précédente." in shown
    assert "Séparez le nom et l'adresse par un point-virgule" in shown
    corrections = re.search(r'<textarea id="field-people" name="people"[^>]*>(.*?)</textarea>', report.text, re.S)
    assert corrections and unescape(corrections.group(1)).splitlines()[:2] == ["Sans séparateur", lines[5]]
    listed = (await scene.portal.get(MEMBERS)).text
    for email in good:
        member_row(listed, email)

    empty = await post_form(scene.portal, f"{MEMBERS}/batch", {"people": " \n "})
    assert empty.status_code == 400 and 'id="error-people"' in empty.text


async def test_a_csv_import_reports_its_rows_and_a_file_refused_whole_imports_nothing(scene: Scene) -> None:
    template = await scene.portal.get("/api/v1/member-import-template")
    assert template.status_code == 200 and template.content.startswith(b"\xef\xbb\xbf")
    good = [unique_email("membres-csv1"), unique_email("membres-csv2")]
    content = (
        "Prénom;Nom;E-mail\r\n"
        f"Élise;Fournier;{good[0]}\r\n"
        "Marc;Petit;pas-un-email\r\n"
        f";;{unique_email('membres-csv-noname')}\r\n"
        f"Hugo;Roux;{good[1]}\r\n"
        "Zoé;Blanc\r\n"
        f"Léa;Petit;{scene.member_email}\r\n"
    ).encode()
    imported = await upload(scene.portal, content)
    assert imported.status_code == 200, imported.text
    assert text_of(imported.text, "report-title") == "Compte rendu de l'import"
    assert (text_of(imported.text, "report-invited"), text_of(imported.text, "report-already")) == ("2", "1")
    assert rejected_rows(imported.text) == [(3, "email_invalid"), (4, "name_missing"), (6, "too_few_columns")]
    assert "La ligne a moins de colonnes que l'en-tête." in unescape(imported.text)
    listed = (await scene.portal.get(MEMBERS)).text
    for email in good:
        member_row(listed, email)

    before = await counts(scene.portal)
    for bad, words in (
        (b"", "Choisissez un fichier."),
        ("\ufeffNom;E-mail\r\nA;a@b.fr".encode("utf-16"), "UTF-16"),
        (b"colonne;autre\r\nx;y\r\n", "La première ligne doit nommer les colonnes"),
    ):
        refused = await upload(scene.portal, bad, filename="" if not bad else "membres.csv")
        assert refused.status_code == 400, refused.text
        assert 'id="error-file"' in refused.text and words in unescape(refused.text)
    assert await counts(scene.portal) == before


async def upload(client: httpx.AsyncClient, content: bytes, filename: str = "membres.csv") -> httpx.Response:
    shown = await client.get(MEMBERS)
    return await client.post(
        f"{MEMBERS}/import",
        data={"_csrf_token": csrf_token(shown.text)},
        files={"file": (filename, content, "text/csv")},
    )


async def test_a_manager_corrects_reinvites_resets_changes_roles_and_removes(scene: Scene) -> None:
    mail_api = scene.mail_api
    wrong, right = unique_email("membres-wrong"), unique_email("membres-right")
    await post_form(scene.portal, f"{MEMBERS}/add", {"name": "Inès Garnier", "email": wrong})
    listed = (await scene.portal.get(MEMBERS)).text
    invited = member_id_of(listed, wrong)
    assert f'action="{MEMBERS}/{invited}/email"' in listed and f'action="{MEMBERS}/{invited}/invitation"' in listed
    assert f'action="{MEMBERS}/{invited}/password-reset"' not in listed

    bad = await post_form(scene.portal, f"{MEMBERS}/{invited}/email", {"email": "inès@", "page": "1"})
    assert bad.status_code == 400 and f'id="row-error-{invited}"' in bad.text and "<details open>" in bad.text

    corrected = await post_form(scene.portal, f"{MEMBERS}/{invited}/email", {"email": right, "page": "1"})
    assert corrected.headers["location"] == f"{MEMBERS}?done=corrected"
    listed = (await scene.portal.get(MEMBERS)).text
    assert 'data-email="' + wrong + '"' not in listed
    invited = member_id_of(listed, right)
    await wait_for_mail(mail_api, right, subject_contains=INVITATION)

    again = await post_form(scene.portal, f"{MEMBERS}/{invited}/invitation", {"page": "1"})
    assert again.headers["location"] == f"{MEMBERS}?done=reinvited"
    not_active = await post_form(scene.portal, f"{MEMBERS}/{invited}/password-reset", {"page": "1"})
    assert not_active.status_code == 409 and "n'a pas encore accepté" in unescape(not_active.text)
    # the third mail to this member within the hour, then the limit
    assert (await post_form(scene.portal, f"{MEMBERS}/{invited}/invitation", {"page": "1"})).status_code == 303
    limited = await post_form(scene.portal, f"{MEMBERS}/{invited}/invitation", {"page": "1"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Trop d'envois à ce membre" in unescape(limited.text)

    active = member_id_of(listed, scene.member_email)
    reset = await post_form(scene.portal, f"{MEMBERS}/{active}/password-reset", {"page": "1"})
    assert reset.headers["location"] == f"{MEMBERS}?done=reset"
    await wait_for_mail(mail_api, scene.member_email, subject_contains=RESET)

    promoted = await post_form(scene.portal, f"{MEMBERS}/{active}/role", {"role": "manager", "page": "1"})
    assert promoted.headers["location"] == f"{MEMBERS}?done=role"
    assert 'data-role="manager"' in member_row((await scene.portal.get(MEMBERS)).text, scene.member_email)
    demoted = await post_form(scene.portal, f"{MEMBERS}/{active}/role", {"role": "member", "page": "1"})
    assert demoted.headers["location"] == f"{MEMBERS}?done=role"
    odd = await post_form(scene.portal, f"{MEMBERS}/{active}/role", {"role": "owner", "page": "1"})
    assert odd.status_code == 400
    me = member_id_of(listed, scene.manager.email)
    last = await post_form(scene.portal, f"{MEMBERS}/{me}/role", {"role": "member", "page": "1"})
    assert last.status_code == 409 and "garde au moins un gestionnaire" in unescape(last.text)

    assert f'action="{MEMBERS}/{invited}/removal" data-confirm=' in listed
    removed = await post_form(scene.portal, f"{MEMBERS}/{invited}/removal", {"page": "1"})
    assert removed.headers["location"] == f"{MEMBERS}?done=removed"
    after = (await scene.portal.get(removed.headers["location"])).text
    assert "Membre retiré" in after and f'data-email="{right}"' not in after


async def test_a_plain_member_sees_no_action_and_is_refused_when_posting_anyway(scene: Scene) -> None:
    page = await scene.member.get(MEMBERS)
    assert page.status_code == 200 and 'id="members-managers-only"' in page.text
    assert f'action="{MEMBERS}/' not in page.text and 'id="members-table"' not in page.text
    listed = (await scene.portal.get(MEMBERS)).text
    manager_id = member_id_of(listed, scene.manager.email)
    token = csrf_token(page.text)
    for action, fields in (
        (f"{MEMBERS}/add", {"name": "Intrus", "email": unique_email("membres-intrus")}),
        (f"{MEMBERS}/batch", {"people": f"Intrus ; {unique_email('membres-intrus')}"}),
        (f"{MEMBERS}/{manager_id}/role", {"role": "member"}),
        (f"{MEMBERS}/{manager_id}/removal", {}),
    ):
        refused = await scene.member.post(action, data={"_csrf_token": token, **fields}, follow_redirects=False)
        assert refused.status_code == 403, (action, refused.text)
        assert "Seuls les gestionnaires du compte peuvent faire cela." in unescape(refused.text)
    upload_refused = await scene.member.post(
        f"{MEMBERS}/import", data={"_csrf_token": token}, files={"file": ("m.csv", b"Nom;E-mail\r\n", "text/csv")}
    )
    assert upload_refused.status_code == 403
    assert 'data-role="manager"' in member_row((await scene.portal.get(MEMBERS)).text, scene.manager.email)


async def test_another_institutions_manager_finds_nothing_of_a(scene: Scene) -> None:
    listed = (await scene.portal.get(MEMBERS)).text
    a_member = member_id_of(listed, scene.member_email)
    scene.other_portal.cookies.set("vp_account", scene.manager.account_id)  # not theirs: ignored
    own = await scene.other_portal.get(MEMBERS)
    assert own.status_code == 200 and scene.member_email not in own.text
    member_row(own.text, scene.other.email)
    for action, fields in (
        (f"{MEMBERS}/{a_member}/role", {"role": "manager"}),
        (f"{MEMBERS}/{a_member}/password-reset", {}),
        (f"{MEMBERS}/{a_member}/removal", {}),
        (f"{MEMBERS}/{a_member}/email", {"email": unique_email("membres-steal")}),
    ):
        refused = await submit(scene.other_portal, MEMBERS, action, fields, follow_redirects=False)
        assert refused.status_code == 404, (action, refused.text)
    assert 'data-role="member"' in member_row((await scene.portal.get(MEMBERS)).text, scene.member_email)


async def test_an_unverified_manager_may_not_invite(system) -> None:
    base = system.url("gateway")
    async with httpx.AsyncClient(base_url=base, timeout=30) as gateway:
        unverified = await sign_up(gateway, "membres-c")
    portal = await portal_login(base, unverified.email)
    try:
        fields = {"name": "Paul Simon", "email": unique_email("membres-unverified")}
        refused = await submit(portal, MEMBERS, f"{MEMBERS}/add", fields)
        assert refused.status_code == 403 and "Confirmez d'abord votre adresse e-mail" in unescape(refused.text)
        assert 'value="Paul Simon"' in refused.text
    finally:
        await portal.aclose()


async def test_forms_need_their_csrf_token_and_pages_a_session(scene: Scene, system) -> None:
    before = await counts(scene.portal)
    forged = await scene.portal.post(
        f"{MEMBERS}/add", data={"name": "Sans Jeton", "email": unique_email("membres-csrf")}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert await counts(scene.portal) == before
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=10) as anonymous:
        page = await anonymous.get(MEMBERS, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Faccount%2Fmembers"


async def test_the_list_comes_fifty_people_a_page(system) -> None:
    base, mail_api = system.url("gateway"), system.stack.mail_api
    async with httpx.AsyncClient(base_url=base, timeout=30) as gateway:
        manager = await sign_up(gateway, "membres-pages", verified_with=mail_api)
    portal = await portal_login(base, manager.email)
    try:
        people = "\n".join(f"Personne {i:02d} ; {unique_email(f'membres-page{i}')}" for i in range(55))
        report = await submit(portal, MEMBERS, f"{MEMBERS}/batch", {"people": people})
        assert text_of(report.text, "report-invited") == "55"
        first = await portal.get(MEMBERS)
        assert first.text.count('<tr id="member-') == 50 and "Page 1 sur 2" in first.text
        assert f'href="{MEMBERS}?page=2" rel="next"' in first.text
        second = await portal.get(MEMBERS, params={"page": "2"})
        assert second.text.count('<tr id="member-') == 6 and f'href="{MEMBERS}?page=1" rel="prev"' in second.text
        unusable = await portal.get(MEMBERS, params={"page": "deux"})
        assert unusable.status_code == 200 and "Page 1 sur 2" in unusable.text
    finally:
        await portal.aclose()
