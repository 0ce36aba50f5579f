import type { Queryable, Statement } from '../db/index.js';

const NOTIFY: Statement = {
  name: 'relay_notify',
  // Params: $1 channel, $2 payloads. Its own statement, after the change committed: NOTIFY
  // takes a database-wide lock at commit, which would stop concurrent enqueues from sharing a
  // WAL flush (group commit) if every enqueue notified in its own transaction.
  text: 'SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p',
};

export async function notify(db: Queryable, channel: string, payloads: string[]): Promise<void> {
  await db.query(NOTIFY, [channel, payloads]);
}
