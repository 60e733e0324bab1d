"""Participation links in tests: a confirmed enrolment's link, its session moved to start in a few minutes (the room
opens), ended (SessionEnded published as the catalogue's scheduler would), and the feedback link of a certificate
made as enrollment makes it (docs/enrollment.md)."""

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from portal_world import submit
from test_enrolment_pages import confirmed, published_session

from contracts.events.catalogue import SessionEnded
from kit import publish, wait_for

PARIS = ZoneInfo("Europe/Paris")


def _internal(system: Any, name: str, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=system.url(name), headers={"X-Internal-Token": system.internal_token, **headers}, timeout=30
    )


async def link_token(system: Any, account_id: str, enrollment_id: str) -> str:
    """The participation link of a confirmed enrolment (made with its confirmation)."""
    async with _internal(system, "enrollment") as enrollment:
        answer = await enrollment.get(f"/internal/enrolments/{enrollment_id}/link", params={"account_id": account_id})
    assert answer.status_code == 200, answer.text
    assert answer.json()["path"] == f"/join/{answer.json()['token']}"
    return str(answer.json()["token"])


async def join_state(system: Any, token: str) -> str | None:
    async with _internal(system, "enrollment") as enrollment:
        answer = await enrollment.post("/internal/join/resolve", json={"token": token})
    return str(answer.json()["state"]) if answer.status_code == 200 else None


async def starting_soon(system: Any, session_id: str, token: str, minutes: int = 5) -> None:
    """The session moved to start in `minutes` (same zone and length): its room opens; once enrollment says so."""
    starts = (datetime.now(UTC) + timedelta(minutes=minutes)).astimezone(PARIS)
    body = {"local_start": starts.strftime("%Y-%m-%dT%H:%M"), "timezone": "Europe/Paris", "duration_minutes": 60}
    async with _internal(system, "catalogue", **{"X-Actor-Id": str(uuid.uuid4())}) as catalogue:
        moved = await catalogue.post(f"/internal/back-office/sessions/{session_id}/reschedule", json=body)
    assert moved.status_code == 200, moved.text

    async def opened() -> bool:
        return await join_state(system, token) == "open"

    await wait_for(opened, timeout=30, what="the link's room open")


async def ended(system: Any, session_id: str, token: str) -> None:
    """SessionEnded, as the catalogue's scheduler publishes it at the end; once enrollment has taken it."""
    await publish(
        system.stack.kafka_bootstrap, SessionEnded(session_id=uuid.UUID(session_id), ended_at=datetime.now(UTC))
    )

    async def over() -> bool:
        return await join_state(system, token) == "ended"

    await wait_for(over, timeout=30, what="the link's session over")


def feedback_token(link_key: str, certificate_id: str) -> str:
    """The token of a certificate's feedback link, as enrollment makes it (only its hash is stored)."""
    digest = hmac.new(link_key.encode(), b"feedback:" + uuid.UUID(certificate_id).bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def enrolled_link(system: Any, manager: Any, **session: Any) -> tuple[str, str, str]:
    """(session id, enrolment id, link token) of a new session that `manager`'s institution (`auth`, `account_id`)
    is confirmed in; `session`: the session's fields."""
    session_id = await published_session(system, **session)
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        enrolment = await confirmed(gateway, manager.auth, manager.account_id, session_id)
    return session_id, enrolment["id"], await link_token(system, manager.account_id, enrolment["id"])


async def certificate_feedback_path(system: Any, manager: Any) -> str:
    """The feedback link of a certificate (`/feedback/<token>`, as the thank-you mail carries it): `manager`'s
    institution enrolled in a session that then starts soon, someone joins through the link, the session ends."""
    session_id, enrollment_id, token = await enrolled_link(system, manager)
    await starting_soon(system, session_id, token)
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        joined = await submit(gateway, f"/join/{token}", f"/join/{token}", {"name": "Camille Durand"})
        assert joined.status_code == 303, joined.text
    await ended(system, session_id, token)
    async with _internal(system, "enrollment") as enrollment:
        path = f"/internal/enrolments/{enrollment_id}/certificates"
        answer = await enrollment.get(path, params={"account_id": manager.account_id})
    assert answer.status_code == 200 and answer.json()["items"], answer.text
    return f"/feedback/{feedback_token(system.link_key, answer.json()['items'][0]['id'])}"
