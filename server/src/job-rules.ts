import { BadRequestError } from './errors.js';

/**
 * The most bytes (UTF-8) that a job's queue and id may take together. Both are the primary
 * key, and PostgreSQL refuses a B-tree entry over about 2 700 bytes: within the character
 * limits (255 and 1024), text outside ASCII can exceed it. Any ASCII queue and id pass.
 */
export const MAX_KEY_BYTES = 2600;

/** Throws BadRequestError when a job's queue and id together are too large to be stored. */
export function checkJobKey(job: { queue: string; id: string }, path: string): void {
  const bytes = Buffer.byteLength(job.queue) + Buffer.byteLength(job.id);
  if (bytes > MAX_KEY_BYTES) {
    throw new BadRequestError(`a job's queue and id take ${bytes} bytes of UTF-8 together; at most ${MAX_KEY_BYTES} are accepted`, [
      { path: `${path}/id`, message: `queue and id together must not exceed ${MAX_KEY_BYTES} bytes of UTF-8` },
    ]);
  }
}
