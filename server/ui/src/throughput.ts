import type { QueueSummary, QueueThroughput, RelayClient } from '@relay-ts/client';

/**
 * Where the overview's throughput comes from, and what its columns say it is. The server
 * counts it (GET /v1/throughput): jobs enqueued, completed and failed per minute, summed over
 * every server of the database, so that the page shows the same whichever server answers.
 */
export interface ThroughputSource {
  /** What the figures are, as the column headers' titles and the page's hint say it. */
  readonly label: string;
  /** Over how many minutes, the current one included. */
  readonly minutes: number;
  /** Each queue's throughput, by name; a queue that had none is absent. */
  read(client: RelayClient): Promise<ReadonlyMap<string, QueueThroughput>>;
}

/** GET /v1/throughput: the server's per-minute counts. */
export class ServerThroughput implements ThroughputSource {
  readonly label: string;

  constructor(readonly minutes = 15) {
    this.label = `jobs in the last ${minutes} minutes, a bar per minute (the right-most is the current minute, still counting), counted by every server of the database and added every few seconds`;
  }

  async read(client: RelayClient): Promise<ReadonlyMap<string, QueueThroughput>> {
    const all = await client.throughput({ minutes: this.minutes });
    return new Map(all.map((t) => [t.queue, t]));
  }
}

/**
 * The overview's queues: those holding a job or paused, and those that only had throughput
 * (a queue whose jobs are done as fast as they come holds none, and is shown all the same).
 */
export function overviewQueues(queues: readonly QueueSummary[], throughput: ReadonlyMap<string, QueueThroughput>): QueueSummary[] {
  const listed = new Set(queues.map((q) => q.queue));
  const idle = [...throughput.keys()]
    .filter((queue) => !listed.has(queue))
    .map((queue): QueueSummary => ({ queue, waiting: 0, scheduled: 0, in_flight: 0, failed: 0, oldest_waiting_seconds: null, paused: false }));
  return [...queues, ...idle];
}
