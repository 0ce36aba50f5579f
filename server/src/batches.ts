/**
 * Runs a bounded-batch statement again while it does a whole batch (there may be more), at
 * most maxBatches times, so that bulk work never holds many locks in one statement nor runs
 * without end. Returns the total done.
 */
export async function inBatches(runBatch: (batch: number) => Promise<number>, batch: number, maxBatches = Infinity): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const n = await runBatch(batch);
    total += n;
    if (n < batch) break;
  }
  return total;
}
