"""ClockTimeout: asyncio.timeout whose deadline is on another clock (the loop-lag monitor's effective time)."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.clock_timeout import ClockTimeout


class FakeClock:
    """A clock the test moves by hand (it stands for effective time that froze while the loop was starved)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_without_a_clock_it_is_timeout_at() -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        async with ClockTimeout(None, loop.time() + 0.05) as t:
            await asyncio.sleep(5)
    assert t.expired()


async def test_a_frozen_clock_holds_the_deadline_back_until_it_moves_on() -> None:
    clock = FakeClock()
    t = ClockTimeout(clock, clock.now + 0.05)

    async def advance_later() -> None:
        await asyncio.sleep(0.3)  # 0.3 s of loop time: the deadline is 0.05 s on the frozen clock
        assert not t.expired()
        clock.now += 0.05

    mover = asyncio.create_task(advance_later())
    with pytest.raises(TimeoutError):
        async with t:
            await asyncio.sleep(5)
    await mover
    assert t.expired()


async def test_deadline_reached_before_entry_fires_at_once() -> None:
    clock = FakeClock()
    with pytest.raises(TimeoutError):
        async with ClockTimeout(clock, clock.now - 1):
            await asyncio.sleep(5)


async def test_no_deadline_until_rescheduled_and_none_disarms() -> None:
    clock = FakeClock()
    async with ClockTimeout(clock, clock.now + 0.01) as t:
        t.reschedule(None)
        clock.now += 10
        await asyncio.sleep(0.05)
        assert t.when() is None and not t.expired()
    with pytest.raises(TimeoutError):
        async with ClockTimeout(clock, None) as t:
            await asyncio.sleep(0.02)
            t.reschedule(clock.now)
            await asyncio.sleep(5)


async def test_leaving_early_leaves_no_check_behind() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        clock = FakeClock()
        async with ClockTimeout(clock, clock.now + 0.02):
            pass
        clock.now += 1
        await asyncio.sleep(0.1)  # a check left armed would reschedule the exited timeout: an error in a callback
    finally:
        loop.set_exception_handler(previous)
    assert errors == []
