"""Render the scripted callers' lines (fixtures/dialogs/dialogs.json) to audio with the offline espeak-ng voice.

Each spoken step gets ``audio``: ``NAME/NN.ulaw``, raw μ-law at 8 kHz (what a Twilio media frame carries), in a
British English espeak-ng voice with a female variant (``en+f3``), so the caller never sounds like the agent. Run
after editing a line; the files are committed with their text. Needs the ``[voice]`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path

from switchboard.tts.espeak import EspeakEngine
from switchboard.tts.offline import synthesize_ulaw

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "dialogs"


def main() -> None:
    spec_path = ROOT / "dialogs.json"
    spec = json.loads(spec_path.read_text())
    engine = EspeakEngine(voice="en+f3", words_per_minute=160)
    for dialog in spec["dialogs"]:
        (ROOT / dialog["name"]).mkdir(exist_ok=True)
        spoken = [s for s in dialog["steps"] if s["kind"] in ("say", "barge_in")]
        for number, step in enumerate(spoken, 1):
            name = f"{dialog['name']}/{number:02d}.ulaw"
            audio = synthesize_ulaw(engine, step["text"])
            (ROOT / name).write_bytes(audio[: len(audio) // 160 * 160])
            step["audio"] = name
    spec_path.write_text(json.dumps(spec, indent=1) + "\n")


if __name__ == "__main__":
    main()
