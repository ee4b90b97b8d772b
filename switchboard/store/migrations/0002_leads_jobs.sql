-- Extractions (versioned per call), leads (deduplicated by caller number) and the durable post-call job queue.

CREATE TABLE extractions (
    id              bigserial PRIMARY KEY,
    call_sid        text NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version >= 1),
    final           boolean NOT NULL DEFAULT false,   -- the post-call extraction; at most one per call
    data            jsonb NOT NULL,
    source          text NOT NULL CHECK (source IN ('openai', 'offline')),
    model           text,
    fallback_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_sid, version)
);

-- A retried final-extraction job finds the stored one instead of adding a version.
CREATE UNIQUE INDEX extractions_one_final ON extractions (call_sid) WHERE final;

-- One *open* lead per caller number: a repeat caller updates it, every call is linked in lead_calls. A closed lead
-- stays as it was and the next call from that number opens a new one. Withheld numbers (phone NULL) are never
-- merged. call_sid is the latest call of the lead.
CREATE TABLE leads (
    id              bigserial PRIMARY KEY,
    call_sid        text NOT NULL UNIQUE REFERENCES calls (call_sid) ON DELETE CASCADE,
    phone           text,
    name            text,
    callback_number text,
    address         text,
    postcode        text,
    urgency         text,
    issue_category  text,
    segment         text,
    summary         text,
    status          text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'contacted', 'closed')),
    call_count      integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX leads_phone ON leads (phone);
CREATE UNIQUE INDEX leads_open_phone ON leads (phone) WHERE phone IS NOT NULL AND status <> 'closed';

CREATE TABLE lead_calls (
    call_sid   text PRIMARY KEY REFERENCES calls (call_sid) ON DELETE CASCADE,   -- a call feeds one lead
    lead_id    bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX lead_calls_lead ON lead_calls (lead_id, created_at);

-- Durable post-call work. A job is claimed with FOR UPDATE SKIP LOCKED and leased until locked_until; a worker
-- that dies leaves the lease to expire and the job is claimed again (at-least-once). attempts counts claims, so
-- (id, attempts) identifies one claim and fences late completions of an expired one.
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    call_sid     text,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    dedupe_key   text UNIQUE,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 8 CHECK (max_attempts >= 1),
    next_run_at  timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    locked_by    text,
    last_error   text,
    result       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_status_next_run ON jobs (status, next_run_at);
CREATE INDEX jobs_call_sid ON jobs (call_sid) WHERE call_sid IS NOT NULL;

-- Wake idle workers at once instead of at their next poll; the payload is the job's kind.
CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchboard_jobs', NEW.kind);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_notify();
