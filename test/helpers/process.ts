import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs the real relay-server binary (server/dist/bin.js, built by `npx tsc -b`) as a child
 * process: for what only a process shows (flags, exit codes, signals, restarts, several
 * instances on one database). RELAY_TEST_BIN points the tests at another build of it.
 */

export const BIN = process.env.RELAY_TEST_BIN || fileURLToPath(new URL('../../server/dist/bin.js', import.meta.url));

/** Settings the relay reads from the environment; none leaks in from the test run's own. */
const RELAY_VARIABLES = [
  'PORT',
  'HOST',
  'REAP_INTERVAL',
  'DATABASE_URL',
  'DATABASE_MAX_CONNECTIONS',
  'RELAY_DATA_DIR',
  'RELAY_MAX_BODY',
  'RELAY_STATEMENT_TIMEOUT',
  'RELAY_CONNECTION_TIMEOUT',
  'RELAY_ALLOWED_HOSTS',
  'RELAY_ALLOWED_ORIGINS',
  'RELAY_AUTH_TOKENS',
  'RELAY_AUTH_TOKENS_FILE',
  'RELAY_MAX_BATCH_SIZE',
  'RELAY_MAX_KEY_LENGTH',
  'RELAY_MAX_PAGE_SIZE',
  'RELAY_PROCESSES',
  'LOG_LEVEL',
];

export type Env = Record<string, string | undefined>;

/** The test process's environment without any relay setting, plus env (undefined: unset). */
export function relayEnv(env: Env = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  for (const name of RELAY_VARIABLES) delete out[name];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

function assertBuilt(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} does not exist: run \`npx tsc -b\` first`);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const running = new Set<ChildProcess>();

// A failed test must not leave a server running after the test run.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** SIGKILLs every relay process a test left running. For after() hooks. */
export async function killAll(): Promise<void> {
  const children = [...running];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

function track(child: ChildProcess): Promise<Exit> {
  running.add(child);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
}

/** What spawnRelay() throws when the process exits before it is ready (a refused start). */
export class RelayExitedError extends Error {
  constructor(readonly exit: Exit, readonly stdout: string, readonly stderr: string) {
    super(`relay-server exited (${JSON.stringify(exit)}) before the log line; stdout:\n${stdout}\nstderr:\n${stderr}`);
  }
}

export interface Finished extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs the binary to its exit (for --help and bad settings). */
export async function runRelay(args: string[], env: Env = {}, timeoutMs = 15_000): Promise<Finished> {
  assertBuilt();
  const child = spawn(process.execPath, [BIN, ...args], { env: relayEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await exited;
  clearTimeout(timer);
  // 'exit' can come before the pipes are drained.
  await Promise.all([once(child.stdout!, 'close'), once(child.stderr!, 'close')]);
  return { ...exit, stdout, stderr };
}

function once(stream: NodeJS.ReadableStream, event: string): Promise<void> {
  return new Promise((resolve) => {
    if ((stream as unknown as { closed?: boolean }).closed) resolve();
    else stream.once(event, () => resolve());
  });
}

export type LogLine = Record<string, unknown> & { msg?: string };

export interface RelayProcess {
  child: ChildProcess;
  /** From the start-up log line, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The start-up log line, parsed. */
  started: LogLine;
  /** Every JSON line the process wrote to stdout so far, parsed. */
  logs: LogLine[];
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<Exit>;
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends signal (once) and waits for the exit; SIGKILL after timeoutMs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** Waits for the exit without sending anything; SIGKILL and throw after timeoutMs. */
  exitWithin(timeoutMs: number): Promise<Exit>;
}

export interface SpawnOptions {
  /** Added to a clean environment: PORT=0, HOST=127.0.0.1, LOG_LEVEL=info, REAP_INTERVAL=0.1. */
  env?: Env;
  args?: string[];
  /** How long to wait for the start-up log line. */
  startTimeoutMs?: number;
  /**
   * 'health' (default): after the start-up line, also wait for GET /health to answer, so the
   * process is past its start-up code. 'log': return the moment the start-up line is read.
   */
  ready?: 'health' | 'log';
}

/**
 * Starts relay-server and resolves once it logged its start-up line (JSON with a `url`) on
 * stdout. Without DATABASE_URL in options.env it runs on the embedded database, so pass
 * RELAY_DATA_DIR (see embeddedDataDir()).
 */
export async function spawnRelay(options: SpawnOptions = {}): Promise<RelayProcess> {
  assertBuilt();
  const env = relayEnv({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', REAP_INTERVAL: '0.1', ...options.env });
  const child = spawn(process.execPath, [BIN, ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = track(child);
  let out = '';
  let err = '';
  let partial = '';
  const logs: LogLine[] = [];
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];

  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const text of lines) {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });

  const waitForLog = (match: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve: (l: LogLine) => (clearTimeout(timer), resolve(l)) };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching log line within ${timeoutMs} ms; stdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      waiters.push(waiter);
      // Read what it wrote before it exited (its reason) before giving up on it.
      void exited.then(async (exit) => {
        await Promise.all([once(child.stdout!, 'close'), once(child.stderr!, 'close')]);
        if (!waiters.includes(waiter)) return;
        waiters.splice(waiters.indexOf(waiter), 1);
        clearTimeout(timer);
        reject(new RelayExitedError(exit, out, err));
      });
    });
  };

  let started: LogLine;
  try {
    started = await waitForLog((l) => typeof l.url === 'string', options.startTimeoutMs ?? 30_000);
    if (options.ready !== 'log') {
      const res = await fetch(new URL('/health', started.url as string));
      await res.arrayBuffer();
    }
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }

  return {
    child,
    url: started.url as string,
    started,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
    async exitWithin(timeoutMs: number) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`relay-server did not exit within ${timeoutMs} ms; stdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

let template: Promise<string> | undefined;

/**
 * A new, empty embedded-database directory, already initialised and migrated. The first call
 * creates a template by starting and stopping the binary once (initdb of PGlite takes
 * seconds); later calls copy it. Remove the directory with removeDir().
 */
export async function embeddedDataDir(): Promise<string> {
  template ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relay-template-'));
    const relay = await spawnRelay({ env: { RELAY_DATA_DIR: dir }, startTimeoutMs: 60_000 });
    const exit = await relay.stop('SIGTERM');
    if (exit.code !== 0) throw new Error(`the template server exited with ${JSON.stringify(exit)}: ${relay.stderr()}`);
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  })();
  const source = await template;
  const dir = await mkdtemp(join(tmpdir(), 'relay-data-'));
  await cp(source, dir, { recursive: true });
  return dir;
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}
