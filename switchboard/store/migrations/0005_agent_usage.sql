-- What an agent call cost and how fast it answered: usage per provider (model tokens, TTS characters, STT seconds)
-- and the agent's voice-to-voice latency of every turn (ms of media time). Both stay NULL on calls without the agent.

ALTER TABLE calls ADD COLUMN usage jsonb;
ALTER TABLE calls ADD COLUMN turn_latencies_ms integer[];
