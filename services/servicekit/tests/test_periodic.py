"""servicekit.periodic.every: a failed pass is logged at the level asked and the loop goes on; a count is logged
with `done`; cancelling the task ends the loop."""

import asyncio
import logging

import pytest

from servicekit.periodic import every


async def test_a_failed_pass_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    passes: list[int] = []
    ran_three = asyncio.Event()

    async def one_pass() -> int:
        passes.append(len(passes))
        if len(passes) == 3:
            ran_three.set()
        if len(passes) == 1:
            raise ConnectionError("database down")
        return len(passes)

    with caplog.at_level(logging.INFO, logger="servicekit.periodic"):
        task = asyncio.create_task(every(0.001, one_pass, "test job", done="test job: %d done", level=logging.WARNING))
        await asyncio.wait_for(ran_three.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failed = [record for record in caplog.records if "failed" in record.getMessage()]
    assert [record.levelno for record in failed] == [logging.WARNING]
    assert failed[0].getMessage() == "test job failed; next pass in 0 s"
    assert failed[0].exc_info is not None and isinstance(failed[0].exc_info[1], ConnectionError)
    done = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert done[:2] == ["test job: 2 done", "test job: 3 done"]


async def test_errors_are_logged_at_error_level_by_default_and_nothing_is_said_of_a_zero_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def one_pass() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("boom")
        return 0

    with caplog.at_level(logging.INFO, logger="servicekit.periodic"):
        task = asyncio.create_task(every(0.001, one_pass, "quiet job", done="quiet job: %d"))
        while calls < 4:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.ERROR, "quiet job failed; next pass in 0 s")
    ]
