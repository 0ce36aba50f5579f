/**
 * A busy host on demand (bench --load): processes that spin on the CPU beside the bench, at
 * the bench's own priority, so that the relay server, PostgreSQL and the bench get only a
 * share of the cores and their wake-ups wait behind the spinners, as on a host shared with
 * other work. Each spinner yields for a moment now and then, as a real busy neighbour
 * (builds, tests) does, rather than holding a core outright.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';

// Spins about 50 ms, sleeps about 5 ms, until killed.
const SPINNER = `
const spin = () => { const end = Date.now() + 50; while (Date.now() < end); setTimeout(spin, 5); };
spin();
`;

export interface Load {
  processes: number;
  stop(): Promise<void>;
}

/** Starts `processes` spinners (default: one per core). */
export function startLoad(processes = os.availableParallelism?.() ?? os.cpus().length): Load {
  const children: ChildProcess[] = [];
  for (let i = 0; i < processes; i++) {
    children.push(spawn(process.execPath, ['-e', SPINNER], { stdio: 'ignore' }));
  }
  return {
    processes,
    async stop() {
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
    },
  };
}
