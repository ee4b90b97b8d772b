"""Stopping a task that this object owns, without swallowing a cancellation of the caller itself."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it to finish. Its own ``CancelledError`` is the expected outcome and is not
    raised; if the task awaiting this is itself being cancelled, that cancellation propagates (a plain
    ``suppress(CancelledError)`` would eat it). Any other error of ``task`` propagates."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
