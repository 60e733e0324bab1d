"""Every route of the gateway answers each of five callers exactly as the authorisation matrix
(`tests/authorisation_matrix.py`) says, and the matrix covers the route table exactly: a new route without an
entry fails here, and so does an entry whose route is gone.

The route table is read from the gateway's app itself (imported in this process only to read it): portal pages
are not in the OpenAPI document, and it is the truth of what the gateway serves. The calls go to the real
gateway and services, a bounded number at a time."""

import asyncio
from collections import defaultdict

import pytest
from authorisation_matrix import CALLERS, ENTRIES, Entry, Scene, build_scene, send

pytestmark = pytest.mark.infra

AT_ONCE = 12  # calls under way at the same time
# Litestar answers OPTIONS itself on every path (CORS preflight, `Allow`): not a route of ours.
IMPLICIT = {"OPTIONS"}


def route_table() -> set[tuple[str, str]]:
    """(method, path template) of every route the gateway serves."""
    from gateway.main import app

    return {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method not in IMPLICIT
    }


def test_every_route_has_an_entry_and_every_entry_a_route():
    listed = [(entry.method, entry.path) for entry in ENTRIES]
    twice = {route for route in listed if listed.count(route) > 1}
    assert not twice, f"listed twice in the matrix: {sorted(twice)}"
    served = route_table()
    missing = sorted(served - set(listed))
    stale = sorted(set(listed) - served)
    assert not missing, "routes without an entry in tests/authorisation_matrix.py:\n" + "\n".join(
        f"  {method} {path}" for method, path in missing
    )
    assert not stale, "entries without a route:\n" + "\n".join(f"  {method} {path}" for method, path in stale)


async def answer(scene: Scene, entry: Entry, caller: str, slots: asyncio.Semaphore) -> str | None:
    """What is wrong with the caller's answer, or None."""
    async with slots:
        try:
            response = await send(scene, entry, caller)
        except Exception as exc:  # a failure to build the call is a failure of this entry, not of the whole run
            return f"{entry.method} {entry.path} as {caller}: could not call: {exc!r}"
    expected = entry.expected[caller]
    if response.status_code == expected:
        return None
    note = f" (known: {entry.bug})" if entry.bug else ""
    return (
        f"{entry.method} {entry.path} as {caller}: expected {expected}, got {response.status_code}{note}: "
        f"{_gist(response.text)!r}"
    )


async def test_every_caller_gets_the_answer_the_matrix_says(system):
    scene = await build_scene(system.url("gateway"), system.stack.mail_api, system)
    rounds: dict[int, list[Entry]] = defaultdict(list)
    for entry in ENTRIES:
        rounds[entry.after].append(entry)
    slots = asyncio.Semaphore(AT_ONCE)
    wrong: list[str] = []
    for after in sorted(rounds):
        answers = await asyncio.gather(
            *(answer(scene, entry, caller, slots) for entry in rounds[after] for caller in CALLERS)
        )
        wrong += [problem for problem in answers if problem]
    assert not wrong, f"{len(wrong)} answers differ from the matrix:\n" + "\n".join(wrong)


def _gist(text: str) -> str:
    """An answer's start, or a page's error notice (what a page says is wrong, past its head)."""
    if 'class="notice' in text:
        return text[text.index('class="notice') :][:300]
    return text[:300]
