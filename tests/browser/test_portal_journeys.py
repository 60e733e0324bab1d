"""A person's journeys through the portal in a real browser (Debian's Chromium driven by Playwright) against the
real services: a school signs up, confirms its address from the mailed link, logs in, imports its members from a
spreadsheet with a bad row and reads the report, logs out — in French, in English (its mail in English too),
and with the keyboard alone. axe-core checks every page met on the way (tests/browser/checks.py)."""

from dataclasses import dataclass

import pytest
from playwright.async_api import Page, expect

from api_world import PASSWORD, unique_email
from browser.checks import (
    assert_accessible,
    assert_focus_visible,
    assert_no_horizontal_scroll,
    focus_outline,
    screenshots,
)
from identifiers import new_uai
from mail import links_in, wait_for_mail

pytestmark = pytest.mark.infra


@dataclass(frozen=True)
class Texts:
    """What the person reads and clicks, in one language."""

    language: str
    institution_name: str
    identifier: str
    contact_name: str
    email: str
    password: str
    create: str
    sent: str
    confirm: str
    confirmed: str
    log_in: str
    login_email: str
    log_out: str
    logged_out: str
    my_account: str
    members: str
    mail_subject: str
    invalid_email: str  # the reason shown for the bad row


FRENCH = Texts(
    "fr",
    "Nom de l'établissement",
    "UAI de l'école",
    "Votre nom",
    "Votre adresse e-mail professionnelle",
    "Mot de passe",
    "Créer le compte",
    "Vérifiez votre messagerie",
    "Confirmer mon adresse e-mail",
    "Adresse e-mail confirmée",
    "Se connecter",
    "Adresse e-mail",
    "Se déconnecter",
    "Vous êtes déconnecté.",
    "Mon compte",
    "Membres",
    "Confirmez votre adresse e-mail",
    "Cette adresse e-mail n'est pas valide.",
)
ENGLISH = Texts(
    "en",
    "Institution name",
    "School UAI",
    "Your name",
    "Your work email address",
    "Password",
    "Create the account",
    "Check your inbox",
    "Confirm my email address",
    "Email address confirmed",
    "Log in",
    "Email address",
    "Log out",
    "You are logged out.",
    "My account",
    "Members",
    "Confirm your Visiopass email address",
    "This email address is not valid.",
)


async def sign_up(page: Page, texts: Texts, email: str) -> None:
    await page.goto("/signup")
    await assert_accessible(page)
    await page.get_by_label(texts.institution_name).fill("Lycée des Navigateurs")
    await page.get_by_label(texts.identifier).fill(new_uai())
    await page.get_by_label(texts.contact_name).fill("Camille Martin")
    await page.get_by_label(texts.email).fill(email)
    await page.get_by_label(texts.password, exact=True).fill(PASSWORD)
    await page.get_by_role("button", name=texts.create, exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(texts.sent)
    await assert_accessible(page)
    await screenshots(page, f"journey-{texts.language}--signup-sent")


async def verification_link(mail_api: str, texts: Texts, email: str) -> str:
    """The link of the verification mail, which is in the language the person signed up in."""
    mail = await wait_for_mail(mail_api, email, subject_contains=texts.mail_subject)
    [link] = [link for link in links_in(mail["text"]) if "/verify-email?" in link]
    return link


async def confirm_address(page: Page, texts: Texts, link: str) -> None:
    await page.goto(link)
    await assert_accessible(page)
    await page.get_by_role("button", name=texts.confirm).click()
    await expect(page.locator("h1#verified")).to_have_text(texts.confirmed)
    await assert_accessible(page)
    await screenshots(page, f"journey-{texts.language}--verified")


async def log_in(page: Page, texts: Texts, email: str) -> None:
    await page.get_by_role("main").get_by_role("link", name=texts.log_in).click()
    await page.wait_for_url("**/login*")
    await assert_accessible(page)
    await page.get_by_label(texts.login_email, exact=True).fill(email)
    await page.get_by_label(texts.password, exact=True).fill(PASSWORD)
    await page.get_by_role("main").get_by_role("button", name=texts.log_in).click()
    await expect(page.locator("#person-name")).to_have_text("Camille Martin")
    await assert_accessible(page)


async def import_members(page: Page, texts: Texts) -> None:
    """Mon compte > Membres, a spreadsheet of three colleagues and a bad address: the report counts and the row."""
    await page.get_by_role("navigation", name=texts.my_account).get_by_role("link", name=texts.members).click()
    await page.wait_for_url("**/account/members")
    await expect(page.locator("h1#members-title")).to_have_text(texts.members)
    await assert_accessible(page)
    rows = ["Prénom;Nom;Adresse e-mail", "Léa;Petit;lea.petit@exemple.fr", "Hugo;Bernard;hugo.bernard@exemple.fr"]
    rows += ["Inès;Moreau;pas-un-email", "Noé;Lefèvre;noe.lefevre@exemple.fr"]  # line 4 is refused
    sheet = ("\r\n".join(rows) + "\r\n").encode()
    await page.locator("#field-file").set_input_files({"name": "membres.csv", "mimeType": "text/csv", "buffer": sheet})
    await page.locator("#field-file").locator("xpath=ancestor::form").locator("button[type=submit]").click()
    await expect(page.locator("h1#report-title")).to_be_visible()
    await expect(page.locator("#report-invited")).to_have_text("3")
    await expect(page.locator("#report-rejected")).to_have_text("1")
    rejected = page.locator("#rejected-rows tbody tr")
    await expect(rejected).to_have_count(1)
    await expect(rejected).to_have_attribute("data-line", "4")
    await expect(rejected).to_contain_text(texts.invalid_email)
    await assert_accessible(page)
    await screenshots(page, f"journey-{texts.language}--import-report")
    await assert_no_horizontal_scroll(page)


async def log_out(page: Page, texts: Texts) -> None:
    await page.get_by_role("button", name=texts.log_out).click()
    await page.wait_for_url("**/login?logged_out=1")
    await expect(page.get_by_role("status")).to_have_text(texts.logged_out)
    await expect(page.locator("#person-name")).to_have_count(0)


async def journey(page: Page, texts: Texts, mail_api: str) -> None:
    email = unique_email(f"browser-{texts.language}")
    await sign_up(page, texts, email)
    await confirm_address(page, texts, await verification_link(mail_api, texts, email))
    await log_in(page, texts, email)
    await import_members(page, texts)
    await log_out(page, texts)


async def test_a_school_signs_up_imports_its_members_and_logs_out(new_context, stack) -> None:  # type: ignore[no-untyped-def]
    page = await (await new_context()).new_page()
    await journey(page, FRENCH, stack.mail_api)


async def test_the_same_journey_in_english(new_context, stack) -> None:  # type: ignore[no-untyped-def]
    page = await (await new_context()).new_page()
    await page.goto("/")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("link", name="Skip to content")).to_have_count(1)
    await journey(page, ENGLISH, stack.mail_api)


async def tab_to(page: Page, selector: str, key: str = "Tab", limit: int = 40) -> None:
    """Press Tab (or Shift+Tab) until the focus reaches `selector`; every element on the way shows its focus."""
    for _ in range(limit):
        await page.keyboard.press(key)
        await assert_focus_visible(page)
        if await page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
    raise AssertionError(f"{limit} x {key} never reached {selector} on {page.url}; last: {await focus_outline(page)}")


async def test_sign_up_and_log_in_with_the_keyboard_alone(new_context, stack) -> None:  # type: ignore[no-untyped-def]
    page = await (await new_context()).new_page()
    email = unique_email("browser-keyboard")
    await page.goto("/signup")
    # the first Tab reaches the skip link, shown on focus; Enter moves the focus to the page's content
    await page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    await expect(skip).to_be_focused()
    await assert_focus_visible(page)
    box = await skip.bounding_box()
    assert box is not None and box["y"] >= 0 and box["height"] > 0, f"the focused skip link is off screen: {box}"
    await page.keyboard.press("Enter")
    await expect(page.locator("main#main")).to_be_focused()
    assert page.url.endswith("#main")
    # from the content, Tab goes straight to the form: the institution kind first (a school: Space keeps it)
    await page.keyboard.press("Tab")
    await expect(page.locator("input[name=institution_kind][value=school]")).to_be_focused()
    await assert_focus_visible(page)
    await page.keyboard.press("Space")
    for name, value in (
        ("institution_name", "École des Claviers"),
        ("institution_identifier", new_uai()),
        ("contact_name", "Camille Martin"),
        ("email", email),
        ("password", PASSWORD),
    ):
        await tab_to(page, f"#field-{name}")
        await page.keyboard.type(value)
    await tab_to(page, "#field-email", key="Shift+Tab")  # back one field, and forward again
    await expect(page.locator("#field-email")).to_have_value(email)
    await tab_to(page, "form[action='/signup'] button[type=submit]")
    await page.keyboard.press("Space")
    await expect(page.locator("h1#sent")).to_be_visible()

    await page.goto(await verification_link(stack.mail_api, FRENCH, email))  # the link opened from the mail
    await tab_to(page, "form[action='/verify-email'] button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.locator("h1#verified")).to_be_visible()
    await tab_to(page, "main a[href='/login']")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/login")
    await tab_to(page, "#field-email")
    await page.keyboard.type(email)
    await tab_to(page, "#field-password")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")  # submits the form
    await expect(page.locator("#person-name")).to_have_text("Camille Martin")
    await tab_to(page, "form[action='/logout'] button")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/login?logged_out=1")
