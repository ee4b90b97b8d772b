-- Dashboard sign-in sessions. The cookie holds a random value; only its SHA-256 is stored, so a database dump
-- cannot be replayed as a session. token_tag ties a session to the API token it was opened with: rotating
-- SWITCHBOARD_API_TOKEN ends every session. Sign-out sets revoked_at.

CREATE TABLE web_sessions (
    id_hash    bytea PRIMARY KEY,
    csrf       text NOT NULL,
    token_tag  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
