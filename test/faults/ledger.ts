import { sql } from '../helpers/postgres.js';

/**
 * The ledger of a fault scenario: every id a producer sent and every one accepted (202), every
 * delivery of a job (its run_id, when its lease began and was renewed at the latest, when its
 * handler ran, how it ended) and every completion; and the reconciliation that ends each
 * scenario, against the database:
 *
 * - every accepted id was completed exactly once, or is among the failed jobs;
 * - no two deliveries of one id overlap: the second came after the first's lease had ended
 *   (unless the first's holder released the job, by completing or failing it), and its handler
 *   started after the first's had stopped (returned, aborted, or its process killed);
 * - nothing is unaccounted for: no job is left waiting or in flight, no delivery is of an id no
 *   producer sent.
 *
 * A worker killed while its completion was on its way never heard whether it went through. The
 * server's own record says: each batch of completions carries an Idempotency-Key, and its
 * answer (which jobs it completed, with their run_id) is stored in the transaction that
 * removed them. Those count as completions too.
 */

export interface Delivery {
  id: string;
  run: string;
  /** Who held it (a worker process's name, or a consumer's). */
  holder: string;
  /** The lease lasts `timeout` s from the request that began or last renewed it. */
  timeoutMs: number;
  /** When the poll that brought it was sent: its lease began after this. */
  leaseSent: number;
  /** When that poll's answer came: the server had handed the job out before this. */
  received: number;
  /** When each answered heartbeat of it was sent. */
  renewals: number[];
  attempt?: number;
  /** Its handler started, and returned (also after an abort). */
  started?: number;
  returned?: number;
  completed?: number;
  /** Its failure was recorded (the job released to a retry, or to the failed jobs). */
  failed?: number;
  /** The worker let go of it: the server said so, or its lease clock ran out. */
  lost?: number;
  lostWhy?: string;
  /** Its process was killed. */
  killed?: number;
  /** A completion or failure that could not be confirmed. */
  unconfirmed?: { op: string; uncertain: boolean };
}

export interface Reconciliation {
  accepted: number;
  completed: number;
  failed: number;
  /** Accepted, and neither completed, failed, nor left in the queue: must be 0. */
  lost: number;
  /** Pairs of deliveries of one id that overlapped: must be 0. */
  overlapping: number;
  /** Ids completed by two deliveries: must be 0. */
  completedTwice: number;
  /** Jobs still waiting or in flight when the scenario ended, and deliveries of ids no one sent: must be 0. */
  unaccounted: number;
  deliveries: number;
  /** Deliveries after the first (lease expiries, failures retried). */
  redeliveries: number;
  /** Deliveries whose worker lost the lease, and why (the server's 404, or the lease clock), by count. */
  leasesLost: number;
  leaseLostCauses: Record<string, number>;
  /** Enqueues that ended in an error (not accepted); their ids may still have been stored. */
  enqueueErrors: number;
  /** Examples of what went wrong, for the failure message. */
  problems: string[];
}

export class Ledger {
  /** id -> when it was sent. */
  readonly attempted = new Map<string, number>();
  readonly accepted = new Set<string>();
  enqueueErrors = 0;
  /** run_id -> delivery (run ids are unique across a database). */
  readonly deliveries = new Map<string, Delivery>();

  delivery(run: string, init: () => Delivery): Delivery {
    let d = this.deliveries.get(run);
    if (!d) this.deliveries.set(run, (d = init()));
    return d;
  }

  /** Reads one JSON line of a worker process (fixtures/ledger-worker.ts). */
  record(holder: string, line: Record<string, any>): void {
    if (typeof line.run !== 'string') return;
    const d = this.delivery(line.run, () => ({ id: line.id, run: line.run, holder, timeoutMs: 0, leaseSent: 0, received: 0, renewals: [] }));
    switch (line.e) {
      case 'lease':
        d.timeoutMs = line.timeout * 1000;
        d.leaseSent = line.sent;
        d.received = line.got;
        break;
      case 'renew':
        d.renewals.push(line.sent);
        break;
      case 'start':
        d.started = line.t;
        d.attempt = line.att;
        break;
      case 'end':
        d.returned = line.t;
        break;
      case 'done':
        d.completed = line.t;
        break;
      case 'failed':
        d.failed = line.t;
        break;
      case 'lost':
        d.lost = line.t;
        d.lostWhy = line.why;
        break;
      case 'reqerr':
        d.unconfirmed = { op: line.op, uncertain: line.uncertain };
        break;
    }
  }

  /** A worker process was killed at `at`: whatever it held stopped then. */
  killed(holder: string, at: number): void {
    for (const d of this.deliveries.values()) if (d.holder === holder && d.killed === undefined) d.killed = at;
  }

  /** The deliveries of each id, in the order they were handed out. */
  byId(): Map<string, Delivery[]> {
    const out = new Map<string, Delivery[]>();
    for (const d of this.deliveries.values()) {
      const list = out.get(d.id) ?? [];
      list.push(d);
      out.set(d.id, list);
    }
    for (const list of out.values()) list.sort((x, y) => x.received - y.received || x.leaseSent - y.leaseSent);
    return out;
  }

  /** Reconciles the ledger with what the database holds of `queue` now. */
  async reconcile(databaseUrl: string, queue: string): Promise<Reconciliation> {
    const live = new Set((await sql<{ id: string }>(databaseUrl, 'SELECT id FROM relay_jobs WHERE queue = $1', [queue])).map((r) => r.id));
    const failedRows = await sql<{ id: string }>(databaseUrl, 'SELECT id FROM relay_failed_jobs WHERE queue = $1', [queue]);
    const failed = new Set(failedRows.map((r) => r.id));
    // The deliveries the server completed, as the answers it remembers for their keys say.
    const answers = await sql<{ body: string }>(databaseUrl, `SELECT body FROM relay_idempotency_keys WHERE status = 200 AND body LIKE '%"not_found"%'`);
    for (const { body } of answers) {
      for (const ref of (JSON.parse(body) as { completed: Array<{ queue: string; job_id: string; run_id?: string }> }).completed) {
        if (ref.queue !== queue || ref.run_id === undefined) continue;
        const d = this.deliveries.get(ref.run_id);
        if (d && d.completed === undefined) d.completed = d.returned ?? d.received;
      }
    }
    const problems: string[] = [];
    const note = (text: string) => {
      if (problems.length < 20) problems.push(text);
    };
    const byId = this.byId();

    let overlapping = 0;
    let completedTwice = 0;
    const completed = new Set<string>();
    for (const [id, list] of byId) {
      const completions = list.filter((d) => d.completed !== undefined);
      if (completions.length > 0) completed.add(id);
      if (completions.length > 1) {
        completedTwice++;
        note(`${id} completed by ${completions.length} deliveries: ${completions.map((d) => `${d.holder}/${d.run}`).join(', ')}`);
      }
      for (let i = 1; i < list.length; i++) {
        const [first, second] = [list[i - 1]!, list[i]!];
        const why = overlap(first, second);
        if (why) {
          overlapping++;
          note(`${id}: ${why}`);
        }
      }
    }

    let lost = 0;
    for (const id of this.accepted) {
      if (completed.has(id) || failed.has(id) || live.has(id)) continue;
      lost++;
      note(`${id} accepted at ${this.attempted.get(id)}, never completed nor failed, and not in the queue (${byId.get(id)?.length ?? 0} deliveries)`);
    }
    let unaccounted = live.size;
    for (const id of live) note(`${id} still waiting or in flight at the end`);
    for (const id of byId.keys()) {
      if (!this.attempted.has(id)) {
        unaccounted++;
        note(`${id} was delivered but no producer sent it`);
      }
    }
    const deliveries = this.deliveries.size;
    return {
      accepted: this.accepted.size,
      completed: [...this.accepted].filter((id) => completed.has(id)).length,
      failed: [...this.accepted].filter((id) => failed.has(id)).length,
      lost,
      overlapping,
      completedTwice,
      unaccounted,
      deliveries,
      redeliveries: deliveries - byId.size,
      leasesLost: [...this.deliveries.values()].filter((d) => d.lost !== undefined).length,
      leaseLostCauses: causes([...this.deliveries.values()].flatMap((d) => (d.lost === undefined ? [] : [d.lostWhy ?? 'unknown']))),
      enqueueErrors: this.enqueueErrors,
      problems,
    };
  }
}

/** The lease of a delivery ended no sooner than this: `timeout` after the last request that began or renewed it was sent. */
export function leaseEndAtLeast(d: Delivery): number {
  return Math.max(d.leaseSent, ...d.renewals) + d.timeoutMs;
}

/** When the holder of a delivery stopped running it (its handler returned or was aborted, or its process died). */
function stoppedAt(d: Delivery): number | undefined {
  const ends = [d.returned, d.lost, d.killed].filter((t): t is number => t !== undefined);
  if (d.started === undefined) return ends.length > 0 ? Math.min(...ends) : d.received;
  return ends.length > 0 ? Math.min(...ends) : undefined;
}

/** Why `second` overlaps `first` (two deliveries of one job, in order), or undefined when it does not. */
export function overlap(first: Delivery, second: Delivery): string | undefined {
  // A holder that completed or failed the job released it before its lease ended; one that
  // was killed, or could not confirm, after its handler returned may have, from then on.
  const unsure = first.killed !== undefined || first.unconfirmed !== undefined;
  const released = first.completed ?? first.failed ?? (unsure ? first.returned : undefined);
  const leaseEnd = leaseEndAtLeast(first);
  if ((released === undefined || released > second.received) && second.received < leaseEnd) {
    return `${second.holder}/${second.run} was handed out ${leaseEnd - second.received} ms before the lease of ${first.holder}/${first.run} ended`;
  }
  if (second.started !== undefined) {
    const stopped = stoppedAt(first);
    if (stopped === undefined || stopped > second.started) {
      return `${second.holder}/${second.run} started while ${first.holder}/${first.run} still ran (${stopped === undefined ? 'it never stopped' : `it stopped ${stopped - second.started} ms later`})`;
    }
  }
  return undefined;
}

/** Counts of each text, with run-specific numbers (ids, run ids, ports) taken out so that alike causes add up. */
function causes(texts: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const text of texts) {
    const key = text.replace(/\d+/g, 'N');
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
