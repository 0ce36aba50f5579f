-- relay-ts schema, version 2: Idempotency-Key. Never edit an applied migration.
--
-- The answer given to a request that carried an Idempotency-Key, stored in the same
-- transaction as the request's effect, so that either both exist or neither does. A key is
-- scoped to its operation; the same key with another request (fingerprint) is refused.
CREATE TABLE relay_idempotency_keys (
  scope       text COLLATE "C" NOT NULL,  -- the operation (and, once tokens exist, the token)
  key         text COLLATE "C" NOT NULL,
  fingerprint text        NOT NULL,       -- a hash of the method, route, query and body
  status      integer     NOT NULL,       -- the answer's status
  body        text,                       -- the answer's body (JSON), when it had one
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

-- What the reaper's purge of expired keys scans, oldest first.
CREATE INDEX relay_idempotency_keys_created ON relay_idempotency_keys (created_at);
