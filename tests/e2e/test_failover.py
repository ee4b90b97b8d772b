"""Lossless failover end to end: the real server, WisprFlow → Deepgram → local, faults injected into emulators.

Both emulators share one recogniser, :class:`FixtureOracle`: it finds the audio it is given in the fixtures (the
server's 16 kHz audio is bit-identical to an offline decode and resample of the fixture) and answers with the
sidecar's words whose midpoint lies inside it. Words then depend only on *which audio* reached a provider, not on
how it was cut, so a transcript that went through a failover must equal the no-fault one exactly; a lost or
repeated stretch of audio shows up as a missing or repeated word. The server's local leg is the real
:class:`LocalTranscriber` (Silero endpointing, worker pool) with the oracle as its engine (:class:`OracleEngine`),
so a call that falls through both clouds is checked just as exactly. Audio the oracle cannot place (the Beckett
voice, on the caller track of ``real_beckett_short``) goes to Moonshine, so that call gets real words and is
compared with a WER tolerance instead.

The matrix: every fault kind on every fixture, on the primary alone and on both clouds. When each strikes:

============  ==========================================  ===========================================
kind          WisprFlow (primary)                          Deepgram (second), when both fail
============  ==========================================  ===========================================
auth          at connect (HTTP 401 on the upgrade)         at connect (HTTP 401)
close         mid-utterance (after its first packet)       mid-stream (after 2 s of audio)
stall         after commit (final 30 s late)               mid-stream (stops answering after 2 s)
no_final      after commit (never sends the final)         throughout (interim results only)   
malformed     after commit (garbage instead of the final)  mid-stream (garbage after 2 s)
============  ==========================================  ===========================================

Scenarios run one after another (faults are armed per emulator, not per call); the calls of a scenario run
concurrently at ``SPEED`` × real time. Non-auth WisprFlow faults are armed once every call's streams are open,
so each track's first utterance still goes to WisprFlow and a later one fails (mid-call, after finals); Deepgram
faults are armed up front (its sockets open only on failover) and strike after ``after_ms`` of the audio it got.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from audio import mulaw
from audio.detectors import frames
from audio.endpoint import EndpointConfig, Endpointer
from audio.resample import StreamResampler
from audio.wav import WavReader, WavWriter, read_tracks
from switchboard.config import Secret
from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import CallResult, replay_call
from switchboard.transcribe.base import Pcm16
from switchboard.transcribe.moonshine import MoonshineEngine, RecognizerPool
from switchboard.transcribe.vad import SileroDetector
from switchboard.transcribe.wer import word_errors
from tests.e2e.conftest import Server, fresh_database, running_server
from tests.e2e.test_replay import interleave, sidecar
from tests.emulators import deepgram_server as dg
from tests.emulators import wisprflow_server as wf
from tests.emulators.recognizer import EmulatorRecognizer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ALL = sorted(FIXTURES.glob("*.wav"))
BECKETT = FIXTURES / "real_beckett_short.wav"  # caller track: real words (Moonshine)
REAL = [BECKETT, FIXTURES / "real_ivr_callback_postcode.wav", FIXTURES / "real_librivox_reader.wav"]
SPEED = 4.0
"""Ten calls at once: forty call-seconds per second through the server, both emulators and the oracle, all on one
event loop, with coverage tracing ``audio/`` and the rest of the suite's servers on the same two cores. At 6× the
loop lagged past WisprFlow's own 3 s auth timeout (a real-time limit inside the client) in the full suite."""
BASELINE_SPEED = 2.0
"""The reference pass must not fail over at all: every other scenario is compared with it."""
FINAL_LATENCY_S = 0.6
"""How long the oracle takes over a final, as a cloud recogniser does. Without it located audio is answered in
~1 ms while Moonshine takes 0.5–1.4 s over the Beckett stretches (measured on two loaded cores), so WisprFlow's
adaptive final timeout (2.5 × p99 of this latency, 0.5 s floor) learnt ~0.5 s and the baseline failed over on a
false "no final"; a provider's latency does not depend on the speaker by three orders of magnitude."""
WER_TOLERANCE = 0.15
"""Between the faulted and the no-fault transcript of the Moonshine call, both tracks pooled."""
SCENARIO_LIMIT_S = 60.0
"""No scenario may take longer (its longest call lasts 37 s / SPEED; detection adds at most 12 s)."""
KINDS = ("close", "stall", "no_final", "malformed")
WISPR_FAULT = {"auth": wf.Fault(wf.FaultKind.REJECT_HTTP),
               "close": wf.Fault(wf.FaultKind.CLOSE_MID_STREAM, after_packets=1, code=1011),
               "stall": wf.Fault(wf.FaultKind.SLOW_FINAL, delay_s=30.0),
               "no_final": wf.Fault(wf.FaultKind.NO_FINAL),
               "malformed": wf.Fault(wf.FaultKind.MALFORMED)}
DEEPGRAM_FAULT = {"auth": dg.Fault(dg.FaultKind.REJECT_AUTH),
                  "close": dg.Fault(dg.FaultKind.CLOSE, after_ms=2000, code=1011, reason="NET-0000"),
                  "stall": dg.Fault(dg.FaultKind.STALL, after_ms=2000),
                  "no_final": dg.Fault(dg.FaultKind.NO_FINAL),
                  "malformed": dg.Fault(dg.FaultKind.MALFORMED, after_ms=2000)}


# -- the oracle recogniser --------------------------------------------------------------------------------------

class _Ref:
    """One fixture track at 16 kHz, its words, and an index of positions by the value of two samples."""

    def __init__(self, pcm: Pcm16, words: list[tuple[float, str]]) -> None:
        self.pcm, self.words = pcm, words  # words: (midpoint ms, word)
        keys = _pair_keys(pcm)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]

    def positions(self, key: np.int64) -> np.ndarray:
        lo, hi = np.searchsorted(self._sorted, key, "left"), np.searchsorted(self._sorted, key, "right")
        return self._order[lo:hi]


def _pair_keys(pcm: Pcm16) -> np.ndarray:
    x = pcm.astype(np.int64)
    return x[:-1] * 65_536 + x[1:]


def _matching_span(pcm: Pcm16, at: int, ref: Pcm16, hit: int) -> tuple[int, int]:
    """Reference sample range around ``ref[hit] == pcm[at]`` over which both agree sample for sample."""
    after = min(len(pcm) - at, len(ref) - hit)
    differ = np.flatnonzero(pcm[at : at + after] != ref[hit : hit + after])
    end = hit + (int(differ[0]) if len(differ) else after)
    before = min(at, hit)
    differ = np.flatnonzero(pcm[at - before : at] != ref[hit - before : hit])
    start = hit - before + (int(differ[-1]) + 1 if len(differ) else 0)
    return start, end


def midpoints(path: Path, track: str) -> list[tuple[float, str]]:
    """(midpoint ms, word) of every word of a fixture track, from its sidecar."""
    return [((w["start_ms"] + w["end_ms"]) / 2, w["w"]) for u in sidecar(path)["tracks"][track]["utterances"]
            for w in u["words"]]


def pcm16k(ulaw: bytes) -> Pcm16:
    """A track as the server hands it to recognisers (the resampler's output does not depend on chunking)."""
    resampler = StreamResampler(8000, 16_000)
    return np.concatenate([resampler.push(mulaw.decode(ulaw)), resampler.flush()])


class FixtureOracle:
    """A recogniser that locates its audio in the fixtures; audio it cannot place goes to ``fallback``."""

    ANCHOR = 64  # samples that must match exactly where the audio first gets loud

    def __init__(self, paths: Sequence[Path], fallback: EmulatorRecognizer) -> None:
        self._fallback = fallback
        self._refs: list[_Ref] = []
        for path in paths:
            for name, ulaw in zip(("inbound", "outbound"), read_tracks(path), strict=True):
                self._refs.append(_Ref(pcm16k(ulaw), midpoints(path, name)))
        self.located = self.fallbacks = 0

    def words(self, pcm: Pcm16) -> str | None:
        """The words of the fixture stretch ``pcm`` is, or None if it is no fixture's audio.

        Anchored on the first loud sample, the match must run sample for sample past the last loud one: the
        same prompt recording in two fixtures agrees for a few hundred samples only, and the quiet edges may be
        other audio (or WisprFlow's zero padding), so only the loud stretch decides."""
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= 256)
        if not len(loud) or loud[0] + self.ANCHOR > len(pcm):
            return "" if len(pcm) else None
        at, last = int(loud[0]), int(loud[-1])
        anchor = pcm[at : at + self.ANCHOR]
        for ref in self._refs:
            for hit in ref.positions(_pair_keys(anchor[:2])[0]):
                lo, hi = _matching_span(pcm, at, ref.pcm, int(hit))
                if at + (hi - int(hit)) > last:
                    return " ".join(w for mid, w in ref.words if lo / 16 <= mid < hi / 16)
        return None

    async def recognize(self, pcm16k: Pcm16) -> str:
        text = self.words(pcm16k)
        if text is None:
            self.fallbacks += 1
            return await self._fallback.recognize(pcm16k)
        self.located += 1
        await asyncio.sleep(FINAL_LATENCY_S)
        return text

    async def partial(self, pcm16k: Pcm16) -> str:
        return self.words(pcm16k) or ""


# -- servers and scenarios --------------------------------------------------------------------------------------

class OracleEngine:
    """The server's local engine in these tests: the oracle's words, Moonshine's for audio it cannot place."""

    def __init__(self, oracle: FixtureOracle) -> None:
        self._oracle = oracle
        self._moonshine: MoonshineEngine | None = None  # loaded on first use, by the worker thread that needs it

    def transcribe(self, samples: np.ndarray) -> str:
        pcm = np.round(samples * 32768.0).astype(np.int16)  # exact: the stream made them as int16 / 32768
        text = self._oracle.words(pcm)
        if text is not None:
            return text
        if self._moonshine is None:
            self._moonshine = MoonshineEngine()
        return self._moonshine.transcribe(samples)

    def self_test(self) -> str:
        return ""

    def close(self) -> None:
        if self._moonshine is not None:
            self._moonshine.close()


@dataclass
class Emulators:
    wispr: wf.WisprFlowEmulator
    deepgram: dg.DeepgramEmulator
    oracle: FixtureOracle
    local: RecognizerPool
    """The server's local recogniser pool (:class:`OracleEngine`)."""

    def clear(self) -> None:
        self.wispr.clear_faults()
        self.deepgram.clear_faults()


@pytest.fixture(scope="session")
async def emulators() -> AsyncIterator[Emulators]:
    pool = RecognizerPool(workers=1)
    oracle = FixtureOracle([p for p in ALL if p != BECKETT], EmulatorRecognizer(pool))
    local = RecognizerPool(workers=1, engine_factory=lambda: OracleEngine(oracle))
    try:
        await pool.wait_ready()  # the model loads before the first call, not inside a commit → final window
        async with wf.WisprFlowEmulator(recognizer=oracle) as wispr, \
                dg.DeepgramEmulator(recognizer=oracle) as deepgram:
            yield Emulators(wispr, deepgram, oracle, local)
    finally:
        await local.aclose()
        await pool.aclose()


@asynccontextmanager
async def chain_server(pg_dsn: str, data_dir: Path, emu: Emulators, **overrides: Any) -> AsyncIterator[Server]:
    """The real server with both cloud keys, pointed at the emulators; the local leg (oracle engine) is the last
    resort."""
    dsn = await fresh_database(pg_dsn, "failover")
    options: dict[str, Any] = {"wisprflow_api_key": Secret("test-key"), "wispr_ws_url": emu.wispr.url,
                               "deepgram_api_key": Secret("test-key"), "deepgram_url": emu.deepgram.url,
                               "stt_workers": 1, **overrides}
    async with running_server(dsn, data_dir, recognizers=emu.local, **options) as server:
        yield server


@dataclass
class Outcome:
    results: dict[Path, CallResult]
    wall_s: float
    data_dir: Path

    def switches(self, path: Path) -> list[dict[str, Any]]:
        return [e for e in self.results[path].events if e["type"] == "provider.switched"]


async def run_calls(server: Server, paths: Sequence[Path], *, when_open: Callable[[], None] | None = None,
                    speed: float = SPEED) -> Outcome:
    """Replay ``paths`` as concurrent calls; ``when_open`` runs once every call has its streams open, before any
    call sends audio (media is gated until then), so a fault armed there meets every call at the same point."""
    opened: set[str] = set()
    gate = asyncio.Event()

    def on_event(result: CallResult, event: dict[str, Any]) -> None:
        if event["type"] == "call.started" and result.call_sid not in opened:
            opened.add(result.call_sid)
            if len(opened) == len(paths):
                if when_open is not None:
                    when_open()
                gate.set()

    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client, asyncio.timeout(SCENARIO_LIMIT_S):
        results = await asyncio.gather(*(replay_call(server.target, build_schedule(p), speed=speed, client=client,
                                                     on_event=on_event, end_timeout_s=SCENARIO_LIMIT_S,
                                                     media_gate=gate)
                                         for p in paths))
    return Outcome(dict(zip(paths, results, strict=True)), time.monotonic() - t0, server.settings.data_dir)


async def fault_scenario(server: Server, emu: Emulators, kind: str, where: str, paths: Sequence[Path]) -> Outcome:
    emu.clear()
    if where == "both":
        emu.deepgram.inject(DEEPGRAM_FAULT[kind], connections=None)
    if kind == "auth":
        emu.wispr.inject(WISPR_FAULT[kind], connections=None)
    arm = None if kind == "auth" else (lambda: emu.wispr.inject(WISPR_FAULT[kind], connections=None))
    try:
        return await run_calls(server, paths, when_open=arm)
    finally:
        emu.clear()


@dataclass
class Matrix:
    outcomes: dict[str, Outcome]
    readyz: dict[str, Any]
    metrics: str
    wispr_connections_after_auth: int
    """WisprFlow connections made by the call that followed the auth refusals (its breaker was open)."""
    leftover_tasks: list[str]
    """Provider tasks still alive once the server had shut down."""


def transcriber_tasks() -> list[str]:
    """Tasks running transcription code (other session fixtures share the loop, so only these are looked at)."""
    def where(task: asyncio.Task[Any]) -> str:
        code = getattr(task.get_coro(), "cr_code", None)
        return code.co_filename if code is not None else ""

    return sorted(f"{t.get_name()} ({where(t)})" for t in asyncio.all_tasks()
                  if "switchboard/transcribe/" in where(t) and not t.done())


@pytest.fixture(scope="session")
async def matrix(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory, emulators: Emulators) -> Matrix:
    """Every scenario on one server, in an order that keeps breakers out of the way until the auth faults:
    non-auth failures are retryable and the threshold is set out of reach; an auth refusal opens a breaker at
    once, so primary/auth runs last and is followed by a call that must skip WisprFlow."""
    out: dict[str, Outcome] = {}
    async with chain_server(pg_dsn, tmp_path_factory.mktemp("failover"), emulators,
                            breaker_failures=10_000, breaker_cooldown_s=3600) as server:
        out["baseline"] = await run_calls(server, ALL, speed=BASELINE_SPEED)
        for kind in KINDS:
            out[f"primary/{kind}"] = await fault_scenario(server, emulators, kind, "primary", ALL)
        for kind in KINDS:
            out[f"both/{kind}"] = await fault_scenario(server, emulators, kind, "both", ALL)
        out["primary/auth"] = await fault_scenario(server, emulators, "auth", "primary", ALL)
        before = len(emulators.wispr.records)
        out["after-auth"] = await run_calls(server, [REAL[1]])
        connections = len(emulators.wispr.records) - before
        async with httpx.AsyncClient(base_url=server.base) as client:
            readyz, metrics = (await client.get("/readyz")).json(), (await client.get("/metrics")).text
    print("\nfailover scenario wall times:", {k: round(v.wall_s, 1) for k, v in out.items()},
          f"oracle located {emulators.oracle.located}, Moonshine {emulators.oracle.fallbacks}")
    return Matrix(out, readyz, metrics, connections, transcriber_tasks())


# -- checks -----------------------------------------------------------------------------------------------------

def transcript(result: CallResult) -> dict[str, str]:
    assert result.stored is not None and result.ended is not None, "the call never ended"
    return result.transcript()


def providers(result: CallResult) -> list[str]:
    assert result.stored is not None, "the call was not stored"
    return list(result.stored["providers"])


def assert_call_is_whole(outcome: Outcome, path: Path) -> None:
    """Ended by Twilio's stop, recording byte-equal to the fixture, providers stored = providers seen live,
    switches stored = switches announced."""
    result = outcome.results[path]
    stored = result.stored
    assert stored is not None and result.ended is not None and result.ended["reason"] == "stop"
    with WavReader(outcome.data_dir / stored["recording_key"]) as wav:
        assert (wav.channels, wav.encoding) == (2, "mulaw")
        got = wav.read(wav.n_frames)
    assert got == interleave(*read_tracks(path))
    seen = {e["provider"] for e in result.events if e["type"] == "transcript"}
    assert stored["providers"] == sorted(seen)
    announced = outcome.switches(path)
    live = [(e["track"], e["from"], e["to"], e["reason"]) for e in announced]
    kept = [(s["track"], s["from"], s["to"], s["reason"]) for s in stored["stats"]["switches"]]
    assert live == kept
    assert all(0 <= e["media_ms"] <= stored["media_ms"] for e in announced)


def assert_same_words(path: Path, got: CallResult, baseline: CallResult) -> None:
    """Exact for fixtures the oracle places; a pooled WER bound for the Moonshine call.

    Exact means: the no-fault words, or the reference itself (the backup's utterances caught a word WisprFlow's
    VAD had left out), less at most the words a backup's own endpointer puts in no utterance at all: those are
    the backup's recognition, not audio the failover lost. For Deepgram that is its emulator's energy endpointer
    (a weak "X" in one TTS fixture); for the local leg it is Silero started where the replay started (its
    recurrent state depends on where it starts: from 3.99 s into the lossy fixture it misses "Sure Can I take",
    which it catches from 0 s)."""
    now, before = transcript(got), transcript(baseline)
    if path == BECKETT:
        errors = word_errors(" ".join(before.values()), " ".join(now.values()))
        assert errors.wer <= WER_TOLERANCE, (errors, before, now)
        return
    meta = sidecar(path)
    assert got.stored is not None
    local_from = {s["track"]: s["replay_from_ms"] for s in got.stored["stats"]["switches"] if s["to"] == "local"}
    for track, text in now.items():
        closest = min((word_errors(ref, text) for ref in (before[track], meta["tracks"][track]["text"])),
                      key=lambda e: e.errors)
        assert closest.substitutions == closest.insertions == 0, (track, closest, text, before[track])
        blind = set(deepgram_blind_words(path, track))
        if track in local_from:
            blind |= set(local_blind_words(path, track, local_from[track]))
        assert closest.deletions <= len(blind), (track, closest, text, before[track], sorted(blind))


def blind_words(path: Path, track: str, spans: Sequence[tuple[float, float]], from_ms: float = 0.0,
                ) -> list[tuple[float, str]]:
    """(midpoint ms, word) of the track's words from ``from_ms`` on that lie in none of ``spans`` (ms)."""
    return [(mid, w) for mid, w in midpoints(path, track)
            if mid >= from_ms and not any(a <= mid < b for a, b in spans)]


@functools.cache
def deepgram_blind_words(path: Path, track: str) -> list[tuple[float, str]]:
    """Words whose midpoint no utterance of the Deepgram emulator's endpointer (client settings) contains."""
    pcm = pcm16k(read_tracks(path)[("inbound", "outbound").index(track)])
    segmenter = dg._Segmenter(300, 1500, None, False, 5000)  # the emulator's own sans-I/O endpointing
    cuts = [c for i in range(0, len(pcm), 1600) for c in segmenter.push(pcm[i : i + 1600])]
    cuts += segmenter.flush(True)
    spans = [(c.start * 1000, c.end * 1000) for c in cuts if isinstance(c, dg._Transcribe) and len(c.pcm)]
    return blind_words(path, track, spans)


@functools.cache
def local_blind_words(path: Path, track: str, from_ms: int) -> list[tuple[float, str]]:
    """Words from ``from_ms`` on whose midpoint no utterance of the local leg contains, its Silero and endpointer
    (the server's settings) started at ``from_ms`` as a failover replay starts them."""
    pcm = pcm16k(read_tracks(path)[("inbound", "outbound").index(track)])[from_ms * 16 :]
    detector, endpointer = SileroDetector(), Endpointer(EndpointConfig(sample_rate=16_000))
    size = detector.frame_samples
    cuts = [u for window in frames(pcm, size, pad=True) for u in endpointer.push(detector.probability(window), size)]
    spans = [(from_ms + u.start_sample / 16, from_ms + u.end_sample / 16) for u in [*cuts, *endpointer.flush()]]
    return blind_words(path, track, spans, from_ms)


def switched_tracks(outcome: Outcome, path: Path) -> dict[str, list[tuple[str, str]]]:
    """Per track, the (from, to) of each provider.switched event, in order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for e in outcome.switches(path):
        out.setdefault(e["track"], []).append((e["from"], e["to"]))
    return out


# -- tests ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
async def test_no_fault_pass_stays_on_wisprflow_with_the_fixture_words(matrix: Matrix, path: Path) -> None:
    outcome = matrix.outcomes["baseline"]
    assert_call_is_whole(outcome, path)
    assert outcome.switches(path) == []  # no false stall or missing final at the default limits
    assert providers(outcome.results[path]) == ["wisprflow"]
    meta = sidecar(path)
    got = transcript(outcome.results[path])
    for track in ("inbound", "outbound"):
        errors = word_errors(meta["tracks"][track]["text"], got[track])
        if path == BECKETT:  # Moonshine on its own self-test clip: "Fail better" → "Failed better"
            assert errors.wer <= 0.2, (track, errors, got[track])
        else:  # the oracle is exact; a word the VAD leaves out of every utterance is the only loss allowed
            assert errors.errors <= 1, (track, errors, got[track])


PRIMARY_CASES = [(kind, path) for kind in (*KINDS, "auth") for path in ALL]
BOTH_CASES = [(kind, path) for kind in KINDS for path in ALL]


@pytest.mark.parametrize(("kind", "path"), PRIMARY_CASES, ids=[f"{k}-{p.stem}" for k, p in PRIMARY_CASES])
async def test_primary_fault_loses_no_words(matrix: Matrix, kind: str, path: Path) -> None:
    outcome = matrix.outcomes[f"primary/{kind}"]
    assert_call_is_whole(outcome, path)
    assert_same_words(path, outcome.results[path], matrix.outcomes["baseline"].results[path])
    switched = switched_tracks(outcome, path)
    assert all(move == ("wisprflow", "deepgram") for moves in switched.values() for move in moves)
    used = providers(outcome.results[path])
    if kind == "auth":  # refused at once (a switch) or skipped because the breaker had opened (no switch)
        assert used == ["deepgram"]
    else:  # the caller track's second utterance went to a socket opened after the fault was armed
        assert switched.get("inbound") == [("wisprflow", "deepgram")]
        assert "deepgram" in used and set(used) <= {"deepgram", "wisprflow"}


@pytest.mark.parametrize(("kind", "path"), BOTH_CASES, ids=[f"{k}-{p.stem}" for k, p in BOTH_CASES])
async def test_both_clouds_failing_ends_on_local_without_losing_words(matrix: Matrix, kind: str, path: Path) -> None:
    outcome = matrix.outcomes[f"both/{kind}"]
    assert_call_is_whole(outcome, path)
    assert_same_words(path, outcome.results[path], matrix.outcomes["baseline"].results[path])
    inbound = switched_tracks(outcome, path)["inbound"]
    assert inbound == [("wisprflow", "deepgram"), ("deepgram", "local")]
    assert "local" in providers(outcome.results[path])


async def test_every_auth_refusal_opened_wisprflow_breaker_and_new_calls_skip_it(matrix: Matrix) -> None:
    refused = matrix.outcomes["primary/auth"]
    assert any(refused.switches(p) for p in REAL)
    after = matrix.outcomes["after-auth"]
    assert_call_is_whole(after, REAL[1])
    assert after.switches(REAL[1]) == [] and providers(after.results[REAL[1]]) == ["deepgram"]
    assert matrix.wispr_connections_after_auth == 0
    states = {name: p["state"] for name, p in matrix.readyz["checks"]["providers"].items()}
    assert states == {"wisprflow": "open", "deepgram": "closed", "local": "closed"}
    assert 'switchboard_provider_state{provider="wisprflow",state="open"} 1' in matrix.metrics
    assert 'switchboard_provider_state{provider="wisprflow",state="closed"} 0' in matrix.metrics
    total = sum(len(o.switches(p)) for o in matrix.outcomes.values() for p in o.results)
    counted = sum(int(line.rsplit(" ", 1)[1]) for line in matrix.metrics.splitlines()
                  if line.startswith("switchboard_provider_switches_total{"))
    assert counted == total > 0


async def test_shutdown_leaves_no_provider_task_behind(matrix: Matrix) -> None:
    assert matrix.leftover_tasks == []


def clip(path: Path, seconds: float, out: Path) -> Path:
    with WavReader(path) as src, WavWriter(out, channels=2) as dst:
        dst.write(src.read(int(seconds * 8000)))
    return out


async def test_auth_refused_by_both_clouds_ends_on_local_and_then_calls_go_straight_there(
        pg_dsn: str, tmp_path: Path, emulators: Emulators, matrix: Matrix) -> None:
    emulators.clear()
    emulators.wispr.inject(WISPR_FAULT["auth"], connections=None)
    emulators.deepgram.inject(DEEPGRAM_FAULT["auth"], connections=None)
    try:
        async with chain_server(pg_dsn, tmp_path / "data", emulators, breaker_cooldown_s=3600) as server:
            refused = await run_calls(server, [BECKETT])
            assert_call_is_whole(refused, BECKETT)
            assert_same_words(BECKETT, refused.results[BECKETT], matrix.outcomes["baseline"].results[BECKETT])
            assert providers(refused.results[BECKETT]) == ["local"]
            for moves in switched_tracks(refused, BECKETT).values():  # a track may skip an already-open breaker
                assert moves in ([("wisprflow", "deepgram"), ("deepgram", "local")], [("wisprflow", "local")])
            seen = len(emulators.wispr.records), emulators.deepgram.stats().rejected
            short = await run_calls(server, [clip(BECKETT, 4.0, tmp_path / "short.wav")])
            async with httpx.AsyncClient(base_url=server.base) as client:
                breakers = (await client.get("/readyz")).json()["checks"]["providers"]
    finally:
        emulators.clear()
    ((path, result),) = short.results.items()
    assert providers(result) == ["local"] and short.switches(path) == []
    assert (len(emulators.wispr.records), emulators.deepgram.stats().rejected) == seen  # neither was tried
    assert {name: p["state"] for name, p in breakers.items()} == {
        "wisprflow": "open", "deepgram": "open", "local": "closed"}


async def test_breaker_opens_after_repeated_failures_then_probes_and_returns_to_wisprflow(
        pg_dsn: str, tmp_path: Path, emulators: Emulators) -> None:
    ivr = REAL[1]  # 24 s: 6 s at SPEED, well inside the cooldown

    async def call(server: Server) -> tuple[Outcome, dict[str, Any]]:
        outcome = await run_calls(server, [ivr])
        assert_call_is_whole(outcome, ivr)
        return outcome, await wispr_breaker(server)

    async def wispr_breaker(server: Server) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=server.base) as client:
            return dict((await client.get("/readyz")).json()["checks"]["providers"]["wisprflow"])

    emulators.clear()
    async with chain_server(pg_dsn, tmp_path / "data", emulators, breaker_failures=2,
                            breaker_cooldown_s=12.0) as server:
        emulators.wispr.inject(wf.Fault(wf.FaultKind.CLOSE_MID_STREAM, code=1011), connections=None)
        try:
            failing, state = await call(server)  # both tracks fail once: two failures open the breaker
            assert switched_tracks(failing, ivr) == {"inbound": [("wisprflow", "deepgram")],
                                                     "outbound": [("wisprflow", "deepgram")]}
            assert (state["state"], state["failures"]) == ("open", 2)
            connections = len(emulators.wispr.records)
            skipped, _ = await call(server)
            assert skipped.switches(ivr) == [] and providers(skipped.results[ivr]) == ["deepgram"]
            assert len(emulators.wispr.records) == connections
        finally:
            emulators.clear()  # healthy again
        for _ in range(100):  # the cooldown runs out (polled: the breaker has no event to wait on)
            if (await wispr_breaker(server))["state"] == "half_open":
                break
            await asyncio.sleep(0.2)
        probing, state = await call(server)  # one track probes WisprFlow, the other stays on Deepgram
        assert probing.switches(ivr) == [] and providers(probing.results[ivr]) == ["deepgram", "wisprflow"]
        assert state["state"] == "closed"
        back, _ = await call(server)
        assert back.switches(ivr) == [] and providers(back.results[ivr]) == ["wisprflow"]
