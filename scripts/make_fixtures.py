"""Generate the call fixtures in ``fixtures/``: stereo μ-law 8 kHz WAV (left = caller/inbound, right =
agent/outbound) plus a JSON sidecar per call with per-utterance timings and the facts an extractor should find.

Why generated, not recorded: every number in a sidecar (utterance spans, loss spans, SNR) is known exactly
because this script placed the audio there. The dialogue lives in ``fixtures/source/calls.json``; TTS comes from
Debian's espeak-ng, every filter and the G.711 encoding from sox, both run with fixed seeds (``sox -R``) and no
dither (``-D``) so a rerun writes the same bytes. Real speech comes from Debian's Asterisk prompts, LibriVox clips
vendored in ``fixtures/source/librivox`` (import them with ``--librivox-sdist``) and moonshine_cpp's test clip.

Usage: ``.venv/bin/python scripts/make_fixtures.py [--only ID ...] [--librivox-sdist pocketsphinx-5.1.1.tar.gz]``
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

RATE = 8000
PER_MS = RATE // 1000
FRAME = 160  # one 20 ms Twilio frame: durations and loss bursts sit on this grid
JOIN_MS = 100  # default gap between spliced real clips (digits read as a list)
TAIL_MS = 500
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
LIBRIVOX = FIXTURES / "source" / "librivox"
LIBRIVOX_STEM = "sense_and_sensibility_01_austen_64kb-"
BECKETT_PHRASES = ["Ever tried.", "Ever failed.", "No matter.", "Try again.", "Fail again.", "Fail better."]
SPLIT_MS = 500  # a pause this long ends an utterance (the endpointer's hangover)
SPEAKERS = {"inbound": "caller", "outbound": "agent"}
TRACK_OF = {"in": "inbound", "out": "outbound"}

Pcm = npt.NDArray[np.int16]
Part = tuple[int, Pcm, str]  # (sample offset, audio, verbatim text)


class FixtureError(Exception):
    """The only error this script raises: a missing tool or source file, or an inconsistent call spec."""


@dataclass
class Track:
    """One channel being assembled: clips placed at exact sample offsets, plus their sidecar records."""

    pieces: list[tuple[int, Pcm]] = field(default_factory=list)
    utterances: list[dict[str, Any]] = field(default_factory=list)
    end: int = 0  # first free sample

    def render(self, n: int) -> npt.NDArray[np.float64]:
        out = np.zeros(n, dtype=np.float64)
        for at, pcm in self.pieces:
            out[at:at + len(pcm)] += pcm
        return out


def run(cmd: list[str]) -> str:
    """Run a tool, turning its failure into a FixtureError that shows the command and its stderr."""
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as exc:
        raise FixtureError(f"{' '.join(cmd[:4])} … failed: {exc.stderr.strip()[-400:]}") from exc


def ensure_tools() -> None:
    """Install espeak-ng, sox and the Asterisk prompts with apt when missing (root only): the script must work on
    a fresh machine, but a non-root user gets a clear instruction instead of a half-made fixture set."""
    wanted = {"espeak-ng": shutil.which("espeak-ng"), "flite": shutil.which("flite"), "sox": shutil.which("sox"),
              "asterisk-core-sounds-en-wav": ASTERISK.is_dir(), "asterisk-core-sounds-en": ASTERISK_TEXT.exists()}
    missing = [pkg for pkg, present in wanted.items() if not present]
    if not missing:
        return
    if os.geteuid() != 0:
        raise FixtureError(f"missing Debian packages {missing}; run: sudo apt-get install -y {' '.join(missing)}")
    run(["apt-get", "update"])
    run(["apt-get", "install", "-y", *missing])


def tool_versions() -> dict[str, str]:
    """Versions for the sidecars (flite --version exits 1, so the exit code is not checked here)."""
    versions = {}
    for tool in ("espeak-ng", "flite", "sox"):
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"\d+\.\d+(\.\d+)?", out)
        versions[tool] = f"{tool} {found.group(0) if found else '?'}"
    return versions


def read_pcm(path: Path) -> Pcm:
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
            raise FixtureError(f"{path}: expected mono 16-bit {RATE} Hz")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def phone_band(src: Path, tmp: Path, peak_db: float) -> Pcm:
    """Resample to 8 kHz, band-limit to the 300–3400 Hz telephone channel, normalise the peak, trim silence."""
    dst = tmp / "band.wav"
    run(["sox", "-D", "-R", str(src), "-b", "16", "-c", "1", str(dst),
         "rate", "-v", str(RATE), "sinc", "300-3400", "gain", "-n", str(peak_db)])
    return trim(read_pcm(dst))


def loud_frames(pcm: Pcm, floor_db: float = -35.0) -> npt.NDArray[np.intp]:
    """Indices of the 10 ms frames within ``floor_db`` of the loudest one (breaths and room tone fall below)."""
    frames = pcm[: len(pcm) // 80 * 80].astype(np.float64).reshape(-1, 80)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(rms > max(rms.max() * 10 ** (floor_db / 20), 20.0))
    if loud.size == 0:
        raise FixtureError("clip is silent")
    return loud


def trim(pcm: Pcm) -> Pcm:
    """Cut leading/trailing silence and pad to whole ms, so the placed clip's span is the speech itself and
    every utterance boundary is an integer millisecond."""
    loud = loud_frames(pcm)
    cut = pcm[max(loud[0] - 1, 0) * 80:(loud[-1] + 2) * 80]
    return np.concatenate([cut, np.zeros(-len(cut) % PER_MS, dtype=np.int16)])


def split_phrases(pcm: Pcm, texts: list[str]) -> list[Part]:
    """Split a real clip at its pauses of ≥ SPLIT_MS into the given phrases, so a long pause inside a clip is
    not labelled as speech. Fails loudly if the pauses do not match the phrases."""
    loud = loud_frames(pcm)
    breaks = np.flatnonzero(np.diff(loud) * 10 >= SPLIT_MS)
    if len(breaks) != len(texts) - 1:
        raise FixtureError(f"found {len(breaks) + 1} phrases, expected {len(texts)}: {texts}")
    starts = [loud[0], *loud[breaks + 1]]
    ends = [*loud[breaks], loud[-1]]
    return [(int(a) * 80, trim(pcm[a * 80:(b + 1) * 80]), t) for a, b, t in zip(starts, ends, texts, strict=True)]


def tts(text: str, voice: dict[str, Any], tmp: Path) -> Pcm:
    """Synthesize one utterance with espeak-ng or flite. Most callers use flite (CMU's slt/rms/awb/kal16): through
    a noisy phone line the local recogniser gets 15–40 % WER on them but 60–90 % on espeak-ng's voices."""
    raw = tmp / "tts.wav"
    if voice["engine"] == "flite":
        run(["flite", "-voice", voice["voice"], "--setf", f"duration_stretch={voice['stretch']}",
             "--setf", f"int_f0_target_mean={voice['pitch']}", "-t", text, "-o", str(raw)])
    else:
        run(["espeak-ng", "-v", voice["voice"], "-s", str(voice["speed"]), "-p", str(voice["pitch"]),
             "-w", str(raw), text])
    return phone_band(raw, tmp, voice["peak_db"])


def describe(voice: dict[str, Any]) -> str:
    if voice["engine"] == "flite":
        return f"flite -voice {voice['voice']} duration_stretch={voice['stretch']} f0={voice['pitch']}"
    return f"espeak-ng -v {voice['voice']} -s {voice['speed']} -p {voice['pitch']}"


class RealClips:
    """Resolves clip references (``asterisk:NAME``, ``librivox:ID``, ``moonshine:beckett``) to audio and text."""

    def __init__(self) -> None:
        with gzip.open(ASTERISK_TEXT, "rt", encoding="utf-8") as fh:
            pairs = (line.split(":", 1) for line in fh if ":" in line and not line.startswith(";"))
            self.prompts = {k.strip(): v.strip() for k, v in pairs}

    def load(self, ref: str, tmp: Path, peak_db: float) -> list[Part]:
        """The clip as parts at sample offsets from its start (several only when it has long pauses)."""
        origin, name = ref.split(":", 1)
        if origin == "asterisk":
            return [(0, phone_band(ASTERISK / f"{name}.wav", tmp, peak_db), self.prompts[name])]
        if origin == "librivox":
            path = LIBRIVOX / f"{LIBRIVOX_STEM}{name}.flac"
            if not path.exists():
                raise FixtureError(f"{path} missing: rerun with --librivox-sdist pocketsphinx-5.1.1.tar.gz")
            return [(0, phone_band(path, tmp, peak_db), path.with_suffix(".txt").read_text().strip())]
        if origin == "moonshine":
            spec = importlib.util.find_spec("moonshine_cpp")
            if spec is None or not spec.submodule_search_locations:
                raise FixtureError("moonshine_cpp is not installed (it ships test-data/beckett.wav)")
            path = Path(next(iter(spec.submodule_search_locations))) / "test-data" / f"{name}.wav"
            return split_phrases(phone_band(path, tmp, peak_db), BECKETT_PHRASES)
        raise FixtureError(f"unknown clip origin in {ref!r}")


def words(text: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Estimated word timings: the span split in proportion to word length (+1 for the gap after each word)."""
    tokens = [t.strip(".,?!;:\"") for t in text.split()]
    tokens = [t for t in tokens if t]
    edges = np.cumsum([0] + [len(t) + 1 for t in tokens])
    at = start_ms + (end_ms - start_ms) * edges / edges[-1]
    return [{"w": t, "start_ms": round(at[i]), "end_ms": round(at[i + 1])} for i, t in enumerate(tokens)]


def place(track: Track, at: int, parts: list[Part], override: str | None) -> int:
    """Put one turn (parts at sample offsets from ``at``) on a track as one utterance, or several where the
    parts are ≥ SPLIT_MS apart; returns the turn's end sample."""
    if at < track.end:
        raise FixtureError("turns overlap on one track")
    groups: list[list[tuple[int, int, str]]] = []
    for offset, pcm, text in parts:
        track.pieces.append((at + offset, pcm))
        start, end = (at + offset) // PER_MS, (at + offset + len(pcm)) // PER_MS
        if not groups or start - groups[-1][-1][1] >= SPLIT_MS:
            groups.append([])
        groups[-1].append((start, end, text))
    if override and len(groups) != 1:
        raise FixtureError("a text override needs a turn that is one utterance")
    for records in groups:
        start, end = records[0][0], records[-1][1]
        ws = words(override, start, end) if override else [w for s, e, t in records for w in words(t, s, e)]
        text = override or " ".join(t for _, _, t in records)
        track.utterances.append({"start_ms": start, "end_ms": end, "text": text, "words": ws})
    track.end = groups[-1][-1][1] * PER_MS
    return track.end


def assemble(spec: dict[str, Any], tmp: Path, clips: RealClips | None) -> tuple[dict[str, Track], int]:
    tracks = {"inbound": Track(), "outbound": Track()}
    cursor = 0
    for turn in spec["turns"]:
        name = TRACK_OF[turn["who"]]
        parts: list[Part] = []
        if clips is None:
            parts.append((0, tts(turn.get("say", turn["text"]), spec["voices"][name], tmp), turn["text"]))
        else:
            offset, gap = 0, 0
            for ref in turn["clips"]:
                if ref.startswith("pause:"):
                    gap = int(ref.split(":")[1]) * PER_MS
                    continue
                loaded = clips.load(ref, tmp, spec["peak_db"])
                offset += gap
                parts += [(offset + sub, pcm, text) for sub, pcm, text in loaded]
                offset, gap = parts[-1][0] + len(parts[-1][1]), JOIN_MS * PER_MS
        at = max(cursor + turn["gap"] * PER_MS, 0)
        cursor = max(cursor, place(tracks[name], at, parts, turn.get("text") if clips else None))
    n = cursor + TAIL_MS * PER_MS
    return tracks, n + (-n % FRAME)


def noise(colour: str, n: int, tmp: Path) -> npt.NDArray[np.float64]:
    path = tmp / "noise.wav"
    run(["sox", "-D", "-R", "-r", str(RATE), "-n", "-b", "16", "-c", "1", str(path),
         "synth", f"{n}s", colour, "sinc", "300-3400"])
    return read_pcm(path).astype(np.float64)


def speech_power(signal: npt.NDArray[np.float64], track: Track) -> float:
    spans = [signal[u["start_ms"] * PER_MS:u["end_ms"] * PER_MS] for u in track.utterances]
    return float(np.mean(np.concatenate(spans) ** 2))


def add_noise(mix: dict[str, npt.NDArray[np.float64]], tracks: dict[str, Track], cfg: dict[str, Any],
              tmp: Path) -> str:
    """Line noise at ``snr_db`` (active-speech power / noise power) on the caller's leg, and the same colour
    30 dB quieter on the agent's, so neither channel is ever digitally silent on a noisy call."""
    base = noise(cfg["colour"], len(mix["inbound"]), tmp)
    for name, snr, shaped in (("inbound", cfg["snr_db"], base), ("outbound", cfg["snr_db"] + 30, base[::-1])):
        gain = np.sqrt(speech_power(mix[name], tracks[name]) / (np.mean(shaped**2) * 10 ** (snr / 10)))
        mix[name] = mix[name] + shaped * gain
    return f"{cfg['colour']} {cfg['snr_db']} dB SNR on inbound, {cfg['snr_db'] + 30} dB on outbound"


def loss_spans(n: int, pct: float, seed: int, tracks: dict[str, Track]) -> list[list[int]]:
    """Bursts of 1–4 whole 20 ms frames, at least 100 ms apart, inside speech (a burst in silence would test
    nothing), until ``pct`` % of all frames are gone."""
    rng = np.random.default_rng(seed)
    frames, lost = n // FRAME, np.zeros(n // FRAME, dtype=bool)
    speech = np.zeros(frames, dtype=bool)
    for u in (u for t in tracks.values() for u in t.utterances):
        speech[-(-u["start_ms"] // 20):u["end_ms"] // 20] = True
    while lost.sum() < round(frames * pct / 100):
        size = int(rng.integers(1, 5))
        at = int(rng.integers(5, frames - size - 5))
        if speech[at:at + size].all() and not lost[at - 5:at + size + 5].any():
            lost[at:at + size] = True
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(np.int8), [0]])))
    return [[int(a) * 20, int(b) * 20] for a, b in edges.reshape(-1, 2)]


def write_mulaw(path: Path, left: npt.NDArray[np.float64], right: npt.NDArray[np.float64], tmp: Path) -> None:
    """Write 16-bit stereo with the stdlib, then let sox encode G.711 μ-law (no dither: zeros stay 0xFF)."""
    pcm = tmp / "stereo.wav"
    frames = np.clip(np.stack([left, right], axis=1).round(), -32768, 32767).astype("<i2")
    with wave.open(str(pcm), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames.tobytes())
    tmp_out = path.with_suffix(".tmp.wav")
    run(["sox", "-D", "-R", str(pcm), "-e", "u-law", "-b", "8", str(tmp_out)])
    os.replace(tmp_out, path)


def build(spec: dict[str, Any], clips: RealClips | None, meta: dict[str, Any]) -> dict[str, Any]:
    """Render one call's WAV and return its sidecar (``clips`` is None for a TTS call)."""
    real = clips is not None
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tracks, n = assemble(spec, tmp, clips)
        mix = {k: t.render(n) for k, t in tracks.items()}
        noise_desc = add_noise(mix, tracks, spec["noise"], tmp) if spec.get("noise") else None
        spans = loss_spans(n, spec["loss_pct"], spec["seed"], tracks) if spec.get("loss_pct") else []
        for a, b in spans:
            for signal in mix.values():
                signal[a * PER_MS:b * PER_MS] = 0.0
        write_mulaw(FIXTURES / f"{spec['id']}.wav", mix["inbound"], mix["outbound"], tmp)
    sidecar: dict[str, Any] = {
        "id": spec["id"], "kind": "real" if real else "tts", "duration_ms": n // PER_MS, "sample_rate": RATE,
        "encoding": "mulaw", "channels": ["inbound", "outbound"], "word_timing": "estimated", "tracks": {},
        "facts": spec["facts"], "impairments": {"noise": noise_desc, "loss_spans_ms": spans},
    }
    if spans:
        sidecar["impairments"]["loss_tracks"] = ["inbound", "outbound"]
    for name, track in tracks.items():
        sidecar["tracks"][name] = {"speaker": SPEAKERS[name], "voice": voice_of(spec, name, meta),
                                   "text": " ".join(u["text"] for u in track.utterances),
                                   "utterances": track.utterances}
    sidecar.update(provenance(spec, meta))
    return sidecar


def origins(spec: dict[str, Any], track: str | None = None) -> list[str]:
    """Sources (asterisk, librivox, moonshine) a real call's clips come from, on one track or both."""
    return sorted({ref.split(":")[0] for turn in spec["turns"] if track in (None, TRACK_OF[turn["who"]])
                   for ref in turn.get("clips", []) if not ref.startswith("pause:")})


def voice_of(spec: dict[str, Any], track: str, meta: dict[str, Any]) -> str:
    if "voices" in spec:
        return f"{spec['voices'][track]['engine']} {spec['voices'][track]['voice']}"
    return "; ".join(meta["origins"][o]["voice"] for o in origins(spec, track))


def provenance(spec: dict[str, Any], meta: dict[str, Any]) -> dict[str, str]:
    """The sidecar's ``source`` and ``licence`` (plus ``note`` for real speech): what made it, who owns it."""
    versions = meta["versions"]
    if "voices" not in spec:
        used = origins(spec)
        share = " The fixture as a whole is CC-BY-SA-3.0." if "asterisk" in used else ""
        return {"note": spec["note"], "source": f"real speech spliced with {versions['sox']}: {', '.join(used)}",
                "licence": "; ".join(meta["origins"][o]["licence"] for o in used) + "." + share}
    engines = [*sorted({v["engine"] for v in spec["voices"].values()}), "sox"]
    voices = "; ".join(f"{k}: {describe(v)}" for k, v in spec["voices"].items())
    return {"source": f"{', '.join(versions[e] for e in engines)}; {voices}", "licence": meta["tts_licence"]}


def import_librivox(sdist: Path) -> None:
    """Vendor the five LibriVox utterances from the pocketsphinx sdist as FLAC, so regeneration needs no network."""
    LIBRIVOX.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar, tempfile.TemporaryDirectory() as name:
        for member in tar.getmembers():
            match = re.search(rf"test/data/librivox/({LIBRIVOX_STEM}\d+)\.(wav|txt)$", member.name)
            source = tar.extractfile(member) if match else None
            if match is None or source is None:
                continue
            data = source.read()
            if match.group(2) == "txt":
                (LIBRIVOX / f"{match.group(1)}.txt").write_text(data.decode().strip() + "\n")
                continue
            wav = Path(name) / "in.wav"
            wav.write_bytes(data)
            run(["sox", "-D", str(wav), str(LIBRIVOX / f"{match.group(1)}.flac")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="*", default=None, help="fixture ids to rebuild (default: all)")
    parser.add_argument("--librivox-sdist", type=Path, help="pocketsphinx-5.1.1.tar.gz to import LibriVox clips")
    args = parser.parse_args()
    ensure_tools()
    if args.librivox_sdist:
        import_librivox(args.librivox_sdist)
    calls = json.loads((FIXTURES / "source" / "calls.json").read_text())
    meta = {**calls["meta"], "versions": tool_versions()}
    clips = RealClips()
    jobs = [(s, None) for s in calls["tts"]] + [(s, clips) for s in calls["real"]]
    for spec, real_clips in jobs:
        if args.only and spec["id"] not in args.only:
            continue
        sidecar = build(spec, real_clips, meta)
        text = json.dumps(sidecar, indent=1, ensure_ascii=False) + "\n"
        (FIXTURES / f"{spec['id']}.json").write_text(text, encoding="utf-8")
        size = (FIXTURES / f"{spec['id']}.wav").stat().st_size
        print(f"{spec['id']:36} {sidecar['duration_ms'] / 1000:6.2f} s {size / 1024:7.1f} KiB")


if __name__ == "__main__":
    try:
        main()
    except FixtureError as exc:
        raise SystemExit(f"make_fixtures: {exc}") from exc
