"""Cross-service fixtures: the six services as real processes on the test stack."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from system import System

TEST_PORTS = {
    "accounts": 28101,
    "billing": 28102,
    "catalogue": 28103,
    "enrollment": 28104,
    "notifier": 28105,
    "gateway": 28000,
}


@pytest.fixture(scope="session")
def system(stack, kafka) -> Iterator[System]:  # type: ignore[no-untyped-def]
    running = System(stack, log_dir=Path(stack.state_dir) / "service-logs", ports=dict(TEST_PORTS))
    running.start()
    try:
        yield running
    finally:
        running.stop()
