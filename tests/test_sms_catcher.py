"""The mail catcher as the local SMS gateway (deploy/local/mailcatcher.py): the notifier's real HTTP adapter
sends to it, as under `make up`; the SMS are listed by its API, shown on its page and kept on disk."""

import asyncio
import html
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mailcatcher import SmsStore, number_key

from notifier.service import Undeliverable
from notifier.sms import HttpSmsGateway, SmsNotSentYet

CATCHER = Path(__file__).parent.parent / "deploy" / "local" / "mailcatcher.py"


def _mobile() -> str:
    """A French mobile number of no one else's test (+33 6 ..), outside the catcher's no-subscriber range."""
    while (digits := f"{random.randrange(10**8):08d}").startswith("3998"):
        pass
    return f"+336{digits}"


def _spaced(number: str) -> str:
    return f"{number[:3]} {number[3]} " + " ".join(number[i : i + 2] for i in range(4, 12, 2))


async def _sms_to(api: str, number: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        response = await client.get("/api/sms", params={"to": number})
        response.raise_for_status()
        return response.json()


# -- against the session's catcher (tests/conftest.py) ------------------------------------------------------


async def test_an_sms_sent_by_the_adapter_is_listed_and_shown(stack) -> None:
    number = _mobile()
    link = "https://visiopass.example/join/Zt4k9QbW"
    text = f"Leçon <Pronote> demain à 9 h : {link}"  # ç: sent in UCS-2, as written
    async with HttpSmsGateway(f"{stack.mail_api}/sms", "Visiopass", token="local-token") as sms:
        await sms.send(number, text, "delivery-41")

    [caught] = await _sms_to(stack.mail_api, number)
    assert {k: caught[k] for k in ("to", "from", "text", "reference", "auth", "links")} == {
        "to": number,
        "from": "Visiopass",
        "text": text,
        "reference": "delivery-41",
        "auth": "bearer",  # the scheme only: the token is not kept
        "links": [link],
    }
    assert "local-token" not in json.dumps(caught)
    # found however the number is written in the query (a "+" sent unencoded arrives as a space)
    assert await _sms_to(stack.mail_api, _spaced(number)) == [caught]
    async with httpx.AsyncClient(base_url=stack.mail_api, timeout=30) as client:
        assert (await client.get(f"/api/sms/{caught['id']}")).json() == caught
        assert (await client.get("/api/sms", params={"to": number.replace("+", " ")})).json() == [caught]
        assert (await client.get("/api/sms/00000000000000000000-00000000")).status_code == 404
        page = await client.get("/sms")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert number in page.text and html.escape("Leçon <Pronote> demain à 9 h") in page.text
        assert f'<a href="{link}">' in page.text
        assert 'href="/sms"' in (await client.get("/")).text  # the mail page leads to the SMS page


async def test_every_request_is_kept_so_that_a_message_sent_twice_shows(stack) -> None:
    number = _mobile()
    async with HttpSmsGateway(f"{stack.mail_api}/sms", "Visiopass", username="visio", password="pw") as sms:
        await sms.send(number, "Rappel : votre session commence dans une heure.", "delivery-42")
        await sms.send(number, "Rappel : votre session commence dans une heure.", "delivery-42")
    caught = await _sms_to(stack.mail_api, number)
    assert [m["reference"] for m in caught] == ["delivery-42", "delivery-42"]
    assert caught[0]["id"] > caught[1]["id"]  # newest first
    assert {m["auth"] for m in caught} == {"basic"}


async def test_a_number_with_no_subscriber_fails_for_good(stack) -> None:
    async with HttpSmsGateway(f"{stack.mail_api}/sms", "Visiopass") as sms:
        with pytest.raises(Undeliverable, match="422"):
            await sms.send("+33639981234", "Bonjour", "delivery-43")
    assert await _sms_to(stack.mail_api, "+33639981234") == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps({"to": "06 12 34 56 78", "text": "x"}).encode(), "E.164"),
        (json.dumps({"to": "+33612345678"}).encode(), "text"),
        (json.dumps({"to": "+33612345678", "text": ""}).encode(), "text"),
        (json.dumps({"to": "+33612345678", "text": "x", "reference": 7}).encode(), "reference"),
    ],
)
async def test_a_request_that_is_not_the_gateway_api_is_a_400(stack, body: bytes, says: str) -> None:
    async with httpx.AsyncClient(base_url=stack.mail_api, timeout=30) as client:
        response = await client.post("/sms", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in response.json()["detail"]


# -- the store, and a catcher of its own that restarts -------------------------------------------------------


def test_the_store_finds_sms_by_number_and_reads_files_kept_before(tmp_path: Path) -> None:
    store = SmsStore(tmp_path / "sms")
    first = store.save("+33612345678", "Visiopass", "un", "d-1")
    second = store.save("+33612345678", None, "deux https://visiopass.example/x", None, "bearer")
    other = store.save("+262692123456", "Visiopass", "trois", "d-3")
    assert [m["id"] for m in store.list("+33 6 12 34 56 78")] == [second["id"], first["id"]]
    assert [m["id"] for m in store.list()] == [other["id"], second["id"], first["id"]]
    assert store.get(second["id"])["links"] == ["https://visiopass.example/x"]
    assert store.get(second["id"])["from"] == ""
    time.sleep(0.15)  # the folder's mtime is settled: a file removed or dropped by hand is still seen
    (tmp_path / "sms" / f"{first['id']}.json").unlink()
    assert [m["id"] for m in store.list("+33612345678")] == [second["id"]]
    (tmp_path / "sms" / "not-an-sms.json").write_text("{}")
    shutil.copytree(tmp_path / "sms", tmp_path / "copy")
    assert [m["id"] for m in SmsStore(tmp_path / "copy").list()] == [other["id"], second["id"]]
    assert store.clear() == 3 and store.list() == []
    assert number_key(" 262692123456") == number_key("00262 692 12 34 56") == "+262692123456"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def own_catcher(tmp_path: Path) -> Iterator[tuple[str, "CatcherProcess"]]:
    smtp_port, http_port = _free_ports(2)
    process = CatcherProcess(tmp_path, smtp_port, http_port)
    try:
        process.start()
        yield f"http://127.0.0.1:{http_port}", process
    finally:
        process.stop()


class CatcherProcess:
    def __init__(self, state_dir: Path, smtp_port: int, http_port: int) -> None:
        self.argv = [sys.executable, str(CATCHER), "--state-dir", str(state_dir)]
        self.argv += ["--smtp-port", str(smtp_port), "--http-port", str(http_port)]
        self.health = f"http://127.0.0.1:{http_port}/healthz"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.popen = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.popen.poll() is None, self.popen.stderr.read().decode() if self.popen.stderr else ""
            try:
                if httpx.get(self.health, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the mail catcher did not answer within 30 s")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None


@pytest.mark.infra
async def test_sms_survive_a_restart_of_the_catcher(own_catcher: tuple[str, CatcherProcess], tmp_path: Path) -> None:
    api, process = own_catcher
    number = _mobile()
    async with HttpSmsGateway(f"{api}/sms", "Visiopass") as sms:
        await sms.send(number, "Avant le redémarrage", "delivery-44")
        [before] = await _sms_to(api, number)
        assert (tmp_path / "sms" / f"{before['id']}.json").exists()

        await asyncio.to_thread(process.stop)
        with pytest.raises(SmsNotSentYet):  # the catcher is down: try again later
            await sms.send(number, "Pendant", "delivery-45")
        await asyncio.to_thread(process.start)

        assert await _sms_to(api, number) == [before]
        await sms.send(number, "Après", "delivery-46")
    assert [m["text"] for m in await _sms_to(api, number)] == ["Après", "Avant le redémarrage"]
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        assert (await client.delete("/api/sms")).json() == {"deleted": 2}
    assert await _sms_to(api, number) == []
