"""Security headers on every answer of the gateway, and no /metrics on its public port. The gateway app alone:
nothing here reaches accounts (its calls answer 503 quickly: nothing listens on the upstream's port)."""

import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway.headers import start_metrics_listener
from gateway.main import app
from gateway.settings import GatewaySettings

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Any]]:
    with TestClient(app) as client:
        yield client


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_secured(answer: Any, *, no_store: bool = True) -> None:
    headers = answer.headers
    policy = directives(headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"], "no unsafe-inline, no unsafe-eval, no other origin for scripts"
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in headers  # GATEWAY_HSTS_SECONDS is 0 by default
    if no_store:
        assert headers["cache-control"] == "no-store"
    else:
        assert "no-store" not in headers["cache-control"] and "max-age=" in headers["cache-control"]


def test_an_api_answer(client: TestClient[Any]) -> None:
    # accounts does not answer here: 503 (a 200 through the running system: tests/test_walking_skeleton.py)
    answer = client.get("/api/v1/member-import-template")
    assert answer.status_code in (200, 503)
    assert_secured(answer)


def test_an_api_refusal_and_a_problem(client: TestClient[Any]) -> None:
    unauthenticated = client.get("/api/v1/me")
    assert unauthenticated.status_code == 401
    assert_secured(unauthenticated)
    invalid = client.post("/api/v1/accounts", content=b"{not json", headers={"Content-Type": "application/json"})
    assert invalid.status_code == 400 and invalid.headers["content-type"].startswith("application/problem+json")
    assert_secured(invalid)


def test_a_page_and_a_page_that_failed(client: TestClient[Any]) -> None:
    for path in ("/", "/help", "/signup", "/login", "/forgot-password", "/reset-password?token=abc"):
        answer = client.get(path)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html"), path
        assert_secured(answer)
        assert directives(answer.headers["content-security-policy"])["style-src"] == ["'self'"], "no inline style"
        assert "<style" not in answer.text and " style=" not in answer.text, path
    refused = client.post("/forgot-password", data={"email": "a@example.org"})  # no CSRF token
    assert refused.status_code == 403
    assert_secured(refused)


def test_an_unknown_path_and_a_wrong_method(client: TestClient[Any]) -> None:
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert_secured(missing)
    wrong = client.delete("/api/v1/accounts")
    assert wrong.status_code == 405
    assert_secured(wrong)


def test_the_swagger_page_runs_no_inline_script(client: TestClient[Any]) -> None:
    page = client.get("/schema")
    assert page.status_code == 200
    assert_secured(page)
    assert "unsafe-inline" not in directives(page.headers["content-security-policy"])["script-src"]
    html = page.text
    assert html.count("<script") == html.count("<script src=") == 3, "every script is a file"
    init = client.get("/schema/assets/swagger-init.js")
    assert init.status_code == 200 and "SwaggerUIBundle(" in init.text
    assert_secured(init, no_store=False)
    assert client.get("/schema/openapi.json").headers["cache-control"] == "no-store"


def test_static_assets_keep_their_cache_headers(client: TestClient[Any]) -> None:
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        answer = client.get(f"/schema/assets/{name}")
        assert answer.status_code == 200, name
        assert_secured(answer, no_store=False)


def test_metrics_are_not_on_the_public_port(client: TestClient[Any]) -> None:
    client.get("/health/live")
    answer = client.get("/metrics")
    assert answer.status_code == 404
    assert_secured(answer)


def test_hsts_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from litestar import Litestar, get

    from gateway.headers import security_headers

    @get("/x", sync_to_thread=False)
    def x() -> str:
        return "x"

    with TestClient(Litestar([x], before_send=[security_headers(31536000)])) as tls:
        assert tls.get("/x").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        assert tls.get("/nothing").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    monkeypatch.setenv("GATEWAY_HSTS_SECONDS", "600")
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "0")
    settings = GatewaySettings()
    assert (settings.hsts_seconds, settings.metrics_port) == (600, 0)
    assert GatewaySettings.model_fields["hsts_seconds"].default == 0


def test_the_metrics_listener_serves_the_registry_on_its_own_port(client: TestClient[Any]) -> None:
    client.get("/health/live")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start_metrics_listener("127.0.0.1", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert "http_requests_total" in text and 'app_name="gateway"' in text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_the_swagger_page_renders_under_the_policy(tmp_path: Path) -> None:
    """Headless Chromium, through a real server: the page draws the operations, and the policy refused nothing."""
    import threading

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            threading.Event().wait(0.1)
        chromium = shutil.which(str(CHROMIUM)) or str(CHROMIUM)
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp_path}",
                "--virtual-time-budget=8000",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                f"http://127.0.0.1:{port}/schema",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        server.should_exit = True
        thread.join(10)
    assert "/api/v1/accounts" in result.stdout, result.stderr[-3000:]  # Swagger UI drew the operations
    assert "Content Security Policy" not in result.stderr, result.stderr[-3000:]


def test_the_payment_providers_page_may_be_a_forms_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    from litestar import Litestar, get

    from gateway.headers import security_headers

    @get("/x", sync_to_thread=False)
    def x() -> str:
        return "x"

    monkeypatch.setenv("GATEWAY_FORM_ACTION_ORIGINS", "https://checkout.stripe.com, ")
    origins = GatewaySettings().form_action_origins
    assert origins == ("https://checkout.stripe.com",)
    with TestClient(Litestar([x], before_send=[security_headers(0, origins)])) as portal:
        policy = portal.get("/x").headers["content-security-policy"]
    assert "form-action 'self' https://checkout.stripe.com;" in policy
    for wrong in ("http://checkout.stripe.com", "https://checkout.stripe.com/pay", "'unsafe-inline'"):
        monkeypatch.setenv("GATEWAY_FORM_ACTION_ORIGINS", wrong)
        with pytest.raises(ValueError, match="not an https origin"):
            GatewaySettings()
