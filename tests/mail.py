"""Reading the SMTP catcher's mailbox from tests."""

import asyncio
import re
import time
from typing import Any

import httpx

# A mail found is checked again after this pause, so that a duplicate sent just after it fails the test too.
SETTLE_SECONDS = 0.75


async def mails_to(mail_api: str, to: str, client: httpx.AsyncClient | None = None) -> list[dict[str, Any]]:
    """Every mail caught for `to`, oldest first (asked with `client` when given: one for a whole wait, since
    httpx spends ~35 ms of CPU making each new client's TLS context)."""
    if client is None:
        async with httpx.AsyncClient(base_url=mail_api, timeout=30) as client:
            return await mails_to(mail_api, to, client)
    return list(reversed((await client.get("/api/messages", params={"to": to})).json()))


async def wait_for_mails(
    mail_api: str, to: str, count: int, timeout: float = 30, subject_contains: str = ""
) -> list[dict[str, Any]]:
    """The `count` mails to `to` whose subject contains `subject_contains`, oldest first. Fails if fewer arrive
    within `timeout`, or if more than `count` are there once they have settled (a mail sent twice)."""
    what = f"mail(s) to {to} with {subject_contains!r} in the subject"

    async with httpx.AsyncClient(base_url=mail_api, timeout=30) as client:

        async def matching() -> list[dict[str, Any]]:
            return [m for m in await mails_to(mail_api, to, client) if subject_contains in m["subject"]]

        deadline = time.monotonic() + timeout
        while len(found := await matching()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} {what} within {timeout}s")
            await asyncio.sleep(0.2)
        await asyncio.sleep(SETTLE_SECONDS)
        found = await matching()
    assert len(found) == count, f"{len(found)} {what}, expected {count}: {[m['subject'] for m in found]}"
    return found


async def wait_for_mail(mail_api: str, to: str, timeout: float = 30, subject_contains: str = "") -> dict[str, Any]:
    """The one mail to `to` whose subject contains `subject_contains`; fails if none comes, or if it comes twice."""
    [mail] = await wait_for_mails(mail_api, to, 1, timeout, subject_contains)
    return mail


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://[^\s<>\"]+", text)


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a portal page's form (the token and the CSRF token), to post it back."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
