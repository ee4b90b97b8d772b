"""Supervisor: a crashed background task is restarted with backoff, one that keeps crashing is dead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from switchboard.supervisor import RestartPolicy, Supervisor, TaskState

FAST = RestartPolicy(min_backoff_s=0.01, max_backoff_s=0.04, max_crashes=3, window_s=60)


class Flaky:
    """Crashes ``crashes`` times, then runs until stopped."""

    def __init__(self, crashes: int) -> None:
        self.crashes, self.runs = crashes, 0
        self.stop, self.running = asyncio.Event(), asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise OSError(28, "No space left on device")
        self.running.set()
        await self.stop.wait()


async def wait_for(condition: Callable[[], bool], within_s: float = 10) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 -- polling the supervisor's state is the point
            await asyncio.sleep(0.005)


async def test_a_crashed_task_is_restarted_and_the_instance_stays_healthy() -> None:
    flaky = Flaky(crashes=2)
    async with Supervisor(FAST) as sup:
        sup.start("segment-writer", flaky.run)
        await asyncio.wait_for(flaky.running.wait(), 10)
        (status,) = sup.statuses()
        assert status.state is TaskState.RUNNING and status.crashes == 2
        assert status.last_error == "OSError: [Errno 28] No space left on device"
        assert sup.dead() == []
        flaky.stop.set()
        await wait_for(lambda: sup.statuses()[0].state is TaskState.STOPPED)
    assert flaky.runs == 3


async def test_a_task_that_keeps_crashing_is_dead_and_named() -> None:
    flaky = Flaky(crashes=100)
    async with Supervisor(FAST) as sup:
        sup.start("job-worker", flaky.run)
        sup.start("archive-spool", Flaky(0).run, essential=True)
        await wait_for(lambda: sup.dead() != [])
        (dead,) = sup.dead()
        assert dead.name == "job-worker" and dead.state is TaskState.DEAD and dead.crashes == 3
        await asyncio.sleep(0.1)
        assert flaky.runs == 3  # given up: not run again


async def test_a_task_that_may_not_restart_is_dead_at_its_first_crash() -> None:
    flaky = Flaky(crashes=1)
    async with Supervisor(FAST) as sup:
        sup.start("once", flaky.run, restart=False)
        await wait_for(lambda: sup.dead() != [])
    assert flaky.runs == 1


async def test_an_inessential_dead_task_does_not_make_the_instance_unhealthy() -> None:
    async with Supervisor(FAST) as sup:
        sup.start("nice-to-have", Flaky(100).run, essential=False)
        await wait_for(lambda: sup.statuses()[0].state is TaskState.DEAD)
        assert sup.dead() == []


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(min_backoff_s=1, max_backoff_s=5)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


async def test_leaving_cancels_tasks_waiting_out_a_backoff_and_propagates_cancellation() -> None:
    slow = RestartPolicy(min_backoff_s=3600, max_backoff_s=3600, max_crashes=10)
    flaky = Flaky(crashes=1)
    async with asyncio.timeout(5):
        async with Supervisor(slow) as sup:
            sup.start("writer", flaky.run)
            await wait_for(lambda: sup.statuses()[0].state is TaskState.RESTARTING)
    outer = asyncio.create_task(_supervise_forever())
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer


async def _supervise_forever() -> None:
    async with Supervisor(FAST) as sup:
        sup.start("forever", Flaky(0).run)
        await asyncio.Event().wait()


async def test_mark_dead_records_a_failure_outside_the_tasks() -> None:
    async with Supervisor(FAST) as sup:
        sup.mark_dead("lifespan", RuntimeError("boom"))
        assert [(s.name, s.last_error) for s in sup.dead()] == [("lifespan", "RuntimeError: boom")]
