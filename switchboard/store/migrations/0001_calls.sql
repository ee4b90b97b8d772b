-- Calls and their final transcript segments.
-- A row may be created by whichever Twilio request arrives first (voice webhook, status callback or media
-- stream), so everything except call_sid is nullable and filled in as it becomes known.

CREATE TABLE calls (
    id               bigserial PRIMARY KEY,
    call_sid         text NOT NULL UNIQUE,
    account_sid      text,
    from_number      text,
    to_number        text,
    direction        text,
    mode             text CHECK (mode IN ('operator', 'voicemail', 'agent')),
    status           text,
    status_seq       integer,           -- highest status-callback SequenceNumber applied
    created_at       timestamptz NOT NULL DEFAULT now(),
    answered_at      timestamptz,
    started_at       timestamptz,       -- media stream start
    ended_at         timestamptz,
    duration_s       integer,           -- Twilio CallDuration
    media_ms         bigint,            -- audio received, in media time
    stream_sid       text,
    end_reason       text,
    recording_key    text,
    recording_status text,
    providers        text[] NOT NULL DEFAULT '{}',
    stats            jsonb
);

CREATE TABLE transcript_segments (
    id          bigserial PRIMARY KEY,
    call_sid    text NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
    track       text NOT NULL CHECK (track IN ('inbound', 'outbound')),
    seq         integer NOT NULL,
    start_ms    integer NOT NULL,
    end_ms      integer NOT NULL,
    text        text NOT NULL,
    provider    text NOT NULL,
    confidence  real,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_sid, track, seq)
);

CREATE INDEX transcript_segments_call_start ON transcript_segments (call_sid, start_ms);
