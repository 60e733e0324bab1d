"""Answers of the internal services pass through the gateway without naming internal URLs."""

import json

import httpx

from gateway.upstream import relay


def test_a_relayed_problem_does_not_name_the_internal_url_that_answered() -> None:
    problem = {"type": "about:blank", "status": 404, "code": "not_found", "instance": "/internal/users/42/profile"}
    upstream = httpx.Response(
        404, content=json.dumps(problem).encode(), headers={"content-type": "application/problem+json"}
    )
    relayed = json.loads(relay(upstream).content)
    assert "instance" not in relayed
    assert relayed["code"] == "not_found"


def test_other_answers_pass_through_unchanged() -> None:
    body = b'{"instance": "kept, not a problem"}'
    upstream = httpx.Response(200, content=body, headers={"content-type": "application/json"})
    assert relay(upstream).content == body
