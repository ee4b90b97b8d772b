-- A call may have several media streams: a transfer's <Dial> forks a new one, an operator's missed <Dial> hands
-- over to the agent's <Connect><Stream>, a replay reuses a CallSid. Each is a part of the call: its media time 0
-- sits at offset_ms on the call's one timeline (segment times, the joined recording), its segments are keyed by
-- part (their seq restarts per stream), and the final extraction is redone after each part (one final per part;
-- the latest version is the call's).

CREATE TABLE call_streams (
    call_sid      text NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
    part          integer NOT NULL CHECK (part >= 1),
    stream_sid    text NOT NULL,
    offset_ms     bigint NOT NULL CHECK (offset_ms >= 0),
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    media_ms      bigint,            -- this stream's own length (its media time)
    recording_key text,
    end_reason    text,
    PRIMARY KEY (call_sid, part),
    UNIQUE (call_sid, stream_sid)
);

ALTER TABLE transcript_segments ADD COLUMN part integer NOT NULL DEFAULT 1;
ALTER TABLE transcript_segments DROP CONSTRAINT transcript_segments_call_sid_track_seq_key;
ALTER TABLE transcript_segments ADD CONSTRAINT transcript_segments_call_part_track_seq UNIQUE (call_sid, part, track, seq);

ALTER TABLE extractions ADD COLUMN part integer NOT NULL DEFAULT 1;
DROP INDEX extractions_one_final;
CREATE UNIQUE INDEX extractions_one_final_per_part ON extractions (call_sid, part) WHERE final;
