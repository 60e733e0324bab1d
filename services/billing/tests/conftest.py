"""stripe-mock for the Stripe adapter's tests: built from the Go module proxy once, then started per test session.

The binary is cached under ~/.cache/visiopass/go/bin (GOPATH and GOCACHE under ~/.cache/visiopass), so only the
first run on a machine builds it (about 20 s). It listens on 127.0.0.1 only, on a free port near 12111 + the
suite's port offset, and dies with the test process.
"""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STRIPE_MOCK_MODULE = "github.com/stripe/stripe-mock@v0.203.0"
ROOT = Path(__file__).resolve().parents[3]
CACHE = Path.home() / ".cache" / "visiopass"
PORT_OFFSET = int(os.environ.get("VISIOPASS_TEST_PORT_OFFSET", "0"))


@pytest.fixture(scope="session")
def stripe_mock() -> Iterator[str]:
    """The base URL of a running stripe-mock."""
    from devstack import spawn, terminate

    state_dir = Path(os.environ.get("VISIOPASS_TEST_STATE_DIR", ROOT / ".run" / "test"))
    log = state_dir / "logs" / "stripe-mock.log"
    port = _free_port_from(12111 + PORT_OFFSET)
    # Its HTTPS listener (unused) takes any free port, so that two suites never fight over 12112.
    process = spawn([str(_stripe_mock_binary()), "-http-addr", f"127.0.0.1:{port}", "-https-addr", "127.0.0.1:"], log)
    try:
        _wait_listening(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        terminate(process, 10)


def _stripe_mock_binary() -> Path:
    go_path = CACHE / "go"
    binary = go_path / "bin" / "stripe-mock"
    if binary.exists():
        return binary
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.fail("Go is needed to build stripe-mock (the Debian package golang-go will do)")
    env = os.environ | {
        "GOPATH": str(go_path),
        "GOBIN": str(binary.parent),
        "GOCACHE": str(CACHE / "go-build"),
        "GOFLAGS": "-mod=mod",
    }
    built = subprocess.run([go, "install", STRIPE_MOCK_MODULE], env=env, capture_output=True, text=True, timeout=600)
    if built.returncode != 0 or not binary.exists():
        pytest.fail(f"go install {STRIPE_MOCK_MODULE} failed:\n{built.stderr[-3000:]}")
    return binary


def _free_port_from(first: int) -> int:
    for port in range(first, first + 50):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port for stripe-mock in {first}..{first + 49}")


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"stripe-mock exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"stripe-mock did not listen on {port} within {timeout:.0f} s:\n{log.read_text()[-2000:]}")
