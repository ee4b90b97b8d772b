-- A recording cut short by a write error (a full disk, an I/O error): the call itself went on and ended normally,
-- the WAV holds what reached the disk, with a valid header. Never reset once set.

ALTER TABLE calls ADD COLUMN recording_incomplete boolean NOT NULL DEFAULT false;
