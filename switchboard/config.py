"""One frozen :class:`Settings`, read once from the environment at start.

Every environment variable the server reads is listed in ``ENV_VARS`` (and in the README). A bad value fails at start
with :class:`ConfigError` naming the variable, never later in the middle of a call. Secrets are wrapped in
:class:`Secret` so they never appear in a repr, a log line or a traceback.

With no keys at all the server runs offline: embedded PostgreSQL, local transcription, local recordings. A cloud
transcription key puts that provider in front of the local recogniser (WisprFlow → Deepgram → local, each cloud only
if its key is set; see :mod:`switchboard.transcribe.factory`). Twilio and
API tokens that are not configured are generated once and kept in ``<data dir>/secrets.json`` (mode 0600), so a
zero-config server and the replay tool on the same machine agree on them without a well-known default.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from switchboard.agent.answer import (
    AnswerConfigError,
    AnswerMode,
    BusinessHours,
    parse_answer_mode,
    parse_business_hours,
)
from switchboard.transcribe.wisprflow_wire import PRODUCTION_URL
from switchboard.twilio.media_bounds import MediaTimeLimits


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


class Secret:
    """A string that hides itself in ``repr``/``str``; call :meth:`reveal` where the value is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


ENV_VARS: Final[Mapping[str, str]] = {
    "PUBLIC_URL": "Public base URL Twilio uses to reach this server (signatures are checked against it)",
    "TWILIO_ACCOUNT_SID": "Twilio account SID (AC…)",
    "TWILIO_AUTH_TOKEN": "Twilio auth token: validates X-Twilio-Signature",
    "TWILIO_AUTH_TOKEN_PREVIOUS": "During a rotation: the token just replaced, still accepted for signatures and "
                                  "stream tokens (unset it once every instance runs the new one)",
    "TWILIO_PHONE_NUMBER": "Our Twilio number, used as caller ID when dialling the operator",
    "OPERATOR_NUMBER": "Number <Dial>ed for operator mode; unset = voicemail-style capture",
    "DATABASE_URL": "PostgreSQL DSN; unset = embedded PostgreSQL under the data dir",
    "SWITCHBOARD_API_TOKEN": "Bearer token for the REST and live APIs",
    "SWITCHBOARD_DATA_DIR": "Where recordings, spools, secrets and the embedded database live",
    "SWITCHBOARD_HOST": "Bind address for `switchboard serve`",
    "SWITCHBOARD_PORT": "Bind port for `switchboard serve`",
    "SWITCHBOARD_REQUIRE_WS_SIGNATURE": "Override: 1 = refuse media-stream upgrades without X-Twilio-Signature, 0 = "
                                        "accept them (unset = required whenever TWILIO_AUTH_TOKEN is set)",
    "SWITCHBOARD_MAX_BODY_BYTES": "Largest HTTP request body; a bigger one is refused (413) while it streams in",
    "SWITCHBOARD_WS_MAX_BYTES": "Largest websocket message; a bigger one closes the socket (1009)",
    "SWITCHBOARD_WS_START_TIMEOUT_S": "Seconds a media stream may take to send a valid start before it is closed",
    "SWITCHBOARD_MAX_CALLS": "Concurrent calls; over it the voice webhook answers busy and new streams are refused",
    "SWITCHBOARD_MAX_CONNECTIONS": "Concurrent websocket connections (media streams and live subscribers)",
    "SWITCHBOARD_DRAIN_S": "On SIGTERM: seconds live calls may go on (new ones are turned away) before they are "
                           "closed and finalised",
    "SWITCHBOARD_TRANSCRIBER": "local (default: the keyed cloud providers, then local Moonshine as the last resort) "
                               "or null (no transcription: benchmarks)",
    "WISPRFLOW_API_KEY": "WisprFlow API key; set = WisprFlow is the primary transcriber",
    "WISPR_WS_URL": "WisprFlow websocket URL (default production; an emulator in tests)",
    "DEEPGRAM_API_KEY": "Deepgram API key; set = Deepgram follows WisprFlow in the failover chain",
    "DEEPGRAM_URL": "Deepgram base URL, e.g. ws://127.0.0.1:9000 (unset = production)",
    "SWITCHBOARD_STT_STALL_S": "Seconds a streaming provider may stay silent while speech flows before failover",
    "SWITCHBOARD_WISPR_STALL_S": "The same for WisprFlow, which answers once per utterance (its utterances are "
                                 "cut 2 s shorter than this)",
    "SWITCHBOARD_CLOUD_VAD": "webrtc (default) or silero: the speech detector that cuts WisprFlow's utterances",
    "SWITCHBOARD_STT_VOCABULARY": "Comma-separated street and area names the business serves, boosted in Deepgram "
                                  "(keywords on Nova-2, keyterms on Nova-3)",
    "SWITCHBOARD_BREAKER_FAILURES": "Provider failures within 60 s that open its circuit breaker (new calls skip it)",
    "SWITCHBOARD_BREAKER_COOLDOWN_S": "Seconds an open breaker waits before one call probes the provider again",
    "SWITCHBOARD_STT_WORKERS": "Recogniser threads for local transcription (each ~450 MB)",
    "SWITCHBOARD_STT_BEAM": "Beam width of the local recogniser's decoder (1 = greedy, as upstream Moonshine)",
    "SWITCHBOARD_STT_BIAS": "Local recogniser's context-bias bonus per letter for the NATO alphabet, number words "
                            "and SWITCHBOARD_STT_VOCABULARY (0 = none)",
    "SWITCHBOARD_LIVE_QUEUE": "Per-subscriber live event queue bound; overflow closes that subscriber",
    "SWITCHBOARD_LOG_LEVEL": "Python logging level name",
    "OPENAI_API_KEY": "OpenAI key: gpt-4o-mini extracts lead fields (unset = offline rules only)",
    "OPENAI_BASE_URL": "OpenAI base URL ending in /v1 (unset = production; an emulator in tests)",
    "AWS_S3_BUCKET": "Bucket for recordings and transcripts (unset = the local data dir is the archive)",
    "AWS_REGION": "Region of the bucket",
    "AWS_ENDPOINT_URL": "S3-compatible endpoint (path-style addressing), e.g. a SeaweedFS or MinIO server",
    "AWS_ACCESS_KEY_ID": "S3 access key (unset = boto3's usual credential chain, minus instance metadata)",
    "AWS_SECRET_ACCESS_KEY": "S3 secret key",
    "SWITCHBOARD_ARCHIVE_RETRY_MAX_S": "Longest wait between archive upload retries during an outage",
    "ONCALL_NUMBER": "E.164 number that gets an SMS for each emergency call (needs TWILIO_PHONE_NUMBER)",
    "TWILIO_API_URL": "Twilio REST base URL (unset = https://api.twilio.com; an emulator in tests)",
    "SWITCHBOARD_JOB_LEASE_S": "Seconds a post-call job stays claimed without renewal (a killed server's jobs are "
                               "taken over after this)",
    "SWITCHBOARD_MAX_LOOP_LAG_S": "Event-loop lag (worst in the last second) above which /readyz answers 503 so a "
                                  "load balancer sends new calls elsewhere",
    "SWITCHBOARD_SESSION_HOURS": "How long a dashboard sign-in lasts before the operator signs in again",
    "SWITCHBOARD_INSTANCE_ID": "This instance's name on the calls it streams (unset = one made once and kept in the "
                               "data dir); on restart it finishes its own calls that were live when it died",
    "SWITCHBOARD_MAX_MEDIA_JUMP_MS": "A media timestamp further than this ahead of the stream (or back on its track) "
                                     "closes the stream as a protocol violation",
    "SWITCHBOARD_MAX_MEDIA_SPEED": "Media time may run at most this many times faster than the wall clock (after "
                                   "SWITCHBOARD_MAX_MEDIA_LEAD_S); faster senders are held back",
    "SWITCHBOARD_STREAM_TOKEN_TTL_S": "Seconds a media-stream token stays valid after the voice webhook minted it "
                                      "(each token is also single-use)",
    "SWITCHBOARD_MAX_MEDIA_LEAD_S": "Media time a stream may send ahead of that pace at once (bursts, fast replays)",
    "SWITCHBOARD_ANSWER": "Who answers inbound calls: operator (default), agent, or auto (the agent when no operator "
                          "is configured, outside business hours, or when the operator does not pick up)",
    "SWITCHBOARD_BUSINESS_HOURS": "When the operator is rung in auto mode, e.g. 'Mon-Fri 08:00-18:00; Europe/London' "
                                  "(unset = always)",
    "SWITCHBOARD_OPERATOR_TIMEOUT_S": "Auto mode: seconds the operator is rung before the agent takes the call",
    "SWITCHBOARD_AGENT_PROFILE": "Path of the agent profile TOML (unset = the shipped default profile)",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, validated. Build with :meth:`from_env`; tests build it directly."""

    data_dir: Path
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    twilio_account_sid: str = "AC" + "0" * 32
    twilio_auth_token: Secret = field(default_factory=lambda: Secret(secrets.token_hex(16)))
    twilio_phone_number: str | None = None
    operator_number: str | None = None
    database_url: Secret | None = None
    api_token: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(24)))
    require_ws_signature: bool | None = None
    """None = required unless the Twilio auth token is a generated one (:attr:`ws_signature_required`)."""
    twilio_auth_token_previous: Secret | None = None
    """Also accepted while the auth token is rotated (webhook and handshake signatures, stream tokens)."""
    twilio_auth_token_generated: bool = False
    """The token came from ``secrets.json`` (zero-config dev server), not from the environment."""
    max_body_bytes: int = 64 * 1024
    ws_max_bytes: int = 128 * 1024
    """Above the media-stream parser's own 64 KiB limit, which closes with a protocol-violation reason."""
    ws_start_timeout_s: float = 5.0
    max_calls: int = 100
    max_connections: int = 500
    drain_s: float = 60.0
    transcriber: str = "local"
    stt_workers: int = 1
    stt_beam: int = 4
    stt_bias: float = 0.3
    live_queue: int = 1000
    log_level: str = "INFO"
    wisprflow_api_key: Secret | None = None
    wispr_ws_url: str = PRODUCTION_URL
    deepgram_api_key: Secret | None = None
    deepgram_url: str | None = None
    """None = Deepgram's production endpoint."""
    stt_stall_s: float = 4.0
    wispr_stall_s: float = 12.0
    cloud_vad: str = "webrtc"
    stt_vocabulary: tuple[str, ...] = ()
    """Street and area names for cloud recognisers that take a vocabulary (until the agent profile carries them)."""
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    openai_api_key: Secret | None = None
    openai_base_url: str | None = None
    aws_s3_bucket: str | None = None
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: Secret | None = None
    archive_retry_max_s: float = 300.0
    oncall_number: str | None = None
    twilio_api_url: str | None = None
    job_lease_s: float = 30.0
    max_loop_lag_s: float = 0.25
    session_hours: float = 12.0
    instance_id: str | None = None
    """None = the one kept in the data dir (:func:`switchboard.recovery.instance_id`)."""
    max_media_jump_ms: int = 5_000
    max_media_speed: float = 20.0
    max_media_lead_s: float = 60.0
    stream_token_ttl_s: float = 120.0
    answer: AnswerMode = AnswerMode.OPERATOR
    business_hours: BusinessHours | None = None
    """None = always open."""
    operator_timeout_s: int = 20
    agent_profile: Path | None = None
    """None = the shipped default profile (:func:`switchboard.agent.profile.load_profile`)."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(f"PUBLIC_URL must be an http(s) base URL without query, got {self.public_url!r}")
        if self.transcriber not in ("local", "null"):
            raise ConfigError(f"SWITCHBOARD_TRANSCRIBER must be 'local' or 'null', got {self.transcriber!r}")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"SWITCHBOARD_PORT out of range: {self.port}")
        if self.stt_workers < 1 or self.live_queue < 10:
            raise ConfigError("SWITCHBOARD_STT_WORKERS must be ≥ 1 and SWITCHBOARD_LIVE_QUEUE ≥ 10")
        if not 1 <= self.stt_beam <= 16 or not 0 <= self.stt_bias <= 5:
            raise ConfigError(f"SWITCHBOARD_STT_BEAM must be 1-16 and SWITCHBOARD_STT_BIAS 0-5, got {self.stt_beam} "
                              f"and {self.stt_bias}")
        _check_ws_url("WISPR_WS_URL", self.wispr_ws_url)
        if self.deepgram_url is not None:
            _check_ws_url("DEEPGRAM_URL", self.deepgram_url)
        if not self.stt_stall_s > 0:
            raise ConfigError(f"SWITCHBOARD_STT_STALL_S must be > 0, got {self.stt_stall_s}")
        if not self.wispr_stall_s >= 3:  # its utterances are cut at wispr_stall_s - 2, and need ≥ 1 s
            raise ConfigError(f"SWITCHBOARD_WISPR_STALL_S must be ≥ 3, got {self.wispr_stall_s}")
        if self.cloud_vad not in ("webrtc", "silero"):
            raise ConfigError(f"SWITCHBOARD_CLOUD_VAD must be 'webrtc' or 'silero', got {self.cloud_vad!r}")
        if not 0 < self.session_hours <= 24 * 90:
            raise ConfigError(f"SWITCHBOARD_SESSION_HOURS must be in (0, 2160], got {self.session_hours}")
        if not self.max_loop_lag_s > 0:
            raise ConfigError(f"SWITCHBOARD_MAX_LOOP_LAG_S must be > 0, got {self.max_loop_lag_s}")
        if self.breaker_failures < 1 or not self.breaker_cooldown_s > 0:
            raise ConfigError("SWITCHBOARD_BREAKER_FAILURES must be ≥ 1 and SWITCHBOARD_BREAKER_COOLDOWN_S > 0")
        if not self.stream_token_ttl_s > 0:
            raise ConfigError(f"SWITCHBOARD_STREAM_TOKEN_TTL_S must be > 0, got {self.stream_token_ttl_s}")
        if self.max_media_jump_ms < 0 or not self.max_media_speed >= 1 or self.max_media_lead_s < 0:
            raise ConfigError("SWITCHBOARD_MAX_MEDIA_JUMP_MS and SWITCHBOARD_MAX_MEDIA_LEAD_S must be ≥ 0 and "
                              "SWITCHBOARD_MAX_MEDIA_SPEED ≥ 1")
        if not 5 <= self.operator_timeout_s <= 600:  # Twilio's bounds for <Dial timeout>
            raise ConfigError(f"SWITCHBOARD_OPERATOR_TIMEOUT_S must be 5..600, got {self.operator_timeout_s}")
        self._check_limits()

    def _check_limits(self) -> None:
        if self.max_body_bytes < 1024 or self.ws_max_bytes < 1024:
            raise ConfigError("SWITCHBOARD_MAX_BODY_BYTES and SWITCHBOARD_WS_MAX_BYTES must be ≥ 1024")
        if not self.ws_start_timeout_s > 0 or self.drain_s < 0:
            raise ConfigError("SWITCHBOARD_WS_START_TIMEOUT_S must be > 0 and SWITCHBOARD_DRAIN_S ≥ 0")
        if self.max_calls < 1 or self.max_connections < 1:
            raise ConfigError("SWITCHBOARD_MAX_CALLS and SWITCHBOARD_MAX_CONNECTIONS must be ≥ 1")

    @property
    def twilio_auth_tokens(self) -> tuple[str, ...]:
        """The tokens a Twilio signature or a stream token may be made with: the current one first."""
        previous = self.twilio_auth_token_previous
        return (self.twilio_auth_token.reveal(),) + ((previous.reveal(),) if previous is not None else ())

    @property
    def ws_signature_required(self) -> bool:
        """Media-stream upgrades must be signed whenever a real auth token is configured; the env var overrides."""
        if self.require_ws_signature is not None:
            return self.require_ws_signature
        return not self.twilio_auth_token_generated

    @property
    def public_base(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def media_time_limits(self) -> MediaTimeLimits:
        return MediaTimeLimits(self.max_media_jump_ms, self.max_media_speed, round(self.max_media_lead_s * 1000))

    def secret_values(self) -> list[str]:
        """Every configured secret, revealed: what the log scrubber must never let through."""
        return [value.reveal() for value in (getattr(self, f.name) for f in fields(self)) if isinstance(value, Secret)]

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment; generate-and-persist local secrets that are not set."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("SWITCHBOARD_DATA_DIR") or ".switchboard").expanduser().resolve()
        host = env.get("SWITCHBOARD_HOST", "127.0.0.1")
        port = _int(env, "SWITCHBOARD_PORT", 8000)
        local = load_local_secrets(data_dir, create=True)
        public = env.get("PUBLIC_URL") or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        db = env.get("DATABASE_URL")
        wispr_key, deepgram_key = env.get("WISPRFLOW_API_KEY"), env.get("DEEPGRAM_API_KEY")
        return cls(
            data_dir=data_dir,
            public_url=public,
            host=host,
            port=port,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32,
            twilio_auth_token=Secret(env.get("TWILIO_AUTH_TOKEN") or local["twilio_auth_token"]),
            twilio_auth_token_generated=not env.get("TWILIO_AUTH_TOKEN"),
            twilio_auth_token_previous=_secret(env, "TWILIO_AUTH_TOKEN_PREVIOUS"),
            twilio_phone_number=env.get("TWILIO_PHONE_NUMBER") or None,
            operator_number=env.get("OPERATOR_NUMBER") or None,
            database_url=Secret(db) if db else None,
            api_token=Secret(env.get("SWITCHBOARD_API_TOKEN") or local["api_token"]),
            require_ws_signature=_bool(env, "SWITCHBOARD_REQUIRE_WS_SIGNATURE", None),
            max_body_bytes=_int(env, "SWITCHBOARD_MAX_BODY_BYTES", 64 * 1024),
            ws_max_bytes=_int(env, "SWITCHBOARD_WS_MAX_BYTES", 128 * 1024),
            ws_start_timeout_s=_float(env, "SWITCHBOARD_WS_START_TIMEOUT_S", 5.0),
            max_calls=_int(env, "SWITCHBOARD_MAX_CALLS", 100),
            max_connections=_int(env, "SWITCHBOARD_MAX_CONNECTIONS", 500),
            drain_s=_float(env, "SWITCHBOARD_DRAIN_S", 60.0),
            transcriber=env.get("SWITCHBOARD_TRANSCRIBER", "local"),
            stt_workers=_int(env, "SWITCHBOARD_STT_WORKERS", 1),
            stt_beam=_int(env, "SWITCHBOARD_STT_BEAM", 4),
            stt_bias=_float(env, "SWITCHBOARD_STT_BIAS", 0.3),
            live_queue=_int(env, "SWITCHBOARD_LIVE_QUEUE", 1000),
            log_level=env.get("SWITCHBOARD_LOG_LEVEL", "INFO").upper(),
            wisprflow_api_key=Secret(wispr_key) if wispr_key else None,
            wispr_ws_url=env.get("WISPR_WS_URL") or PRODUCTION_URL,
            deepgram_api_key=Secret(deepgram_key) if deepgram_key else None,
            deepgram_url=env.get("DEEPGRAM_URL") or None,
            stt_stall_s=_float(env, "SWITCHBOARD_STT_STALL_S", 4.0),
            wispr_stall_s=_float(env, "SWITCHBOARD_WISPR_STALL_S", 12.0),
            cloud_vad=env.get("SWITCHBOARD_CLOUD_VAD", "webrtc").lower(),
            stt_vocabulary=tuple(name.strip() for name in env.get("SWITCHBOARD_STT_VOCABULARY", "").split(",")
                                 if name.strip()),
            breaker_failures=_int(env, "SWITCHBOARD_BREAKER_FAILURES", 3),
            breaker_cooldown_s=_float(env, "SWITCHBOARD_BREAKER_COOLDOWN_S", 30.0),
            openai_api_key=_secret(env, "OPENAI_API_KEY"),
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            aws_s3_bucket=env.get("AWS_S3_BUCKET") or None,
            aws_region=env.get("AWS_REGION") or None,
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=_secret(env, "AWS_SECRET_ACCESS_KEY"),
            archive_retry_max_s=_float(env, "SWITCHBOARD_ARCHIVE_RETRY_MAX_S", 300.0),
            oncall_number=env.get("ONCALL_NUMBER") or None,
            twilio_api_url=env.get("TWILIO_API_URL") or None,
            job_lease_s=_float(env, "SWITCHBOARD_JOB_LEASE_S", 30.0),
            max_loop_lag_s=_float(env, "SWITCHBOARD_MAX_LOOP_LAG_S", 0.25),
            session_hours=_float(env, "SWITCHBOARD_SESSION_HOURS", 12.0),
            instance_id=env.get("SWITCHBOARD_INSTANCE_ID") or None,
            max_media_jump_ms=_int(env, "SWITCHBOARD_MAX_MEDIA_JUMP_MS", 5_000),
            max_media_speed=_float(env, "SWITCHBOARD_MAX_MEDIA_SPEED", 20.0),
            max_media_lead_s=_float(env, "SWITCHBOARD_MAX_MEDIA_LEAD_S", 60.0),
            stream_token_ttl_s=_float(env, "SWITCHBOARD_STREAM_TOKEN_TTL_S", 120.0),
            answer=_answer_mode(env),
            business_hours=_business_hours(env),
            operator_timeout_s=_int(env, "SWITCHBOARD_OPERATOR_TIMEOUT_S", 20),
            agent_profile=Path(profile).expanduser() if (profile := env.get("SWITCHBOARD_AGENT_PROFILE", "")
                                                         .strip()) else None,
        )


def _answer_mode(env: Mapping[str, str]) -> AnswerMode:
    try:
        return parse_answer_mode(env.get("SWITCHBOARD_ANSWER"))
    except AnswerConfigError as exc:
        raise ConfigError(str(exc)) from None


def _business_hours(env: Mapping[str, str]) -> BusinessHours | None:
    """None (unset) = always open."""
    hours = env.get("SWITCHBOARD_BUSINESS_HOURS", "").strip()
    try:
        return parse_business_hours(hours) if hours else None
    except AnswerConfigError as exc:
        raise ConfigError(str(exc)) from None


def load_local_secrets(data_dir: Path, *, create: bool) -> dict[str, str]:
    """The generated dev secrets of a data dir (created when asked and missing).

    The file is opened without following a symlink (one planted there could point our secrets anywhere, or feed
    us someone else's) and must be a regular file; its mode is made 0600 every time, not only on create.
    """
    path = data_dir / "secrets.json"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        fd = -1
    except OSError as exc:
        raise ConfigError(f"cannot read {path} (a symlink is refused): {exc}") from exc
    if fd >= 0:
        found = _read_secrets(fd, path)
        if found is not None:
            return found
    if not create:
        return {}
    made = {"twilio_auth_token": secrets.token_hex(16), "api_token": secrets.token_urlsafe(24)}
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # O_CREAT's mode does not apply to a file that already existed
        json.dump(made, fh)
    return made


def _read_secrets(fd: int, path: Path) -> dict[str, str] | None:
    """The secrets in an open ``secrets.json``, its mode tightened to 0600; None if it lacks them."""
    with os.fdopen(fd, "r") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fh.fileno(), 0o600)
        try:
            found = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    if isinstance(found, dict) and {"twilio_auth_token", "api_token"} <= found.keys():
        return {k: str(v) for k, v in found.items()}
    return None


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = env.get(name)
    return Secret(value) if value else None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def _check_ws_url(name: str, url: str) -> None:
    """Provider URLs are websocket URLs with a host; a typo must fail at start, not on the first call."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(f"{name} must be a ws:// or wss:// URL, got {url!r}")


def _bool(env: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0/true/false), got {raw!r}")
