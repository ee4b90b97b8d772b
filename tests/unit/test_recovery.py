"""The instance id that ties a live call to the instance holding its recording."""

from __future__ import annotations

from pathlib import Path

from switchboard.recovery import instance_id


def test_configured_id_wins_and_nothing_is_written(tmp_path: Path) -> None:
    assert instance_id(tmp_path, "pod-7") == "pod-7"
    assert not (tmp_path / "instance-id").exists()


def test_made_once_and_kept_in_the_data_dir(tmp_path: Path) -> None:
    made = instance_id(tmp_path / "data")
    assert made.startswith("sb-") and instance_id(tmp_path / "data") == made
    assert (tmp_path / "data" / "instance-id").read_text().strip() == made
    assert instance_id(tmp_path / "other") != made  # another data dir is another instance
