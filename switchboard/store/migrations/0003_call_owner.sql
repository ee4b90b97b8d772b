-- Which instance holds a live call's media (its recording is on that instance's disk). A call an instance was
-- streaming when it died is never marked ended by its session; on restart the same instance finds its own such
-- calls here, finishes their recordings and starts their post-call work.

ALTER TABLE calls ADD COLUMN instance_id text;

CREATE INDEX calls_unended_by_instance ON calls (instance_id) WHERE ended_at IS NULL AND started_at IS NOT NULL;
