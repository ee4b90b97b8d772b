"""The model first, the offline intake script when it cannot answer: no key, an error (auth, 5xx after the SDK's
retries, a dropped stream), or no first output within the profile's ``first_token_timeout_s``.

After a failure the rest of the call stays offline: the script then leads a consistent conversation, and the
caller does not wait out the model's deadline again on every turn. If the model had already said part of its
reply when it failed, the script's reply follows it, so the turn still ends with a question. Why each switch
happened is kept in :attr:`DialogStats.fallbacks`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from switchboard.agent.dialog import Dialog, DialogContext, DialogError, DialogOutput, DialogStats


class FallbackDialog:
    """:class:`~.dialog.Dialog` that never fails (the offline dialog never does)."""

    name = "fallback"

    def __init__(self, primary: Dialog | None, offline: Dialog, *, first_token_timeout_s: float,
                 stats: DialogStats | None = None) -> None:
        self._primary, self._offline = primary, offline
        self._first_token_s = first_token_timeout_s
        self.stats = stats if stats is not None else DialogStats()
        self.failed_reason: str | None = None if primary is not None else "no model configured"

    @property
    def using(self) -> str:
        return self._offline.name if self._primary is None or self.failed_reason else self._primary.name

    async def reply(self, context: DialogContext) -> AsyncGenerator[DialogOutput, None]:
        if self._primary is not None and self.failed_reason is None:
            stream = self._primary.reply(context)
            try:
                try:
                    async with asyncio.timeout(self._first_token_s):
                        first = await anext(stream, None)
                except TimeoutError as exc:
                    raise DialogError("slow_first_token", f"no output within {self._first_token_s} s") from exc
                if first is not None:
                    yield first
                    async for output in stream:
                        yield output
                return
            except DialogError as exc:
                self.failed_reason = exc.reason
                self.stats.fallbacks.append(exc.reason)
            finally:
                await stream.aclose()
        self.stats.offline_replies += 1
        async for output in self._offline.reply(context):
            yield output


__all__ = ["FallbackDialog"]
