"""Archive tests: the SeaweedFS plugin (until tests/conftest.py registers it) and an in-memory fake archive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from switchboard.archive import ArchivedObject, ArchiveError


class FakeArchive:
    """Records uploads in memory; ``script`` decides per call: None = store, an ArchiveError = raise it, an
    ``asyncio.Event`` = wait for it first (an upload in flight)."""

    name = "fake"

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.script: list[ArchiveError | asyncio.Event | None] = []
        self.on_call: Callable[[str], None] | None = None

    async def put_file(
        self, key: str, path: Path, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        self.calls.append(key)
        if self.on_call is not None:
            self.on_call(key)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, asyncio.Event):
            await step.wait()
        elif step is not None:
            raise step
        data = await asyncio.to_thread(path.read_bytes)
        self.stored[key] = data
        return ArchivedObject(key, len(data), content_type, f"fake://{key}")

    async def put_bytes(
        self, key: str, data: bytes, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        self.stored[key] = data
        return ArchivedObject(key, len(data), content_type, f"fake://{key}")

    async def exists(self, key: str) -> bool:
        return key in self.stored

    async def check(self) -> None:
        return None

    def close(self) -> None:
        return None


@pytest.fixture
def fake_archive() -> FakeArchive:
    return FakeArchive()
