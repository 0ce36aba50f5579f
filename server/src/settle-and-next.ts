import type { LeasedJob, Settled, Settlement } from './jobs.js';
import type { Store } from './store.js';

/**
 * `POST /v1/next`: settles the deliveries of the body, then leases as `GET /v1/next` does.
 * The settlements are committed before the lease starts, so a long poll that waits, or a
 * client that leaves, never undoes them. Once they are committed their outcomes must reach the
 * client: a lease that fails after them (the database unavailable, too many waiting polls)
 * answers no jobs instead of an error, and the error goes to onLeaseError. So an error answer
 * always means "nothing settled", which any client can act on without guessing.
 */
export async function settleThenLease(
  store: Pick<Store, 'settle'>,
  items: Settlement[],
  lease: () => Promise<LeasedJob[]>,
  onLeaseError: (err: unknown) => void,
): Promise<{ jobs: LeasedJob[]; settled: Settled }> {
  const settled = await store.settle(items);
  if (items.length === 0) return { jobs: await lease(), settled };
  try {
    return { jobs: await lease(), settled };
  } catch (err) {
    onLeaseError(err);
    return { jobs: [], settled };
  }
}
