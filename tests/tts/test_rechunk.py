"""Re-cutting provider audio into 20 ms-multiple chunks and placing character timings (sans-I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.tts.base import AudioChunk, SpokenText
from switchboard.tts.rechunk import Rechunker, spread_chars


def _audio(n: int, start: int = 0) -> bytes:
    return bytes((start + i) % 251 for i in range(n))


def test_pieces_of_any_size_come_out_as_whole_frames_in_order() -> None:
    chunker = Rechunker(turn=3, provider="p", max_frames=2)
    data = _audio(1000)
    out = chunker.push(data[:70]) + chunker.push(data[70:401]) + chunker.push(data[401:])
    assert [len(c.audio) for c in out] == [320, 320, 320]  # 960 of 1000 bytes: the 40-byte tail waits
    last = chunker.finish()
    assert [len(c.audio) for c in last] == [160]
    joined = b"".join(c.audio for c in out + last)
    assert joined[:1000] == data and joined[1000:] == b"\xff" * 120  # tail padded with μ-law silence
    assert [c.offset_ms for c in out + last] == [0, 40, 80, 120]
    assert all(c.turn == 3 and c.provider == "p" for c in out + last)


def test_a_frame_is_emitted_as_soon_as_it_is_complete() -> None:
    chunker = Rechunker(1, "p")
    assert chunker.push(_audio(159)) == []
    [chunk] = chunker.push(_audio(1))
    assert len(chunk.audio) == 160


def test_characters_go_with_the_chunk_their_sound_starts_in() -> None:
    chunker = Rechunker(1, "p", max_frames=1)
    # 60 ms piece: H at 0, i at 25 ms, "!" at 45 ms (relative to the piece)
    out = chunker.push(_audio(480), [("H", 0), ("i", 25), ("!", 45)])
    assert [(c.text, c.char_ms) for c in out] == [("H", (0,)), ("i", (5,)), ("!", (5,))]
    # timings of the next piece are relative to it: it starts at 60 ms
    out = chunker.push(_audio(160), [(" ", 10)])
    assert [(c.offset_ms, c.text, c.char_ms) for c in out] == [(60, " ", (10,))]


def test_characters_beyond_the_audio_wait_and_ride_the_last_frame() -> None:
    chunker = Rechunker(1, "p")
    out = chunker.push(_audio(160), [("a", 0), ("b", 500)])  # "b" placed 480 ms past the audio
    assert [c.text for c in out] == ["a"]
    last = chunker.finish()
    assert [(c.text, c.audio) for c in last] == [("b", b"\xff" * 160)]
    assert last[0].char_ms == (19,)  # clamped into the frame: heard once the frame has played


def test_timings_that_go_backwards_are_kept_in_order() -> None:
    chunker = Rechunker(1, "p", max_frames=1)
    out = chunker.push(_audio(320), [("a", 30), ("b", 10)])
    assert [(c.text, c.char_ms) for c in out] == [("", ()), ("ab", (10, 10))]


def test_finish_twice_and_push_after_finish() -> None:
    chunker = Rechunker(1, "p")
    chunker.push(_audio(10))
    assert len(chunker.finish()) == 1
    assert chunker.finish() == []
    with pytest.raises(RuntimeError):
        chunker.push(b"x")


@given(pieces=st.lists(st.integers(0, 900), max_size=12), max_frames=st.integers(1, 8),
       text=st.text(min_size=0, max_size=40))
def test_no_audio_or_character_is_lost(pieces: list[int], max_frames: int, text: str) -> None:
    chunker = Rechunker(1, "p", max_frames)
    data = _audio(sum(pieces))
    out: list[AudioChunk] = []
    at = 0
    chars = spread_chars(text, 10 * len(pieces) + 5)
    for i, size in enumerate(pieces):
        out += chunker.push(data[at:at + size], chars if i == 0 else [])
        at += size
    out += chunker.finish() if pieces else chunker.push(b"", chars) + chunker.finish()
    joined = b"".join(c.audio for c in out)
    assert joined[:len(data)] == data and set(joined[len(data):]) <= {0xFF}
    assert all(0 < len(c.audio) <= 160 * max_frames and len(c.audio) % 160 == 0 for c in out)
    assert "".join(c.text for c in out) == text
    assert all(0 <= ms < c.duration_ms for c in out for ms in c.char_ms)
    spoken = SpokenText()
    for c in out:
        spoken.add(c)
    assert spoken.text == text
    ends = [c.chars_end for c in out]
    assert ends == sorted(ends) and (not out or ends[-1] == len(text))


def test_several_characters_may_share_a_start() -> None:
    chunker = Rechunker(1, "p", max_frames=1)
    out = chunker.push(_audio(320), [(" a", 0), ("bc", 25)])
    assert [(c.text, c.char_ms, c.chars_end) for c in out] == [(" a", (0, 0), 2), ("bc", (5, 5), 4)]


def test_level_of_silence_and_of_a_loud_chunk() -> None:
    assert AudioChunk(1, b"\xff" * 160, 0).level_db == pytest.approx(-96.3, abs=0.1)
    loud = AudioChunk(1, bytes([0x80, 0x00]) * 80, 0)  # ±32124: full-scale square wave
    assert -0.5 < loud.level_db < 0


def test_spoken_text_is_what_was_played() -> None:
    spoken = SpokenText()
    spoken.add(AudioChunk(1, b"\xff" * 800, 0, "Hello ", (0, 20, 40, 60, 80, 95), "p"))
    spoken.add(AudioChunk(1, b"\xff" * 800, 100, "there", (0, 20, 40, 60, 80), "p"))
    assert spoken.text_until(0) == ""
    assert spoken.text_until(50) == "Hel"
    assert spoken.text_until(100) == "Hello "
    assert spoken.text_until(145) == "Hello the"  # "e" starts at 140 ms
    assert spoken.text_until(10_000) == "Hello there"


def test_spread_chars() -> None:
    assert spread_chars("", 100) == []
    assert spread_chars("abcd", 100) == [("a", 0), ("b", 25), ("c", 50), ("d", 75)]
