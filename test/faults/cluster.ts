import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.js';
import { closedPort } from '../helpers/net.js';
import { BIN, relayEnv, type Env } from '../helpers/process.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * N relay-server processes on one fresh PostgreSQL database, each behind two TCP proxies of
 * its own: one in front of it, which its clients use (so that a restarted server, on a new
 * port, keeps its address, and a killed one refuses connections as its port would), and one
 * between it and PostgreSQL (so that a fault cuts one server from the database and never
 * touches the shared PostgreSQL itself).
 */

export interface ClusterOptions {
  servers: number;
  /** REAP_INTERVAL of every server, seconds. Default 0.2. */
  reapInterval?: number;
  /** More environment for every server. */
  env?: Env;
}

export interface Memory {
  /** Resident set size of the process (VmRSS), bytes. */
  rssBytes: number;
  /** V8's old space in use (from /metrics), bytes: what a leak makes grow. */
  oldSpaceBytes: number;
}

/** One server's process. */
interface Running {
  child: ChildProcess;
  port: number;
  exited: Promise<void>;
  /** The last of what it wrote (stdout and stderr), for a failure's message. */
  tail(): string;
}

export interface ServerSlot {
  readonly index: number;
  /** The address its clients use (the front proxy's). */
  readonly url: string;
  readonly front: TcpProxy;
  readonly database: TcpProxy;
  /** The process serving now; undefined while it is down. */
  running: Running | undefined;
  /** How many times it was started. */
  starts: number;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

const TAIL_BYTES = 8192;

/** Starts the binary on a free port and waits until it answers /health (200, or 503 without its database). */
async function startProcess(databaseUrl: string, options: ClusterOptions): Promise<Running> {
  let lastError: unknown;
  // A port picked free can be taken before the server binds it: then it exits, and another is tried.
  for (let tries = 0; tries < 3; tries++) {
    const port = await closedPort();
    const env = relayEnv({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      REAP_INTERVAL: String(options.reapInterval ?? 0.2),
      // A line per request would cost the two cores more than the scenario itself.
      LOG_LEVEL: 'warn',
      ...options.env,
    });
    const child = spawn(process.execPath, ['--max-semi-space-size=32', BIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let tail = '';
    const keep = (chunk: string) => (tail = (tail + chunk).slice(-TAIL_BYTES));
    child.stdout!.setEncoding('utf8').on('data', keep);
    child.stderr!.setEncoding('utf8').on('data', keep);
    const exited = new Promise<void>((resolve) => child.once('exit', () => (children.delete(child), resolve())));
    const running: Running = { child, port, exited, tail: () => tail };
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status === 200 || res.status === 503) return running;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    lastError = new Error(`relay-server on port ${port} did not come up (exit ${child.exitCode ?? child.signalCode}):\n${tail}`);
    child.kill('SIGKILL');
    await exited;
  }
  throw lastError;
}

export class Cluster {
  private constructor(
    readonly db: FreshDatabase,
    readonly servers: ServerSlot[],
    private readonly options: ClusterOptions,
  ) {}

  /** A fresh database on the PostgreSQL of DATABASE_URL and `options.servers` servers on it. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const db = await freshDatabase('relay_faults');
    const target = new URL(db.url);
    const servers: ServerSlot[] = [];
    try {
      for (let index = 0; index < options.servers; index++) {
        const database = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
        // Retargeted at the server once it runs.
        const front = await startTcpProxy({ host: '127.0.0.1', port: 1 });
        servers.push({ index, url: `http://127.0.0.1:${front.port}`, front, database, running: undefined, starts: 0 });
      }
      const cluster = new Cluster(db, servers, options);
      // One at a time: the first applies the migrations, the others find them done.
      for (const slot of servers) await cluster.startServer(slot.index);
      return cluster;
    } catch (error) {
      for (const slot of servers) {
        if (slot.running) slot.running.child.kill('SIGKILL');
        await Promise.all([slot.front.close(), slot.database.close()]);
      }
      await db.drop();
      throw error;
    }
  }

  /** Every server's address, starting with server `first`: a client's order of preference. */
  urlsFrom(first: number): string[] {
    const n = this.servers.length;
    return Array.from({ length: n }, (_, i) => this.servers[(first + i) % n]!.url);
  }

  async startServer(index: number): Promise<void> {
    const slot = this.servers[index]!;
    if (slot.running) throw new Error(`server ${index} is running already`);
    const running = await startProcess(slot.database.proxiedUrl(this.db.url), this.options);
    slot.front.retarget({ host: '127.0.0.1', port: running.port });
    await slot.front.restore();
    slot.running = running;
    slot.starts++;
  }

  /** SIGKILL: connections to it reset, and its address refuses new ones until it starts again. */
  async kill(index: number): Promise<void> {
    const slot = this.servers[index]!;
    const running = slot.running;
    if (!running) return;
    slot.running = undefined;
    running.child.kill('SIGKILL');
    await Promise.all([running.exited, slot.front.cut('refuse')]);
  }

  /** SIGTERM: it answers what it holds and exits; its address refuses connections once it has. */
  async stop(index: number): Promise<void> {
    const slot = this.servers[index]!;
    const running = slot.running;
    if (!running) return;
    slot.running = undefined;
    running.child.kill('SIGTERM');
    const timer = setTimeout(() => running.child.kill('SIGKILL'), 20_000);
    await running.exited;
    clearTimeout(timer);
    if (running.child.exitCode !== 0) throw new Error(`server ${index} exited with ${running.child.exitCode ?? running.child.signalCode} on SIGTERM:\n${running.tail()}`);
    await slot.front.cut('refuse');
  }

  async restart(index: number): Promise<void> {
    await this.stop(index);
    await this.startServer(index);
  }

  /** Cuts server `index` from PostgreSQL: its connections reset, new ones refused (the database host down). */
  cutDatabase(index: number): Promise<void> {
    return this.servers[index]!.database.cut('refuse');
  }

  restoreDatabase(index: number): Promise<void> {
    return this.servers[index]!.database.restore();
  }

  /** The memory of server `index`'s process now. */
  async memory(index: number): Promise<Memory> {
    const running = this.servers[index]!.running;
    if (!running) throw new Error(`server ${index} is not running`);
    const status = await readFile(`/proc/${running.child.pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
    const metrics = await (await fetch(`http://127.0.0.1:${running.port}/metrics`)).text();
    const oldSpace = Number(/^nodejs_heap_space_size_used_bytes\{space="old"\} (\S+)/m.exec(metrics)?.[1]);
    return { rssBytes: rssKb * 1024, oldSpaceBytes: oldSpace };
  }

  /** A counter of server `index`'s /metrics, summed over its labels, or those series with `label` (`cause="lease_expired"`); 0 when absent. */
  async counter(index: number, name: string, label?: string): Promise<number> {
    const running = this.servers[index]!.running;
    if (!running) throw new Error(`server ${index} is not running`);
    const metrics = await (await fetch(`http://127.0.0.1:${running.port}/metrics`)).text();
    let sum = 0;
    for (const line of metrics.split('\n')) {
      if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
      if (label !== undefined && !line.includes(label)) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  /** What the servers wrote last, for a failure's message. */
  tails(): string {
    return this.servers.map((s) => `server ${s.index}: ${s.running?.tail() ?? '(down)'}`).join('\n');
  }

  /** Stops every server (SIGTERM, then SIGKILL), closes the proxies and drops the database. */
  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(async (slot) => {
        const running = slot.running;
        slot.running = undefined;
        if (running) {
          running.child.kill('SIGTERM');
          const timer = setTimeout(() => running.child.kill('SIGKILL'), 10_000);
          await running.exited;
          clearTimeout(timer);
        }
        await Promise.all([slot.front.close(), slot.database.close()]);
      }),
    );
    if (!process.env.RELAY_FAULTS_KEEP_DB) await this.db.drop();
  }
}
