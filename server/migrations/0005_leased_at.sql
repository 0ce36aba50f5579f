-- When the latest delivery of a job began (set with each new run_id; meaningful only while
-- run_id is set): a completion on any server can then tell how long the job was processed. A
-- heartbeat moves lease_expires_at, so that column cannot tell it. Not indexed, so that the
-- updates that set it stay HOT.
ALTER TABLE relay_jobs ADD COLUMN leased_at timestamptz;
