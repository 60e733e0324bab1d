"""The billing tests' world, through the gateway as a client would go: the price list, orders by card paid or declined
on the sandbox provider's page (which makes billing send the provider's signed webhook to the gateway's public
webhook path, as Stripe would), purchase orders, and webhooks signed the way Stripe signs them."""

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from portal_world import submit

from api_world import MEMBER_PASSWORD, Manager, grant_organiser, link_path, log_in, sign_up, unique_email
from mail import wait_for_mail

# The price list billing starts with (its first migration): codes of the unit token and the bundles.
UNIT, PACK_5, PACK_10 = "unit", "pack-5", "pack-10"
PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"  # enough for "a PDF" at the edge


@dataclass
class People:
    """Institution A (its manager and an accepted member), another institution's manager, an organiser."""

    manager: Manager
    member_email: str
    member: dict[str, str]
    other: Manager
    organiser: dict[str, str]


async def make_people(system: Any, label: str) -> People:
    mail_api = system.stack.mail_api
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, f"{label}-a", verified_with=mail_api)
        member_email = unique_email(f"{label}-member")
        members = f"/api/v1/accounts/{manager.account_id}/members"
        added = await gateway.post(
            members, json={"members": [{"name": "Léa Petit", "email": member_email}]}, headers=manager.auth
        )
        assert added.status_code == 200, added.text
        token = link_path(await wait_for_mail(mail_api, member_email), "accept-invitation").split("token=")[1]
        accepted = await gateway.post(
            "/api/v1/invitations/acceptance", json={"token": token, "new_password": MEMBER_PASSWORD}
        )
        assert accepted.status_code == 200, accepted.text
        member = await log_in(gateway, member_email, MEMBER_PASSWORD)
        other = await sign_up(gateway, f"{label}-b", verified_with=mail_api)
        organiser = await sign_up(gateway, f"{label}-organiser")
        await grant_organiser(system, organiser.email)
        return People(manager, member_email, member, other, await log_in(gateway, organiser.email))


async def price_items(gateway: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The price list's items by code."""
    answer = await gateway.get("/api/v1/price-list")
    assert answer.status_code == 200, answer.text
    return {item["code"]: item for item in answer.json()["items"]}


async def card_order(
    gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str, code: str = PACK_5, quantity: int = 1
) -> dict[str, Any]:
    item = (await price_items(gateway))[code]
    placed = await gateway.post(
        f"/api/v1/accounts/{account_id}/orders",
        json={"lines": [{"item_id": item["id"], "quantity": quantity}]},
        headers=auth,
    )
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order


async def purchase_order(
    gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str, quantity: int = 3
) -> dict[str, Any]:
    item = (await price_items(gateway))[UNIT]
    placed = await gateway.post(
        f"/api/v1/accounts/{account_id}/purchase-orders",
        json={
            "lines": [{"item_id": item["id"], "quantity": quantity}],
            "buyer_order_number": "BC-2026-017",
            "service_code": "SERVICE-EPLE",
            "commitment_number": "EJ-4471",
        },
        headers=auth,
    )
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order


def checkout_path(order: dict[str, Any]) -> str:
    """The sandbox provider's page of the order's checkout, on the gateway."""
    path = urlsplit(order["checkout_url"]).path
    assert path.startswith("/payments/sandbox/cs_"), order["checkout_url"]
    return path


async def answer_checkout(base_url: str, order: dict[str, Any], action: str) -> httpx.Response:
    """Pay (or decline) on the sandbox page as a person does, with no session: the page's form and its CSRF token.
    The answer is the redirect (303) to where the provider sends the person back."""
    path = checkout_path(order)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as browser:
        return await submit(browser, path, path, {"action": action})


async def order_of(gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str, order_id: str) -> dict[str, Any]:
    answer = await gateway.get(f"/api/v1/accounts/{account_id}/orders/{order_id}", headers=auth)
    assert answer.status_code == 200, answer.text
    order: dict[str, Any] = answer.json()
    return order


async def order_until(
    gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str, order_id: str, status: str, timeout: float = 30
) -> dict[str, Any]:
    """The order once it has `status` and, if paid, its invoice (the webhook is handled before the sandbox answers;
    this waits only for a busy machine)."""
    deadline = time.monotonic() + timeout
    while True:
        order = await order_of(gateway, auth, account_id, order_id)
        if order["status"] == status and (status != "paid" or order["invoice"]):
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"order not {status} within {timeout}s: {order}")
        await asyncio.sleep(0.2)


async def paid_order(
    base_url: str, auth: dict[str, str], account_id: str, code: str = PACK_5, quantity: int = 1
) -> dict[str, Any]:
    """An order paid by card through the sandbox, its invoice issued."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as gateway:
        order = await card_order(gateway, auth, account_id, code, quantity)
        paid = await answer_checkout(base_url, order, "pay")
        assert paid.status_code == 303, paid.text
        return await order_until(gateway, auth, account_id, order["id"], "paid")


def stripe_signed(event: dict[str, Any], secret: str, at: int | None = None) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of `event` as Stripe sends it: `Stripe-Signature: t=<ts>,v1=<hmac-sha256 of "ts.body">`."""
    body = json.dumps(event, separators=(",", ":")).encode()
    timestamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"}


def unhandled_event() -> dict[str, Any]:
    """A well-formed event of a kind billing does not act on (it acknowledges it, as Stripe expects)."""
    return {
        "id": "evt_" + hashlib.sha256(str(time.monotonic_ns()).encode()).hexdigest()[:24],
        "object": "event",
        "type": "customer.created",
        "created": int(time.time()),
        "data": {"object": {"id": "cus_test", "object": "customer"}},
    }
