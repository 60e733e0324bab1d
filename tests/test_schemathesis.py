"""Schemathesis against the running gateway finds no 5xx, and no answer that its OpenAPI document does not declare
(status, content type, body): every operation of the document, with a real bearer token, and real account,
member and user ids in the path most of the time (random ones otherwise), a bounded number of examples each,
within a time budget.

Requests come from a loopback address of their own (127.0.0.66), so that the login attempts they make are
counted against that source and never throttle the other tests, which come from 127.0.0.1."""

import asyncio
import time
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api_world import World, make_world

pytestmark = pytest.mark.infra

EXAMPLES_PER_OPERATION = 30
BUDGET_SECONDS = 200
SOURCE = "127.0.0.66"
# Every answer is checked: no 5xx, and its status, content type and body are those the document declares.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# They take no input and would end the session the other operations use; other tests cover them.
SPARED = {("DELETE", "/api/v1/sessions/current"), ("POST", "/api/v1/sessions/logout-everywhere")}


class FromSource(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def fuzz(base_url: str, world: World, deadline: float) -> tuple[list[str], list[str]]:
    """(operations tested, failures)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    session = requests.Session()
    session.mount("http://", FromSource(SOURCE))
    real = world.path_values()
    tested: list[str] = []
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if (operation.method.upper(), operation.path) in SPARED or not operation.path.startswith("/api/"):
            continue
        if time.monotonic() > deadline:
            failures.append(f"{label}: not tested, out of time")
            continue
        # a real id three times in four, a random one otherwise
        picks = st.fixed_dictionaries(
            {name: st.sampled_from([value, value, value, None]) for name, value in real.items()}
        )

        @given(case=operation.as_strategy(), ids=picks)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any, ids: dict[str, str | None]) -> None:
            for name, value in ids.items():
                if value is not None and case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
            response = case.call(base_url=base_url, session=session, headers=world.auth, timeout=30)
            case.validate_response(response, checks=CHECKS)

        tested.append(label)
        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a group of failures
            failures.append(f"{label}: {exc}")
    return tested, failures


async def test_schemathesis_finds_no_server_error(system):
    url = system.url("gateway")
    async with httpx.AsyncClient(base_url=url, timeout=30) as gateway:
        world = await make_world(gateway, system.stack.mail_api, "schemathesis")
    tested, failures = await asyncio.to_thread(fuzz, url, world, time.monotonic() + BUDGET_SECONDS)
    assert not failures, "\n\n".join(failures)
    assert len(tested) >= 20, tested  # the document lists every public operation
    assert any("{member_id}" in label for label in tested)
