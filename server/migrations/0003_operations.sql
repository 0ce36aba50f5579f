-- relay-ts schema, version 3: operating queues (lookup, listing, counts, pause, replay,
-- retention). Never edit an applied migration.

-- A queue's settings. Queues are implicit (a job names its queue); a row exists once a queue
-- was paused. A paused queue keeps accepting jobs; none of its jobs is leased.
CREATE TABLE relay_queues (
  queue     text COLLATE "C" PRIMARY KEY,
  paused_at timestamptz           -- NULL: not paused
);

-- Counts per queue, kept without contention on the hot path: every statement that changes
-- jobs appends its net change per queue to relay_queue_count_deltas (a trigger, in the same
-- transaction, so counts and jobs never disagree), and the reaper folds the deltas into
-- relay_queue_counts. A reader sums the two under one snapshot. Counting the jobs themselves
-- grows with the queue; this grows with the number of queues and of recent statements.
-- "pending" is waiting plus scheduled: which of the two a job is changes with the clock, not
-- with a write, so the split is made when counts are read.
CREATE TABLE relay_queue_counts (
  queue     text COLLATE "C" PRIMARY KEY,
  pending   bigint NOT NULL DEFAULT 0,
  in_flight bigint NOT NULL DEFAULT 0,
  failed    bigint NOT NULL DEFAULT 0
);

CREATE TABLE relay_queue_count_deltas (
  queue     text COLLATE "C" NOT NULL,
  pending   bigint NOT NULL,
  in_flight bigint NOT NULL,
  failed    bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);

CREATE FUNCTION relay_count_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A heartbeat changes no count: the HAVING keeps such statements from writing anything.
  IF TG_OP = 'INSERT' THEN
    INSERT INTO relay_queue_count_deltas (queue, pending, in_flight, failed)
    SELECT queue, count(*) FILTER (WHERE run_id IS NULL), count(*) FILTER (WHERE run_id IS NOT NULL), 0
    FROM new_rows GROUP BY queue;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO relay_queue_count_deltas (queue, pending, in_flight, failed)
    SELECT queue, -count(*) FILTER (WHERE run_id IS NULL), -count(*) FILTER (WHERE run_id IS NOT NULL), 0
    FROM old_rows GROUP BY queue;
  ELSE
    INSERT INTO relay_queue_count_deltas (queue, pending, in_flight, failed)
    SELECT queue, sum(p), sum(f), 0
    FROM (SELECT queue, (run_id IS NULL)::int AS p, (run_id IS NOT NULL)::int AS f FROM new_rows
          UNION ALL
          SELECT queue, -(run_id IS NULL)::int, -(run_id IS NOT NULL)::int FROM old_rows) d
    GROUP BY queue
    HAVING sum(p) <> 0 OR sum(f) <> 0;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION relay_count_failed_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO relay_queue_count_deltas (queue, pending, in_flight, failed)
    SELECT queue, 0, 0, count(*) FROM new_rows GROUP BY queue;
  ELSE
    INSERT INTO relay_queue_count_deltas (queue, pending, in_flight, failed)
    SELECT queue, 0, 0, -count(*) FROM old_rows GROUP BY queue;
  END IF;
  RETURN NULL;
END $$;

-- TRUNCATE (by hand, or a test's reset) fires no DELETE trigger: take the counts to zero.
CREATE FUNCTION relay_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO relay_queue_count_deltas (queue, pending, in_flight, failed)
  SELECT queue,
         CASE WHEN TG_TABLE_NAME = 'relay_jobs' THEN -sum(pending) ELSE 0 END,
         CASE WHEN TG_TABLE_NAME = 'relay_jobs' THEN -sum(in_flight) ELSE 0 END,
         CASE WHEN TG_TABLE_NAME = 'relay_failed_jobs' THEN -sum(failed) ELSE 0 END
  FROM (SELECT queue, pending, in_flight, failed FROM relay_queue_counts
        UNION ALL
        SELECT queue, pending, in_flight, failed FROM relay_queue_count_deltas) c
  GROUP BY queue;
  RETURN NULL;
END $$;

CREATE TRIGGER relay_jobs_count_truncate AFTER TRUNCATE ON relay_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION relay_count_truncate();
CREATE TRIGGER relay_failed_jobs_count_truncate AFTER TRUNCATE ON relay_failed_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION relay_count_truncate();

CREATE TRIGGER relay_jobs_count_insert AFTER INSERT ON relay_jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION relay_count_jobs();
CREATE TRIGGER relay_jobs_count_update AFTER UPDATE ON relay_jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION relay_count_jobs();
CREATE TRIGGER relay_jobs_count_delete AFTER DELETE ON relay_jobs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION relay_count_jobs();
CREATE TRIGGER relay_failed_jobs_count_insert AFTER INSERT ON relay_failed_jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION relay_count_failed_jobs();
CREATE TRIGGER relay_failed_jobs_count_delete AFTER DELETE ON relay_failed_jobs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION relay_count_failed_jobs();

-- The counts of the jobs already stored (this migration runs in one transaction with the
-- server's lock on migrations; writers that do not wait for it are not relay-ts).
INSERT INTO relay_queue_counts (queue, pending, in_flight, failed)
SELECT queue, sum(pending), sum(in_flight), sum(failed)
FROM (SELECT queue, count(*) FILTER (WHERE run_id IS NULL) AS pending, count(*) FILTER (WHERE run_id IS NOT NULL) AS in_flight, 0 AS failed
      FROM relay_jobs GROUP BY queue
      UNION ALL
      SELECT queue, 0, 0, count(*) FROM relay_failed_jobs GROUP BY queue) c
GROUP BY queue;

-- Listing the jobs in flight of one queue in delivery order (run_id grows with each
-- delivery). Replaces the index on run_id alone, which served only the reaper's scan of all
-- jobs in flight: that scan reads this one just as well.
DROP INDEX relay_jobs_in_flight;
CREATE INDEX relay_jobs_in_flight ON relay_jobs (queue, run_id) WHERE run_id IS NOT NULL;

-- Retention and "failed before" scans.
CREATE INDEX relay_failed_jobs_failed_at ON relay_failed_jobs (failed_at);
