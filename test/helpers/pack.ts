import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/** Helpers of the tests that pack a package and use it as a user receives it. */

export const run = promisify(execFile);
export const repo = resolve('.');
export const bin = (name: string) => join(repo, 'node_modules', '.bin', name);

/**
 * Runs tsc in `cwd`, failing with its output when it cannot start (ENOENT) or reports errors:
 * a failure must never pass as "no output".
 */
export async function typeCheck(args: string[], cwd: string): Promise<void> {
  let result: { stdout: string; stderr: string };
  try {
    result = await run(bin('tsc'), args, { cwd });
  } catch (e) {
    const error = e as { message?: string; code?: unknown; stdout?: string; stderr?: string };
    expect.fail(`tsc ${args.join(' ')} failed (${String(error.code)}): ${error.message}\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  }
  expect(result.stdout, 'tsc output').to.equal('');
}
