/** Waiting with a bound, for the peers' phases. */
import { performance } from 'node:perf_hooks';
import { sleep } from '../phases.js';

export { within } from '../phases.js';

/** Polls `check` every `everyMs` until it holds (or throws after ms). */
export async function waitFor(check: () => Promise<boolean>, ms: number, everyMs = 2): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(everyMs);
  }
}
