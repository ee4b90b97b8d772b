-- Stream tokens already used (switchboard/tokens.py): a token is single-use, and every instance sharing this
-- database refuses a second stream with it, also after a restart. Rows of long-expired tokens are deleted as new
-- ones are consumed (an expired token is refused on its expiry alone).

CREATE TABLE stream_tokens (
    nonce      text PRIMARY KEY,
    call_sid   text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stream_tokens_expiry ON stream_tokens (expires_at);
