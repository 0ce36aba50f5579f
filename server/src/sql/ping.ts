import type { Queryable, Statement } from '../db/index.js';

const PING: Statement = { name: 'relay_ping', text: 'SELECT 1' };

export async function ping(db: Queryable): Promise<void> {
  await db.query(PING);
}
