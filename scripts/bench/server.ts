/**
 * The relay server as a child process (`node server/dist/bin.js`), as it runs in production:
 * its CPU time is read from /proc/<pid>/stat, apart from the bench process's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processCpuSeconds } from './db.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const bins = new Map<string, string>();

/**
 * Copies the built server (dist, migrations, package.json, openapi.yaml) to a directory of
 * its own, once, and runs every server of the bench from there: a `tsc -b` elsewhere in the
 * repository during the run (a test suite) must not change the server between phases.
 */
function snapshotBin(root = ROOT): string {
  const known = bins.get(root);
  if (known) return known;
  const dir = mkdtempSync(join(tmpdir(), 'relay-bench-server-'));
  mkdirSync(join(dir, 'server'));
  for (const part of ['dist', 'migrations', 'package.json']) cpSync(join(root, 'server', part), join(dir, 'server', part), { recursive: true });
  cpSync(join(root, 'openapi.yaml'), join(dir, 'openapi.yaml'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'server', 'dist', 'bin.js');
  bins.set(root, bin);
  return bin;
}

/**
 * The node flags of the binary's `#!/usr/bin/env -S node <flags>` line: the server runs as
 * `relay-server` (and `npm start`) runs it.
 */
export function shebangFlags(bin: string): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0]!;
  const match = /^#!\/usr\/bin\/env\s+(?:-S\s+)?node((?:\s+\S+)*)\s*$/.exec(first);
  if (!match) throw new Error(`${bin}: unexpected first line ${JSON.stringify(first)}`);
  return match[1]!.trim().split(/\s+/).filter(Boolean);
}

export interface ServerOptions {
  databaseUrl: string;
  maxConnections: number;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[];
  /** Extra environment, e.g. RELAY_BENCH_DISABLE for an A/B. */
  env?: Record<string, string>;
  /** The checkout whose built server runs (an A/B against an earlier commit); default this one. */
  root?: string;
}

/** Servers still running: killed if the bench exits without stopping them (an error). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class ServerProcess {
  private exited: Promise<string>;
  private stderrTail: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    exited: Promise<string>,
    stderrTail: string[],
  ) {
    this.exited = exited;
    this.stderrTail = stderrTail;
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: ServerOptions): Promise<ServerProcess> {
    const bin = snapshotBin(options.root);
    const child = spawn(process.execPath, [...shebangFlags(bin), ...(options.nodeArgs ?? []), bin], {
      env: {
        ...process.env,
        DATABASE_URL: options.databaseUrl,
        PORT: '0',
        HOST: '127.0.0.1',
        REAP_INTERVAL: '1',
        DATABASE_MAX_CONNECTIONS: String(options.maxConnections),
        LOG_LEVEL: 'info',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stderrTail: string[] = [];
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderrTail.push(chunk);
      if (stderrTail.length > 20) stderrTail.shift();
      process.stderr.write(`[server] ${chunk}`);
    });
    live.add(child);
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => {
        live.delete(child);
        resolve(signal ? `signal ${signal}` : String(code));
      }),
    );
    const lines = createInterface({ input: child.stdout! });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('relay server did not start within 30 s')), 30_000);
      let started = false;
      lines.on('line', (line) => {
        // The request log (a line per request at info) is not the bench's business: not parsed.
        if (started && line.startsWith('{"level":30')) return;
        let entry: { url?: string; level?: number; msg?: string } | undefined;
        try {
          entry = JSON.parse(line);
        } catch {
          entry = undefined;
        }
        if (!started && entry?.url) {
          started = true;
          clearTimeout(timer);
          resolve(entry.url);
        } else if (entry === undefined || (entry.level ?? 0) >= 40) {
          // Warnings and errors matter to the bench (e.g. 429s from an exhausted pool).
          process.stderr.write(`[server] ${line}\n`);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        if (!started) reject(new Error(`relay server exited with ${code} before starting: ${stderrTail.join('')}`));
      });
    });
    return new ServerProcess(child, url, exited, stderrTail);
  }

  /**
   * CPU seconds (user + system, all threads) the server has used so far, with those of its
   * live child processes (the server processes of --processes N).
   */
  cpuSeconds(): number {
    let children: number[] = [];
    try {
      children = readFileSync(`/proc/${this.pid}/task/${this.pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    } catch {
      // Not Linux, or the process is gone: its own time only.
    }
    return children.reduce((sum, pid) => sum + processCpuSeconds(pid), processCpuSeconds(this.pid));
  }

  /** SIGTERM, then wait for a clean exit (the pool closes, so its backends flush their statistics). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    if (code !== '0') throw new Error(`relay server exited with ${code}: ${this.stderrTail.join('')}`);
  }
}
