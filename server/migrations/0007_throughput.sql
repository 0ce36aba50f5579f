-- relay-ts schema, version 7: throughput per queue and minute, for GET /v1/throughput and the
-- dashboard. Never edit an applied migration.

-- Jobs enqueued, completed and failed (retries used up) per queue and minute, summed over
-- every server of the database. Each server counts in memory what its requests and its reaper
-- did, and adds its counts here every few seconds (--throughput-flush-interval), so that no
-- statement of the request path writes here. `minute` is the start of the minute (UTC) in
-- which the server saw the outcome. The reaper deletes buckets older than the hour the API
-- serves.
CREATE TABLE relay_queue_throughput (
  queue     text COLLATE "C" NOT NULL,
  minute    timestamptz NOT NULL,
  enqueued  bigint NOT NULL DEFAULT 0,
  completed bigint NOT NULL DEFAULT 0,
  failed    bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, minute)
);

-- The listing of every queue's recent minutes, and the pruning of old ones, by time.
CREATE INDEX relay_queue_throughput_minute ON relay_queue_throughput (minute);
