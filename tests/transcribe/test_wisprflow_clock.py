"""WisprFlow's auth and final timeouts run on the clock they are given (in the app: effective loop time).

A slow clock stands for a loop that was starved: the same reply that is a failure on the loop's clock is in time
on a clock that lost time meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from switchboard.transcribe.errors import ProviderUnavailable
from tests.emulators.recognizer import ScriptedRecognizer
from tests.emulators.wisprflow_server import Fault, FaultKind, WisprFlowEmulator
from tests.transcribe.test_wisprflow import PHRASE_1, RATE, drain, feed, silence, wispr


def slowed(factor: float) -> Callable[[], float]:
    """A clock running at ``factor`` × real time (0.25: four real seconds per clock second)."""
    t0 = time.monotonic()
    return lambda: t0 + (time.monotonic() - t0) * factor


async def transcribe_once(emulator: WisprFlowEmulator, clock: Callable[[], float] | None) -> list[str]:
    stream = await wispr(emulator, packet_ms=250, final_timeout_s=1.0, clock=clock).open("inbound", RATE)
    try:
        feed(stream, np.concatenate([PHRASE_1, silence(1.0)]))
        stream.end()
        return [e.text for e in await drain(stream, limit_s=15) if e.is_final]
    finally:
        await stream.aclose()


@pytest.mark.parametrize("fault", [Fault(FaultKind.SLOW_FINAL, delay_s=1.6)], ids=["final 1.6 s late"])
async def test_final_timeout_is_measured_on_the_given_clock(fault: Fault) -> None:
    async with WisprFlowEmulator(recognizer=ScriptedRecognizer(["ever tried"])) as emulator:
        emulator.inject(fault, connections=None)
        with pytest.raises(ProviderUnavailable, match="no final"):  # control: 1.6 s > 1 s on the loop's clock
            await transcribe_once(emulator, None)
        # 1 s on a quarter-speed clock is 4 s of loop time: the late final is in time
        assert await transcribe_once(emulator, slowed(0.25)) == ["ever tried"]


async def test_auth_timeout_is_measured_on_the_given_clock() -> None:
    async with WisprFlowEmulator(recognizer=ScriptedRecognizer(["ever tried"]), auth_delay_s=1.6) as emulator:
        stream = await wispr(emulator, packet_ms=250, auth_timeout_s=1.0).open("inbound", RATE)
        feed(stream, PHRASE_1)
        stream.end()
        with pytest.raises(ProviderUnavailable, match="auth"):
            await drain(stream, limit_s=15)
        await stream.aclose()
        assert await transcribe_once(emulator, slowed(0.25)) == ["ever tried"]
