/**
 * An earlier commit's server, built in a worktree of its own under the system's temporary
 * directory (this checkout's node_modules), for the benches that compare builds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory of a checkout of `ref` with its server built (reused when it exists). */
export function buildCheckout(ref: string): string {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const sha = execFileSync('git', ['rev-parse', '--short', ref], { cwd: root, encoding: 'utf8' }).trim();
  const dir = join(tmpdir(), `relay-ab-${sha}`);
  if (!existsSync(join(dir, 'server', 'dist', 'bin.js'))) {
    rmSync(dir, { recursive: true, force: true });
    execFileSync('git', ['worktree', 'prune'], { cwd: root });
    execFileSync('git', ['worktree', 'add', '--detach', dir, sha], { cwd: root, stdio: 'inherit' });
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], { cwd: dir, stdio: 'inherit' });
  }
  return dir;
}
