import { expect } from 'chai';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Reconciliation } from './ledger.js';

/**
 * Each scenario's reconciliation, as a table on stdout and as JSON in
 * test-results/faults/<scenario>.json (ignored by git), with what else the scenario measured.
 */

const DIR = fileURLToPath(new URL('../../test-results/faults/', import.meta.url));

const ROWS: Array<[keyof Reconciliation, string]> = [
  ['accepted', 'jobs accepted (202)'],
  ['completed', 'completed'],
  ['failed', 'failed (kept in the failed jobs)'],
  ['lost', 'lost (must be 0)'],
  ['overlapping', 'overlapping deliveries (must be 0)'],
  ['completedTwice', 'completed twice (must be 0)'],
  ['unaccounted', 'unaccounted for (must be 0)'],
  ['deliveries', 'deliveries'],
  ['redeliveries', 'deliveries after the first'],
  ['leasesLost', 'leases lost by a worker'],
  ['enqueueErrors', 'enqueues that failed'],
];

export async function report(scenario: string, reconciliation: Reconciliation, measured: Record<string, unknown> = {}): Promise<void> {
  const lines = [`  ${scenario}`, '  | figure | value |', '  |---|---|'];
  for (const [key, label] of ROWS) lines.push(`  | ${label} | ${reconciliation[key] as number} |`);
  if (reconciliation.leasesLost > 0) lines.push(`  | why leases were lost | ${JSON.stringify(reconciliation.leaseLostCauses)} |`);
  for (const [key, value] of Object.entries(measured)) lines.push(`  | ${key} | ${typeof value === 'object' ? JSON.stringify(value) : String(value)} |`);
  console.log(lines.join('\n'));
  await mkdir(DIR, { recursive: true });
  await writeFile(`${DIR}${scenario}.json`, `${JSON.stringify({ scenario, at: new Date().toISOString(), ...reconciliation, measured }, null, 2)}\n`);
}

/** The ledger's promises: nothing lost, no overlap, nothing completed twice, nothing unaccounted for. */
export function expectReconciled(r: Reconciliation): void {
  const problems = r.problems.join('\n');
  expect(r.lost, `lost jobs:\n${problems}`).to.equal(0);
  expect(r.overlapping, `overlapping deliveries:\n${problems}`).to.equal(0);
  expect(r.completedTwice, `jobs completed twice:\n${problems}`).to.equal(0);
  expect(r.unaccounted, `unaccounted for:\n${problems}`).to.equal(0);
  expect(r.completed + r.failed, 'every accepted job completed or failed').to.equal(r.accepted);
  expect(r.accepted, 'the scenario ran under load').to.be.greaterThan(0);
}
