import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { scrape } from '../helpers/metrics.js';
import { relay } from '../helpers/relay.js';

/*
 * The monitoring documents (README: Monitoring, docs/monitoring/) name metrics the server and
 * the worker really expose: a renamed metric would otherwise leave a dashboard panel or an
 * alert silently empty.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');

const WORKER_METRICS = [
  'relay_worker_jobs_started_total',
  'relay_worker_jobs_succeeded_total',
  'relay_worker_jobs_failed_total',
  'relay_worker_handler_duration_seconds',
  'relay_worker_heartbeats_total',
  'relay_worker_leases_lost_total',
];

const POOL_METRICS = ['relay_db_pool_connections', 'relay_db_pool_waiting_requests'];

/** The relay_ metric names a text mentions, histogram series folded into their metric. */
function namesIn(text: string): Set<string> {
  return new Set([...text.matchAll(/\brelay_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')));
}

describe('monitoring documents', () => {
  let exposed: Set<string>;
  before(async () => {
    // Every metric family is declared in the text format, series or not.
    const res = await fetch(`${relay().url}/metrics`);
    exposed = new Set([...(await res.text()).matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
    await scrape(relay().url);
    // The pool's gauges exist on PostgreSQL only.
    if (relay().databaseKind === 'pglite') for (const name of POOL_METRICS) exposed.add(name);
  });

  it('the dashboard is Grafana JSON whose queries use exposed metrics only', () => {
    const dashboard = JSON.parse(read('docs/monitoring/grafana-dashboard.json'));
    expect(dashboard.panels).to.have.length.greaterThan(5);
    const queries = dashboard.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr)).join('\n');
    const used = namesIn(queries);
    expect(used.size).to.be.greaterThan(10);
    for (const name of used) expect(exposed, `${name} in the dashboard`).to.include(name);
  });

  it('the alert rules are Prometheus rule groups over exposed metrics', () => {
    const rules = yaml.load(read('docs/monitoring/alerts.yml')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.map((r) => r.alert)).to.include.members(['RelayOldestJobTooOld', 'RelayJobFailureRateHigh', 'RelayLeaseExpiries']);
    const used = namesIn(all.map((r) => r.expr).join('\n'));
    used.delete('relay_jobs_'); // the regex matcher relay_jobs_(retried|failed)_total
    for (const name of used) expect(exposed, `${name} in alerts.yml`).to.include(name);
  });

  it("the README's metric table lists exactly what the server exposes", () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('### Metrics: `GET /metrics`'), readme.indexOf('### Tracing'));
    const listed = new Set([...section.matchAll(/^\| `(relay_[a-z_]+)` \|/gm)].map((m) => m[1]!));
    const served = new Set([...exposed].filter((n) => n.startsWith('relay_')));
    expect([...listed].sort()).to.deep.equal([...served].sort());
    for (const name of WORKER_METRICS) expect(read('worker/README.md')).to.include(`\`${name}\``);
  });
});
