"""The configured transcription chain: settings from the environment, chain order, resources, metrics labels."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from audio.detectors import WebRtcDetector
from switchboard.config import ConfigError, Settings
from switchboard.metrics import Metrics
from switchboard.transcribe.breaker import BreakerState, CircuitBreakerBoard
from switchboard.transcribe.errors import ProviderUnavailable
from switchboard.transcribe.factory import breaker_config, build_transcriber, chain_names
from switchboard.transcribe.fallback import FallbackTranscriber
from switchboard.transcribe.local import LocalTranscriber
from switchboard.transcribe.null import NullTranscriber
from switchboard.transcribe.vad import SileroDetector
from switchboard.transcribe.wisprflow_wire import PRODUCTION_URL

pytestmark = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path), **env})


def test_cloud_settings_default_to_production_and_no_keys(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.wisprflow_api_key is None and s.deepgram_api_key is None
    assert s.wispr_ws_url == PRODUCTION_URL
    assert s.deepgram_url is None
    assert (s.stt_stall_s, s.wispr_stall_s, s.breaker_failures, s.breaker_cooldown_s) == (4.0, 12.0, 3, 30.0)


def test_cloud_settings_are_read_and_keys_never_shown(tmp_path: Path) -> None:
    s = settings(tmp_path, WISPRFLOW_API_KEY="wf-secret-1", DEEPGRAM_API_KEY="dg-secret-2",
                 WISPR_WS_URL="ws://127.0.0.1:9001/api/v1/dash/ws", DEEPGRAM_URL="ws://127.0.0.1:9002",
                 SWITCHBOARD_STT_STALL_S="2.5", SWITCHBOARD_WISPR_STALL_S="20",
                 SWITCHBOARD_BREAKER_FAILURES="5", SWITCHBOARD_BREAKER_COOLDOWN_S="7")
    assert s.wisprflow_api_key is not None and s.wisprflow_api_key.reveal() == "wf-secret-1"
    assert s.deepgram_api_key is not None and s.deepgram_api_key.reveal() == "dg-secret-2"
    assert (s.wispr_ws_url, s.deepgram_url) == ("ws://127.0.0.1:9001/api/v1/dash/ws", "ws://127.0.0.1:9002")
    assert (s.stt_stall_s, s.wispr_stall_s, s.breaker_failures, s.breaker_cooldown_s) == (2.5, 20.0, 5, 7.0)
    assert "wf-secret-1" not in repr(s) and "dg-secret-2" not in repr(s)
    config = breaker_config(s)
    assert (config.failure_threshold, config.cooldown_s) == (5, 7.0)


def test_an_empty_key_is_no_key(tmp_path: Path) -> None:
    s = settings(tmp_path, WISPRFLOW_API_KEY="", DEEPGRAM_API_KEY="")
    assert s.wisprflow_api_key is None and s.deepgram_api_key is None
    assert chain_names(s) == ("local",)


@pytest.mark.parametrize(("name", "value"), [
    ("WISPR_WS_URL", "https://platform-api.wisprflow.ai/api/v1/dash/ws"),
    ("DEEPGRAM_URL", "api.deepgram.com"),
    ("SWITCHBOARD_STT_STALL_S", "soon"),
    ("SWITCHBOARD_STT_STALL_S", "0"),
    ("SWITCHBOARD_STT_STALL_S", "nan"),
    ("SWITCHBOARD_WISPR_STALL_S", "2"),
    ("SWITCHBOARD_BREAKER_FAILURES", "0"),
    ("SWITCHBOARD_BREAKER_COOLDOWN_S", "-1"),
    ("SWITCHBOARD_CLOUD_VAD", "energy"),
])
def test_bad_cloud_settings_fail_at_start_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        settings(tmp_path, **{name: value})


@pytest.mark.parametrize(("keys", "chain"), [
    ({}, ("local",)),
    ({"WISPRFLOW_API_KEY": "k"}, ("wisprflow", "local")),
    ({"DEEPGRAM_API_KEY": "k"}, ("deepgram", "local")),
    ({"WISPRFLOW_API_KEY": "k", "DEEPGRAM_API_KEY": "k"}, ("wisprflow", "deepgram", "local")),
    ({"WISPRFLOW_API_KEY": "k", "SWITCHBOARD_TRANSCRIBER": "null"}, ("null",)),
])
async def test_chain_order_follows_the_keys_and_building_matches_it(tmp_path: Path, keys: dict[str, str],
                                                                     chain: tuple[str, ...]) -> None:
    s = settings(tmp_path, **keys)
    assert chain_names(s) == chain
    board = CircuitBreakerBoard()
    async with AsyncExitStack() as stack:
        built = build_transcriber(s, stack, board)
        if len(chain) == 1:  # nothing to fail over to: no wrapper, no breakers
            assert isinstance(built, NullTranscriber if chain == ("null",) else LocalTranscriber)
            assert board.snapshot() == {}
        else:
            assert isinstance(built, FallbackTranscriber)
            assert tuple(p.name for p in built.providers) == chain
            assert set(board.snapshot()) == set(chain)
            assert all(board.state(name) is BreakerState.CLOSED for name in chain)


async def test_stall_limits_reach_the_fallback_and_wisprflow_gets_its_own(tmp_path: Path) -> None:
    s = settings(tmp_path, WISPRFLOW_API_KEY="k", DEEPGRAM_API_KEY="k", SWITCHBOARD_STT_STALL_S="3",
                 SWITCHBOARD_WISPR_STALL_S="9")
    async with AsyncExitStack() as stack:
        built = build_transcriber(s, stack, CircuitBreakerBoard())
        assert isinstance(built, FallbackTranscriber)
        assert built.clock is built.breaker.clock  # one time base for watchdogs and breakers (the app's)
        assert built.providers[0]._config.clock is built.clock  # and for WisprFlow's auth and final timeouts
        assert built.stall_timeout_s == 3.0
        assert built.stall_timeouts == {"wisprflow": 9.0}
        assert built.breaker is not None


@pytest.mark.parametrize(("vad", "detector"), [(None, WebRtcDetector), ("silero", SileroDetector)])
async def test_wisprflow_endpoints_with_the_configured_detector(tmp_path: Path, vad: str | None,
                                                                detector: type) -> None:
    extra = {} if vad is None else {"SWITCHBOARD_CLOUD_VAD": vad}
    async with AsyncExitStack() as stack:
        built = build_transcriber(settings(tmp_path, WISPRFLOW_API_KEY="k", **extra), stack, CircuitBreakerBoard())
        assert isinstance(built, FallbackTranscriber)
        wispr, local = built.providers
        pool = wispr._detectors  # which detector cuts the utterances is the point of this test
        got = await pool.acquire()
        assert isinstance(got, detector)
        assert (pool is local._detectors) == (vad == "silero")  # Silero sessions are shared with local
        pool.release(got)


async def test_building_loads_no_model_and_closing_the_stack_closes_the_pool(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        built = build_transcriber(settings(tmp_path), stack, CircuitBreakerBoard())
        assert isinstance(built, LocalTranscriber)
        pool = built._pool  # the one object whose lifetime is the point of this test
        assert pool.stats().engines == 0
    with pytest.raises(ProviderUnavailable, match="closed"):
        await pool.wait_ready()


def test_labelled_counters_and_gauge_families_render_as_prometheus_text() -> None:
    metrics = Metrics()
    switch = {"from": "wisprflow", "to": "deepgram", "reason": "stall"}
    metrics.inc("switchboard_provider_switches_total", labels=switch)
    metrics.inc("switchboard_provider_switches_total", labels=switch)
    metrics.inc("switchboard_provider_switches_total", labels={**switch, "reason": 'odd "reason"\\'})
    metrics.inc("switchboard_calls_started_total")
    metrics.gauge_family("switchboard_provider_state", "breaker state",
                         lambda: [({"provider": "deepgram", "state": "open"}, 1.0)])
    text = metrics.render()
    assert 'switchboard_provider_switches_total{from="wisprflow",reason="stall",to="deepgram"} 2' in text
    assert r'reason="odd \"reason\"\\"' in text
    assert "switchboard_calls_started_total 1" in text
    assert text.count("# TYPE switchboard_provider_switches_total counter") == 1
    assert 'switchboard_provider_state{provider="deepgram",state="open"} 1' in text
    assert metrics.count("switchboard_provider_switches_total", switch) == 2
    assert metrics.count("switchboard_provider_switches_total", {**switch, "to": "local"}) == 0
