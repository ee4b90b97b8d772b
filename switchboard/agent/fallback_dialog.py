"""The model first, the offline intake script when it cannot answer: no key, an error (auth, 5xx after the SDK's
retries, a dropped stream), or no first words within the profile's ``first_token_timeout_s``.

After a failure the rest of the call stays offline: the script then leads a consistent conversation, and the
caller does not wait out the model's deadline again on every turn. If the model had already said part of its
reply when it failed, the script's reply follows it, so the turn still ends with a question. Why each switch
happened is kept in :attr:`DialogStats.fallbacks`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from switchboard.agent.dialog import Dialog, DialogContext, DialogError, DialogOutput, DialogStats, Say


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
                async for output in self._until_words(stream):
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

    async def _until_words(self, stream: AsyncGenerator[DialogOutput, None]) -> AsyncGenerator[DialogOutput, None]:
        """The primary's outputs, with a deadline on its first words (decisions before them pass at once, so an
        alert is never held back; the deadline is not running while the consumer has control)."""
        deadline = asyncio.get_running_loop().time() + self._first_token_s
        said = False
        while True:
            if said:
                output = await anext(stream, None)
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        output = await anext(stream, None)
                except TimeoutError as exc:
                    raise DialogError("slow_first_token", f"no words within {self._first_token_s} s") from exc
            if output is None:
                return
            said = said or isinstance(output, Say)
            yield output


__all__ = ["FallbackDialog"]
