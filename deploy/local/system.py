"""The six Visiopass services as real processes against a running Stack (used by `make up` and the e2e tests)."""

import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PORTS = {
    "accounts": 8101,
    "billing": 8102,
    "catalogue": 8103,
    "enrollment": 8104,
    "notifier": 8105,
    "gateway": 8000,
}
WITH_DATABASE = ("accounts", "billing", "catalogue", "enrollment", "notifier", "gateway")
WITHOUT_KAFKA = ("gateway",)  # its database holds what its replicas share (rate limits, idempotency keys)
# The gateway serves its Prometheus metrics on an internal port only, never on its public one: by default its
# public port + 100 (8000 -> 8100), so that every System (tests, benchmarks, a second gateway) gets its own.
GATEWAY_METRICS_PORT_SHIFT = 100
LOCAL_JITSI_DOMAIN = "meet.jit.si"  # the rooms' server locally: a Jitsi that needs no account


@dataclass
class System:
    stack: Any  # devstack.Stack
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # keyring sealing the tokens of mailed links in events (contracts.secrets), held by accounts and the notifier
    event_secret_keys: str = field(
        default_factory=lambda: "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(), repr=False
    )
    # seals the signing secrets of the accounts' outgoing webhook endpoints in the notifier's database
    webhook_secret_keys: str = field(
        default_factory=lambda: "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(), repr=False
    )
    # signs the reminders' unsubscribe links (notifier.preferences)
    unsubscribe_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    # the mail provider's bounce reports authenticate with it (gateway.notifications: POST /hooks/mail/bounces)
    bounce_webhook_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    # Jitsi's webhook authenticates with it (gateway.join_pages: POST /hooks/rooms/jitsi)
    jitsi_webhook_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    # signs the payment provider's webhooks (the local sandbox signs as Stripe does; billing checks)
    webhook_secret: str = field(default_factory=lambda: "whsec_" + secrets.token_urlsafe(24), repr=False)
    # keys the conference rooms' PINs and passwords, and signs the Jitsi tokens (catalogue.rooms)
    room_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # makes the participation links and the feedback links of certificates (only their hashes are stored)
    link_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    settings: dict[str, str] = field(default_factory=dict)  # extra environment, e.g. ACCOUNTS_* limits
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    gateway_metrics_port: int | None = None  # None: the gateway's port + GATEWAY_METRICS_PORT_SHIFT

    def keep_secrets(self, path: Path) -> None:
        """Take the secrets (its str fields) kept in `path` by an earlier run, and keep there
        those it did not have yet. `make up` keeps its databases from one run to the next: with new secrets, the
        sealed tokens of mails not sent yet would no longer open, and rooms' PINs would change."""
        names = [item.name for item in fields(self) if item.type in (str, "str")]
        kept = json.loads(path.read_text()) if path.exists() else {}
        for name in names:
            if isinstance(kept.get(name), str):
                setattr(self, name, kept[name])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps({name: getattr(self, name) for name in names}))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def metrics_url(self, name: str) -> str:
        """A service's Prometheus metrics: the gateway's on its internal port, the others' beside their API."""
        if name == "gateway":
            return f"http://127.0.0.1:{self.metrics_port_of_gateway()}/metrics"
        return f"{self.url(name)}/metrics"

    def metrics_port_of_gateway(self) -> int:
        return self.gateway_metrics_port or self.ports["gateway"] + GATEWAY_METRICS_PORT_SHIFT

    def env_for(self, name: str) -> dict[str, str]:
        prefix = name.upper() + "_"
        env = {
            f"{prefix}HTTP_PORT": str(self.ports[name]),
            f"{prefix}INTERNAL_TOKEN": self.internal_token,
            f"{prefix}LOG_LEVEL": os.environ.get("VISIOPASS_LOG_LEVEL", "INFO"),
        }
        if name in WITH_DATABASE:
            env[f"{prefix}DATABASE_URL"] = self.stack.database_url(name)
            if name not in WITHOUT_KAFKA:
                env[f"{prefix}KAFKA_BOOTSTRAP_SERVERS"] = self.stack.kafka_bootstrap
        if name in ("accounts", "enrollment", "notifier"):
            env[f"{prefix}EVENT_SECRET_KEYS"] = self.event_secret_keys
        if name == "enrollment":
            env["ENROLLMENT_LINK_KEY"] = self.link_key
            env["ENROLLMENT_PUBLIC_BASE_URL"] = self.url("gateway")  # printed on certificates (their check)
        if name == "notifier":
            env |= {
                "NOTIFIER_SMTP_HOST": "127.0.0.1",
                "NOTIFIER_SMTP_PORT": str(self.stack.ports.smtp),
                "NOTIFIER_PUBLIC_BASE_URL": self.url("gateway"),
                "NOTIFIER_UNSUBSCRIBE_KEY": self.unsubscribe_key,
                # the catcher takes SMS too, through the same HTTP API as a real SMS gateway (notifier.sms)
                "NOTIFIER_SMS_GATEWAY_URL": f"{self.stack.mail_api}/sms",
                "NOTIFIER_WEBHOOK_SECRET_KEYS": self.webhook_secret_keys,
                # local receivers listen on 127.0.0.1, which a deployed notifier refuses to call
                "NOTIFIER_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            }
            if "billing" in self.ports:  # where the PDFs the billing mails attach are fetched
                env["NOTIFIER_BILLING_URL"] = self.url("billing")
            if "enrollment" in self.ports:  # where the certificates the thank-you mails attach are fetched
                env["NOTIFIER_ENROLLMENT_URL"] = self.url("enrollment")
        if name == "billing":
            env |= {
                "BILLING_PAYMENT_PROVIDER": "sandbox",  # no card network here: the local provider's pay/decline page
                "BILLING_WEBHOOK_SECRET": self.webhook_secret,
                "BILLING_PUBLIC_BASE_URL": self.url("gateway"),
            }
        if name == "catalogue":
            env |= {
                "CATALOGUE_PUBLIC_BASE_URL": self.url("gateway"),
                "CATALOGUE_ROOM_SECRET": self.room_secret,
                # Jitsi with token authentication: join links are made and signed here; no meeting server is called
                "CATALOGUE_JITSI_DOMAIN": LOCAL_JITSI_DOMAIN,
                "CATALOGUE_JITSI_APP_SECRET": self.room_secret,
            }
        if name == "gateway":
            env["GATEWAY_ACCOUNTS_URL"] = self.url("accounts")
            if "notifier" in self.ports:  # a System without the notifier: its parts show "unavailable"
                env["GATEWAY_NOTIFIER_URL"] = self.url("notifier")
            if "billing" in self.ports:  # tokens, orders, invoices; without it their pages and routes answer 503
                env["GATEWAY_BILLING_URL"] = self.url("billing")
            if "catalogue" in self.ports:  # themes, sessions, planning; without it their pages and routes answer 503
                env["GATEWAY_CATALOGUE_URL"] = self.url("catalogue")
            if "enrollment" in self.ports:  # enrolments, "Mes Webvisio"; without it their pages and routes answer 503
                env["GATEWAY_ENROLLMENT_URL"] = self.url("enrollment")
            env["GATEWAY_SECRET_KEY"] = self.secret_key
            env["GATEWAY_BOUNCE_WEBHOOK_TOKEN"] = self.bounce_webhook_token
            # BigBlueButton's end callback is signed by the catalogue with the room secret; the gateway checks it
            env["GATEWAY_ROOM_CALLBACK_SECRET"] = self.room_secret
            env["GATEWAY_JITSI_WEBHOOK_TOKEN"] = self.jitsi_webhook_token
            # a permanent room's join form redirects to the conference server: the CSP's form-action must allow it
            env["GATEWAY_FORM_ACTION_ORIGINS"] = f"https://{LOCAL_JITSI_DOMAIN}"
            env["GATEWAY_METRICS_PORT"] = str(self.metrics_port_of_gateway())
        return env | {key: value for key, value in self.settings.items() if key.startswith(prefix)}

    def start(self, names: tuple[str, ...] = tuple(DEFAULT_PORTS), timeout: float = 120) -> None:
        from devstack import make_private, spawn

        for name in WITH_DATABASE:
            if name in names:
                self.stack.ensure_database(name)
        make_private(self.log_dir)  # spawn creates each log 0600 too: logs may name people
        for name in names:
            if name not in self.processes:
                self.processes[name] = spawn(
                    [sys.executable, "-m", name],
                    self.log_dir / f"{name}.log",
                    env={**os.environ, **self.env_for(name)},
                )
        deadline = time.monotonic() + timeout
        for name in names:
            self._wait_ready(name, deadline)

    def _wait_ready(self, name: str, deadline: float) -> None:
        while True:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(f"{self.url(name)}/health/ready", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready in time:\n{self.log_tail(name)}")
            time.sleep(0.2)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, timeout: float = 15, names: tuple[str, ...] | None = None) -> None:
        """Stop every service, or only `names` (a test of the others without one; `start(names)` restarts it)."""
        stopping = {name: self.processes.pop(name) for name in names or tuple(self.processes) if name in self.processes}
        for process in stopping.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in stopping.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
