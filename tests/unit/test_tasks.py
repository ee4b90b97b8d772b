"""cancel_and_wait: the owned task's cancellation is absorbed, the caller's own cancellation is not."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.tasks import cancel_and_wait


async def test_the_owned_task_is_cancelled_and_awaited() -> None:
    task = asyncio.create_task(asyncio.sleep(60))
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_cancellation_of_the_caller_while_it_waits_propagates() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:  # takes a while to stop, like a socket close
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()
            raise

    owned = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    closer = asyncio.create_task(cancel_and_wait(owned))
    await asyncio.sleep(0)
    closer.cancel()  # the caller of aclose() is cancelled while it waits for the owned task
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert closer.cancelled()


async def test_another_error_of_the_task_propagates() -> None:
    async def failing() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            raise RuntimeError("close failed")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="close failed"):
        await cancel_and_wait(task)
