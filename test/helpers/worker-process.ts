import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs a worker fixture (test/worker/fixtures/*.ts) in its own Node process through tsx,
 * for what only a process shows: being killed with SIGKILL, stopping on SIGTERM. A fixture
 * writes one JSON object per line to stdout, which the test waits on.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** The JSON lines written so far. */
  messages: Record<string, unknown>[];
  /** Resolves with the first line (seen or to come) that matches. */
  waitFor(match: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** Kills the process (SIGKILL) if it still runs, and waits for it. */
  kill(): Promise<void>;
}

export function spawnWorker(fixture: string, env: Record<string, string>): WorkerProcess {
  const script = fileURLToPath(new URL(`../worker/fixtures/${fixture}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages: Record<string, unknown>[] = [];
  const waiters: Array<() => void> = [];
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    let newline: number;
    while ((newline = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, newline).trim();
      out = out.slice(newline + 1);
      if (!line) continue;
      try {
        messages.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        messages.push({ text: line });
      }
      for (const wake of waiters.splice(0)) wake();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const wake of waiters.splice(0)) wake();
      resolve({ code, signal });
    }),
  );

  return {
    child,
    messages,
    exited,
    stderr: () => err,
    async waitFor(match, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(match);
        if (found) return found;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`the worker process exited (${child.exitCode ?? child.signalCode}) first; stderr:\n${err}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching line within ${timeoutMs} ms; lines: ${JSON.stringify(messages)}; stderr:\n${err}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
