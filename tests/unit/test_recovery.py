"""The instance id that ties a live call to the instance holding its recording."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from switchboard.recovery import RECOVERED_REASON, instance_id, recover_orphaned_calls
from switchboard.store.base import CallRecord
from switchboard.store.errors import StoreQueryError


def test_configured_id_wins_and_nothing_is_written(tmp_path: Path) -> None:
    assert instance_id(tmp_path, "pod-7") == "pod-7"
    assert not (tmp_path / "instance-id").exists()


def test_made_once_and_kept_in_the_data_dir(tmp_path: Path) -> None:
    made = instance_id(tmp_path / "data")
    assert made.startswith("sb-") and instance_id(tmp_path / "data") == made
    assert (tmp_path / "data" / "instance-id").read_text().strip() == made
    assert instance_id(tmp_path / "other") != made  # another data dir is another instance


class OneRowFails:
    """A store whose first orphaned call cannot be written (the rest of the Store is not needed here)."""

    def __init__(self, sids: list[str]) -> None:
        self.sids, self.ended = sids, []

    async def orphaned_calls(self, instance_id: str) -> list[CallRecord]:
        at = datetime(2026, 11, 21, tzinfo=UTC)
        unknown = dict.fromkeys(("account_sid", "from_number", "to_number", "direction", "mode", "status",
                                 "status_seq", "answered_at", "ended_at", "duration_s", "media_ms", "stream_sid",
                                 "end_reason", "recording_key", "recording_status", "stats"))
        return [CallRecord(id=i, call_sid=sid, created_at=at, started_at=at, providers=(), **unknown)
                for i, sid in enumerate(self.sids)]

    async def get_segments(self, call_sid: str) -> list[object]:
        return []

    async def call_streams(self, call_sid: str) -> list[object]:
        return []

    async def end_call(self, call_sid: str, **fields: object) -> None:
        if call_sid == self.sids[0]:
            raise StoreQueryError("end_call", "value too long")
        self.ended.append((call_sid, fields["reason"], fields["recording_key"]))


async def test_a_call_that_cannot_be_finished_does_not_stop_the_others(tmp_path: Path) -> None:
    store = OneRowFails(["CA1", "CA2"])
    finished = await recover_orphaned_calls(store, "sb-1", tmp_path, None)  # type: ignore[arg-type]
    assert finished == ["CA2"]
    assert store.ended == [("CA2", RECOVERED_REASON, None)]  # no recording on disk: ended without one
