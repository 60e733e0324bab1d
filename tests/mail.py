"""Reading the SMTP catcher's mailbox from tests."""

import asyncio
import re
import time
from typing import Any

import httpx


async def wait_for_mail(mail_api: str, to: str, timeout: float = 30, subject_contains: str = "") -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=mail_api) as client:
        while True:
            messages = (await client.get("/api/messages", params={"to": to})).json()
            found = [m for m in messages if subject_contains in m["subject"]]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} within {timeout}s")
            await asyncio.sleep(0.2)


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://[^\s<>\"]+", text)


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a portal page's form (the token and the CSRF token), to post it back."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
