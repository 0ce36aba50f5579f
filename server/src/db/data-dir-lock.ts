import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../config.js';

/*
 * One embedded data directory, one process. PGlite does not guard its directory: two servers
 * on it both start, lease the same jobs and overwrite each other's writes. A lock file in the
 * directory, created with O_EXCL and naming its holder, keeps a second server out. It is
 * released at close; one left behind by a crash is stale once its holder is gone, and is taken
 * over, so a supervisor's restart after a SIGKILL just works.
 *
 * The check is by process id, so it guards servers on one host (one pid namespace): not two
 * containers sharing a volume, nor a network filesystem.
 */

/** The file in the data directory that names the process holding it. */
export const LOCK_FILE = 'relay-server.lock';

/** Another live process holds the data directory. A ConfigError: the binary exits 2 with its one line. */
export class DataDirInUseError extends ConfigError {
  override name = 'DataDirInUseError';
  constructor(dataDir: string, readonly pid: number) {
    super(
      `the data directory ${dataDir} is in use by another relay-server (pid ${pid}); ` +
        'stop that one, or give this one its own --data-dir (RELAY_DATA_DIR) or a DATABASE_URL',
    );
  }
}

interface Holder {
  pid: number;
  /** Where the OS tells it: what tells this process apart from a later one given the same pid. */
  start?: string;
}

// A lock file naming this very process is held only if this process took it (another server
// in the same process); otherwise it is left from an earlier life under the same pid, which is
// the rule in a container, where the server is pid 1 at every start.
const heldHere = new Set<string>();

/**
 * Linux only: the process's state, and its boot id and start time, so that a pid reused
 * after a crash or reboot is not taken for the holder.
 */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)", which may itself hold spaces: the 3rd is the state, the 22nd the start time.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return fields[19] ? { state: fields[0]!, start: `${boot}/${fields[19]}` } : undefined;
  } catch {
    return undefined;
  }
}

function parse(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as { pid?: unknown; start?: unknown };
    // A pid of 0 or below would name a process group to process.kill(), not a process.
    if (!Number.isSafeInteger(value.pid) || (value.pid as number) <= 0) return undefined;
    return { pid: value.pid as number, start: typeof value.start === 'string' ? value.start : undefined };
  } catch {
    return undefined;
  }
}

function isLive(holder: Holder, dir: string): boolean {
  if (holder.pid === process.pid) return heldHere.has(dir);
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user; it may well be a server.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const now = procStat(holder.pid);
  // A killed holder not yet reaped by its parent still answers kill(pid, 0): a zombie.
  if (now && (now.state === 'Z' || now.state === 'X')) return false;
  if (now && holder.start !== undefined && now.start !== holder.start) return false;
  return true;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The embedded data directory a PGlite dataDir names, or undefined when it keeps nothing on disk. */
export function lockableDirectory(dataDir: string): string | undefined {
  if (dataDir === '') return undefined;
  // PGlite's own prefixes: file:// is a directory, memory:// (and the browser-only ones) are not.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dataDir)) return dataDir.startsWith('file://') ? dataDir.slice('file://'.length) : undefined;
  return dataDir;
}

/**
 * Takes the lock on an embedded data directory (creating the directory if needed) or throws
 * DataDirInUseError. Resolves with the function that releases it.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const dir = await realpath(dataDir);
  const path = join(dir, LOCK_FILE);
  const mine = `${JSON.stringify({ pid: process.pid, start: procStat(process.pid)?.start, host: hostname() })}\n`;

  // Each round either takes the lock, finds a live holder, or removes one stale lock; a
  // bound only stops a livelock among several servers starting at once.
  for (let round = 0; round < 20; round++) {
    if (heldHere.has(dir)) throw new DataDirInUseError(dataDir, process.pid);
    try {
      await writeFile(path, mine, { flag: 'wx' });
      heldHere.add(dir);
      return async () => {
        try {
          // Only our own: a lock someone judged stale and replaced is theirs now.
          if ((await readText(path)) === mine) await unlink(path);
        } finally {
          heldHere.delete(dir);
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }

    const text = await readText(path);
    if (text === undefined) continue;
    const holder = parse(text);
    if (!holder) {
      // Created but not yet written by a server starting right now, or cut short by a crash
      // of the machine: give a writer a moment before calling it stale.
      await sleep(100);
      const again = await readText(path);
      if (again !== text) continue;
    }
    if (holder && isLive(holder, dir)) throw new DataDirInUseError(dataDir, holder.pid);

    // Stale. Move it aside under a name of our own and check that what moved is the file we
    // judged: another server may have replaced it with its live lock in between, which goes back.
    const aside = `${path}.stale.${process.pid}.${round}`;
    try {
      await rename(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if ((await readText(aside)) !== text) await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
  }
  throw new Error(`could not take the lock on the data directory ${dataDir}: other servers keep starting on it`);
}
