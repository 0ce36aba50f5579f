-- relay-ts schema, version 1. Never edit an applied migration; add the next file instead.
--
-- (queue, id) is the key and every hot statement names one queue, so the tables can be
-- distributed by queue (Citus) without changing the SQL.
-- COLLATE "C" makes the key comparisons byte comparisons: cheaper, and identical on every host.

CREATE SEQUENCE relay_job_seq;   -- enqueue order: the FIFO tie-break among equal run_at
CREATE SEQUENCE relay_run_seq;   -- one value per delivery: the lease fencing token (run_id)

CREATE TABLE relay_jobs (
  queue            text COLLATE "C" NOT NULL,
  id               text COLLATE "C" NOT NULL,
  timeout          integer     NOT NULL CHECK (timeout >= 0),
  max_retries      integer     NOT NULL DEFAULT 0,
  retries          integer     NOT NULL DEFAULT 0,  -- retries used: lease expiries and failures
  attempt          integer     NOT NULL DEFAULT 0,  -- deliveries so far
  payload          jsonb       NOT NULL DEFAULT 'null',
  state            jsonb,                           -- NULL: no state stored
  run_at           timestamptz NOT NULL DEFAULT now(),
  seq              bigint      NOT NULL DEFAULT nextval('relay_job_seq'),
  run_id           bigint,                          -- NOT NULL exactly while in flight
  lease_expires_at timestamptz,                     -- set exactly while in flight
  enqueued_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, id)
) WITH (
  -- Heartbeats rewrite rows constantly; free space on each page lets them be HOT updates.
  fillfactor = 80,
  -- A queue table churns: vacuum after a small fraction of dead rows, not the default 20%.
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_analyze_scale_factor = 0.02
);

-- What `next` scans: the waiting jobs of one queue in delivery order. Heartbeats touch
-- neither these columns nor the predicate, so they stay HOT.
CREATE INDEX relay_jobs_waiting ON relay_jobs (queue, run_at, seq) WHERE run_id IS NULL;

-- What the reaper scans: only the jobs in flight. lease_expires_at is deliberately not a key
-- here (a heartbeat changes it on every call, which would make every heartbeat a non-HOT
-- update); the in-flight set is small, so filtering it by expiry is cheap.
CREATE INDEX relay_jobs_in_flight ON relay_jobs (run_id) WHERE run_id IS NOT NULL;

-- Jobs whose retries are used up. Kept with their last state and the reason; never deleted
-- by relay. A job id may fail, be enqueued again and fail again, hence the surrogate key.
CREATE TABLE relay_failed_jobs (
  failure_id  bigserial PRIMARY KEY,
  queue       text COLLATE "C" NOT NULL,
  id          text COLLATE "C" NOT NULL,
  timeout     integer     NOT NULL,
  max_retries integer     NOT NULL,
  attempts    integer     NOT NULL,
  payload     jsonb       NOT NULL,
  state       jsonb,
  run_at      timestamptz NOT NULL,
  enqueued_at timestamptz NOT NULL,
  reason      text        NOT NULL,
  failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX relay_failed_jobs_queue ON relay_failed_jobs (queue, failure_id);
CREATE INDEX relay_failed_jobs_job ON relay_failed_jobs (queue, id);
