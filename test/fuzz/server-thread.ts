import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { startRelay } from '../helpers/relay.js';

/**
 * The relay server under fuzz, started with startRelay() on a worker thread of the test's
 * process: its heap is then its own, so the growth measured is the server's and not the
 * generator's, the ledger's or the HTTP client's; and its event loop is its own, so /health
 * answers late only when the server is slow, not when the test is busy.
 */

type Request = { kind: 'heap' } | { kind: 'close' };
type Reply = { kind: 'started'; url: string } | { kind: 'heap'; bytes: number } | { kind: 'closed' } | { kind: 'failed'; message: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const reply = (r: Reply) => port.postMessage(r);
  startRelay().then(
    (server) => {
      reply({ kind: 'started', url: server.url });
      port.on('message', async (m: Request) => {
        if (m.kind === 'heap') {
          for (let i = 0; i < 3; i++) {
            gc();
            await new Promise((r) => setTimeout(r, 20));
          }
          reply({ kind: 'heap', bytes: process.memoryUsage().heapUsed });
        } else {
          await server.close();
          reply({ kind: 'closed' });
        }
      });
    },
    (err: Error) => reply({ kind: 'failed', message: err.stack ?? err.message }),
  );
}

export class ServerThread {
  private readonly waiting: Array<(r: Reply) => void> = [];

  private constructor(
    private readonly worker: Worker,
    readonly url: string,
  ) {
    worker.on('message', (r: Reply) => this.waiting.shift()?.(r));
  }

  static async start(): Promise<ServerThread> {
    // The thread loads this TypeScript file itself, through tsx as the tests do (Node 20 does
    // not carry the main thread's loader hooks over to a worker).
    const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(boot, { eval: true });
    const first = await new Promise<Reply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (first.kind !== 'started') {
      await worker.terminate();
      throw new Error(`the relay server did not start: ${first.kind === 'failed' ? first.message : first.kind}`);
    }
    return new ServerThread(worker, first.url);
  }

  private ask(request: Request): Promise<Reply> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.worker.postMessage(request);
    });
  }

  /** The server's heap after full collections, in bytes. */
  async heap(): Promise<number> {
    const r = await this.ask({ kind: 'heap' });
    return r.kind === 'heap' ? r.bytes : NaN;
  }

  async close(): Promise<void> {
    await this.ask({ kind: 'close' });
    await this.worker.terminate();
  }
}
