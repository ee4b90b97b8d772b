"""The committed call fixtures are what their sidecars say they are.

Everything downstream (replay, e2e transcription, VAD accuracy) trusts the sidecar timings, so these tests check
the audio itself: the RIFF header (parsed with ``struct``, independent of ``audio.wav``), the length, that speech
sits inside the utterance spans and not between them, that loss spans are digital silence, and the facts' enums.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.wav"))
RATE = 8000
WAVE_FORMAT_MULAW = 7
ENUMS = {
    "urgency": {"emergency", "urgent", "routine"},
    "issue_category": {"leak", "heating_boiler", "gas", "electrical", "lockout", "door_window_security",
                       "damp_mould", "blockage_drainage", "other"},
    "lead_segment": {"tenant", "landlord", "homeowner", "commercial", "other"},
}
FACT_KEYS = {"caller_name", "callback_number", "address", "postcode", "summary", *ENUMS}
UK_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$")
EDGE_MS = 300  # speech must start/end within this of a span edge (a soft fricative can hide in noise)
DRAMA_NUMBER = re.compile(r"^\+44(?:7700900|1134960)\d{3}$")  # Ofcom's ranges reserved for fiction (mobile, Leeds)


def ulaw_table() -> npt.NDArray[np.int32]:
    """G.711 μ-law expansion (same values as ``audioop.ulaw2lin(..., 2)``), kept here so the test does not
    depend on the audio package it is meant to feed."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84 << ((code >> 4) & 7)) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude)


def read_wav(path: Path) -> tuple[dict[str, int], bytes]:
    """Walk the RIFF chunks; return the fmt fields and the data bytes."""
    raw = path.read_bytes()
    riff, size, wave = struct.unpack_from("<4sI4s", raw, 0)
    assert (riff, wave) == (b"RIFF", b"WAVE")
    assert size == len(raw) - 8, "RIFF size must match the file (the header was finalised)"
    fmt: dict[str, int] = {}
    data = b""
    pos = 12
    while pos + 8 <= len(raw):
        cid, clen = struct.unpack_from("<4sI", raw, pos)
        body = raw[pos + 8:pos + 8 + clen]
        if cid == b"fmt ":
            tag, channels, rate, byte_rate, block, bits = struct.unpack_from("<HHIIHH", body)
            fmt = {"tag": tag, "channels": channels, "rate": rate, "byte_rate": byte_rate, "block": block,
                   "bits": bits}
        elif cid == b"data":
            data = body
        pos += 8 + clen + (clen & 1)
    return fmt, data


def load(name: str) -> tuple[dict[str, Any], npt.NDArray[np.int32]]:
    """Sidecar and decoded (n, 2) PCM of one fixture."""
    sidecar = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    _, data = read_wav(FIXTURES / f"{name}.wav")
    pcm = ulaw_table()[np.frombuffer(data, dtype=np.uint8)].reshape(-1, 2)
    return sidecar, pcm


def frame_rms(signal: npt.NDArray[np.int32], spans: list[tuple[int, int]]) -> npt.NDArray[np.float64]:
    """RMS of every whole 20 ms frame inside the given ms spans."""
    out = []
    for start, end in spans:
        seg = signal[start * 8:end * 8].astype(np.float64)
        frames = seg[: len(seg) // 160 * 160].reshape(-1, 160)
        out.append(np.sqrt((frames**2).mean(axis=1)))
    return np.concatenate(out) if out else np.zeros(0)


def gaps(utterances: list[dict[str, Any]], duration_ms: int, margin_ms: int = 40) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for u in utterances:
        if u["start_ms"] - margin_ms > cursor:
            spans.append((cursor, u["start_ms"] - margin_ms))
        cursor = u["end_ms"] + margin_ms
    if cursor < duration_ms:
        spans.append((cursor, duration_ms))
    return spans


def test_fixture_set_is_complete_and_small() -> None:
    sidecars = {p.stem for p in FIXTURES.glob("*.json")}
    assert set(NAMES) == sidecars, "every WAV needs a sidecar and every sidecar a WAV"
    kinds = [json.loads((FIXTURES / f"{n}.json").read_text())["kind"] for n in NAMES]
    assert kinds.count("tts") >= 6 and kinds.count("real") >= 2
    total_ms = sum(json.loads((FIXTURES / f"{n}.json").read_text())["duration_ms"] for n in NAMES)
    # e2e replays every fixture through a CPU-bound recogniser; 370 s since the three spliced real-voice calls
    # (names, postcodes and numbers for the accuracy measure: real voices read digits slowly) joined the set
    assert total_ms <= 370_000, "e2e replays every fixture through a CPU-bound recogniser"
    assert (FIXTURES / "README.md").exists()


@pytest.mark.parametrize("name", NAMES)
def test_header_is_stereo_mulaw_8k_and_length_matches(name: str) -> None:
    fmt, data = read_wav(FIXTURES / f"{name}.wav")
    assert fmt == {"tag": WAVE_FORMAT_MULAW, "channels": 2, "rate": RATE, "byte_rate": 2 * RATE, "block": 2,
                   "bits": 8}
    sidecar = json.loads((FIXTURES / f"{name}.json").read_text())
    assert (sidecar["sample_rate"], sidecar["encoding"], sidecar["channels"]) == (RATE, "mulaw",
                                                                                 ["inbound", "outbound"])
    assert abs(len(data) / 2 / RATE * 1000 - sidecar["duration_ms"]) <= 20


@pytest.mark.parametrize("name", NAMES)
def test_utterances_and_words_lie_inside_the_file_in_order(name: str) -> None:
    sidecar = json.loads((FIXTURES / f"{name}.json").read_text())
    for track in sidecar["tracks"].values():
        assert track["utterances"], "each track has speech"
        assert track["text"] == " ".join(u["text"] for u in track["utterances"])
        previous_end = 0
        for u in track["utterances"]:
            assert previous_end <= u["start_ms"] < u["end_ms"] <= sidecar["duration_ms"]
            previous_end = u["end_ms"]
            starts = [w["start_ms"] for w in u["words"]]
            assert starts == sorted(starts) and u["words"]
            assert u["start_ms"] <= starts[0] and u["words"][-1]["end_ms"] <= u["end_ms"]


@pytest.mark.parametrize("name", NAMES)
def test_speech_is_inside_utterance_spans_not_between_them(name: str) -> None:
    """Spans that missed speech would put loud frames in the gaps; spans that overran into a pause would have a
    quiet head or tail. Either shows up against the loudest frame of the line between utterances."""
    sidecar, pcm = load(name)
    for channel, track in enumerate(("inbound", "outbound")):
        utterances = sidecar["tracks"][track]["utterances"]
        signal = pcm[:, channel]
        quiet = frame_rms(signal, gaps(utterances, sidecar["duration_ms"]))
        loudest_gap = float(quiet.max()) if quiet.size else 0.0
        gap_power = float((quiet**2).mean()) if quiet.size else 0.0
        speech = frame_rms(signal, [(u["start_ms"], u["end_ms"]) for u in utterances])
        assert loudest_gap < 0.5 * np.percentile(speech, 90), f"{track}: speech outside the utterance spans"
        for u in utterances:
            frames = frame_rms(signal, [(u["start_ms"], u["end_ms"])])
            assert (frames**2).mean() > 8 * gap_power + 100**2, (track, u["text"])  # ≥ 9 dB above the line
            head = frame_rms(signal, [(u["start_ms"], min(u["start_ms"] + EDGE_MS, u["end_ms"]))])
            tail = frame_rms(signal, [(max(u["end_ms"] - EDGE_MS, u["start_ms"]), u["end_ms"])])
            edge_floor = 1.5 * loudest_gap + 100
            assert head.max() > edge_floor and tail.max() > edge_floor, (track, u["text"])


@pytest.mark.parametrize("name", NAMES)
def test_facts_use_the_allowed_values(name: str) -> None:
    sidecar = json.loads((FIXTURES / f"{name}.json").read_text())
    facts = sidecar["facts"]
    if sidecar["kind"] == "real" and facts is None:
        return
    assert set(facts) == FACT_KEYS
    nullable = sidecar["kind"] == "real"
    for key, allowed in ENUMS.items():
        assert facts[key] in allowed or (nullable and facts[key] is None), key
    assert facts["postcode"] is None or UK_POSTCODE.match(facts["postcode"])
    assert facts["callback_number"] is None or DRAMA_NUMBER.match(facts["callback_number"])
    if sidecar["kind"] == "tts":
        assert facts["caller_name"] and facts["address"] and facts["postcode"]


def test_tts_calls_cover_every_urgency_and_several_issues() -> None:
    facts = [json.loads((FIXTURES / f"{n}.json").read_text())["facts"] for n in NAMES if n.startswith("tts")]
    assert {f["urgency"] for f in facts} == ENUMS["urgency"]
    assert len({f["issue_category"] for f in facts}) >= 6
    assert any(f["callback_number"] is None for f in facts) and any(f["callback_number"] for f in facts)


def test_loss_spans_are_silent_and_the_rest_is_not() -> None:
    lossy = [n for n in NAMES if json.loads((FIXTURES / f"{n}.json").read_text())["impairments"]["loss_spans_ms"]]
    assert len(lossy) == 1
    sidecar, pcm = load(lossy[0])
    spans = sidecar["impairments"]["loss_spans_ms"]
    lost = np.zeros(len(pcm), dtype=bool)
    for start, end in spans:
        assert start % 20 == 0 and end % 20 == 0 and end > start  # whole 20 ms frames
        lost[start * 8:end * 8] = True
    assert not pcm[lost].any(), "every sample in a loss span decodes to zero on both channels"
    assert 0.02 <= lost.mean() <= 0.05
    assert len(spans) >= 5 and max(end - start for start, end in spans) > 20, "losses come in bursts"
    # The line carries noise elsewhere, so zero runs are the loss and not ordinary silence.
    inbound = pcm[~lost, 0]
    assert np.count_nonzero(inbound == 0) < 0.2 * inbound.size


@pytest.mark.parametrize("name", NAMES)
def test_noisy_fixtures_have_noise_on_the_caller_line(name: str) -> None:
    sidecar, pcm = load(name)
    noise = sidecar["impairments"]["noise"]
    quiet = frame_rms(pcm[:, 0], gaps(sidecar["tracks"]["inbound"]["utterances"], sidecar["duration_ms"]))
    if noise is None:
        assert np.median(quiet) == 0, "a clean line is digitally silent between utterances"
    else:
        assert re.match(r"^(pink|brown|white)noise \d+ dB SNR", noise)
        assert np.median(quiet) > 10
