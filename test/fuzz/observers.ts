import { Worker } from 'node:worker_threads';

/**
 * A /health prober on a thread of its own: the server under test runs in the test's process,
 * so a prober on the same event loop would stop with it and never see a freeze. This one
 * keeps asking, like a load balancer would, and reports the slowest answer.
 */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, everyMs } = workerData;
let worst = 0, count = 0, failures = [], current = Promise.resolve(), stopped = false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function probe() {
  const started = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(120000) });
    const text = await res.text();
    if (res.status !== 200) failures.push('/health answered ' + res.status + ': ' + text.slice(0, 200));
  } catch (err) {
    failures.push('/health did not answer: ' + err.message);
  }
  worst = Math.max(worst, performance.now() - started);
  count++;
}
(async () => {
  while (!stopped) {
    current = probe();
    await current;
    await sleep(everyMs);
  }
})();
parentPort.on('message', async (message) => {
  // A probe under way is waited for: it may be the one a request just held up.
  await current;
  parentPort.postMessage({ worst, count, failures });
  worst = 0;
  failures = [];
  if (message === 'stop') {
    stopped = true;
    parentPort.close();
  }
});
`;

export interface ProbeReport {
  /** Slowest answer since the last report, in ms. */
  worst: number;
  /** Probes answered since the start. */
  count: number;
  failures: string[];
}

export class HealthProber {
  private readonly worker: Worker;
  private pending: Array<(r: ProbeReport) => void> = [];

  constructor(baseUrl: string, everyMs = 200) {
    this.worker = new Worker(PROBER, { eval: true, workerData: { url: new URL('/health', baseUrl).href, everyMs } });
    this.worker.on('message', (r: ProbeReport) => this.pending.shift()?.(r));
    this.worker.unref();
  }

  /** What the probes saw since the last report, once the probe under way has answered. */
  report(): Promise<ProbeReport> {
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.worker.postMessage('report');
    });
  }

  async stop(): Promise<ProbeReport> {
    const last = await new Promise<ProbeReport>((resolve) => {
      this.pending.push(resolve);
      this.worker.postMessage('stop');
    });
    await this.worker.terminate();
    return last;
  }
}

/**
 * What the fuzz traffic did to which job, by (queue, id), from the answers it got: so that,
 * at the end, the jobs in the database can be held against the requests that were refused
 * and the ones that were accepted.
 */
export interface KeyHistory {
  queue: string;
  id: string;
  /** The last event wins: a job accepted, then completed, is gone. */
  last: 'accepted' | 'gone' | undefined;
  everAccepted: boolean;
  /** The first requests that named this job and were refused, with their answers, for the report. */
  refusedBy: string[];
}

export class Ledger {
  readonly keys = new Map<string, KeyHistory>();

  private entry(queue: string, id: string): KeyHistory {
    const key = JSON.stringify([queue, id]);
    let e = this.keys.get(key);
    if (!e) this.keys.set(key, (e = { queue, id, last: undefined, everAccepted: false, refusedBy: [] }));
    return e;
  }

  accepted(queue: string, id: string): void {
    const e = this.entry(queue, id);
    e.last = 'accepted';
    e.everAccepted = true;
  }

  refused(queue: string, id: string, request: string): void {
    const e = this.entry(queue, id);
    if (e.refusedBy.length < 3) e.refusedBy.push(request);
  }

  gone(queue: string, id: string): void {
    const e = this.entry(queue, id);
    e.last = 'gone';
  }

  get(queue: string, id: string): KeyHistory | undefined {
    return this.keys.get(JSON.stringify([queue, id]));
  }
}
