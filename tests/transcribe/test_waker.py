"""Waker: the one wait/wake pair every transcript stream's iterator uses."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.transcribe.waker import Waker


async def test_wake_from_sync_code_releases_the_waiter() -> None:
    waker = Waker()
    waiter = asyncio.create_task(waker.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    waker.wake()
    await asyncio.wait_for(waiter, 5)


async def test_a_wake_with_nobody_waiting_is_not_remembered() -> None:
    waker = Waker()
    waker.wake()
    waiter = asyncio.create_task(waker.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    waker.wake()
    await asyncio.wait_for(waiter, 5)


async def test_a_deadline_a_timeout_or_a_task_ends_the_wait() -> None:
    waker, loop = Waker(), asyncio.get_running_loop()
    await asyncio.wait_for(waker.wait(at=loop.time() + 0.01), 5)
    await asyncio.wait_for(waker.wait(within=0.01), 5)
    gate = asyncio.Event()
    task = asyncio.create_task(gate.wait())
    waiter = asyncio.create_task(waker.wait(task=task))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(waiter, 5)


async def test_two_waiters_are_a_bug() -> None:
    waker = Waker()
    first = asyncio.create_task(waker.wait())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one coroutine"):
        await waker.wait()
    waker.wake()
    await first
