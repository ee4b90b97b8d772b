"""status_applies: the precedence rules for out-of-order Twilio status callbacks (no database)."""

import pytest

from switchboard.store import Segment, status_applies


@pytest.mark.parametrize(
    ("stored", "stored_seq", "new", "seq", "expected"),
    [
        (None, None, "ringing", None, True),  # nothing stored: anything applies
        (None, None, "ringing", 1, True),
        ("ringing", 1, "in-progress", 2, True),  # in order
        ("in-progress", 2, "ringing", 1, False),  # late, lower sequence
        ("ringing", 1, "ringing", 1, False),  # retried duplicate
        ("completed", 3, "in-progress", 2, False),  # terminal never regresses...
        ("completed", 3, "in-progress", 9, False),  # ...not even with a higher sequence
        ("completed", None, "ringing", None, False),
        ("in-progress", 5, "completed", 3, True),  # terminal beats non-terminal whatever the numbers
        ("ringing", 2, "busy", None, True),
        ("completed", 3, "completed", 3, False),  # duplicate terminal
        ("completed", 3, "failed", 4, True),  # terminal after terminal follows the sequence
        ("ringing", None, "in-progress", None, True),  # unsequenced: last writer wins while none sequenced
        ("ringing", 1, "in-progress", None, False),  # unsequenced never beats a sequenced one
        ("ringing", None, "in-progress", 0, True),
    ],
)
def test_status_precedence(
    stored: str | None, stored_seq: int | None, new: str, seq: int | None, expected: bool
) -> None:
    assert status_applies(stored, stored_seq, new, seq) is expected


def test_segment_rejects_unknown_track() -> None:
    with pytest.raises(ValueError, match="track"):
        Segment("CA1", "both", 0, 0, 10, "hi", "local")
