import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { cases } from '../../conformance/src/index.js';
import { killAll, spawnRelay, type RelayProcess } from '../helpers/process.js';
import { TestProxy, type Forwarded, type SeenRequest } from '../helpers/proxy.js';
import { backend } from '../helpers/relay.js';

/*
 * The contract-test kit (issue 15 item 5) as a user runs it: its bin, as a child process,
 * against relay-server started here on this pass's database; then against the same server
 * behind a proxy that breaks the contract in one place per case, where exactly those cases
 * must fail, with the reason, and the exit status say so.
 */

const run = promisify(execFile);
const KIT = fileURLToPath(new URL('../../conformance/bin/relay-conformance.js', import.meta.url));
const ADMIN = 'kit-test-admin-token-0001';

interface Line {
  outcome: 'ok' | 'FAIL' | 'skip';
  reason: string;
}

interface KitRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** By case name, as the kit printed them. */
  lines: Map<string, Line>;
}

function runKit(args: string[], timeoutMs = 120_000): Promise<KitRun> {
  const env = { ...process.env };
  delete env.RELAY_TOKEN;
  const child = spawn(process.execPath, [KIT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = new Map<string, Line>();
      for (const text of stdout.split('\n')) {
        const m = /^(ok|FAIL|skip) +(\S+)(?: — (.*))?$/.exec(text);
        if (m) lines.set(m[2]!, { outcome: m[1] as Line['outcome'], reason: m[3] ?? '' });
      }
      resolve({ code, stdout, stderr, lines });
    });
  });
}

/** The answer as JSON, changed by fn. */
function editJson(answer: Forwarded, fn: (body: any) => unknown): Forwarded {
  return { ...answer, body: Buffer.from(JSON.stringify(fn(JSON.parse(answer.body.toString('utf8'))))) };
}

/** Whether the request names queue, in its query or in its JSON body. */
function names(request: SeenRequest, queue: string): boolean {
  return request.query.get('queue') === queue || request.body.includes(JSON.stringify(queue));
}

describe(`relay-conformance against relay-server (${backend})`, function () {
  this.timeout(180_000);
  let relay: RelayProcess;
  let proxy: TestProxy | undefined;

  before(async () => {
    relay = await spawnRelay({
      env: { RELAY_AUTH_TOKENS: `admin:${ADMIN}`, RELAY_DATA_DIR: 'memory://', DATABASE_URL: process.env.DATABASE_URL || undefined },
      startTimeoutMs: 60_000,
    });
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  after(async () => {
    await relay?.stop();
    await killAll();
  });

  it('ships the contract of the repository (conformance/openapi.yaml, copied by the build)', () => {
    const root = readFileSync(fileURLToPath(new URL('../../openapi.yaml', import.meta.url)), 'utf8');
    const shipped = readFileSync(fileURLToPath(new URL('../../conformance/openapi.yaml', import.meta.url)), 'utf8');
    expect(shipped === root, 'conformance/openapi.yaml differs from openapi.yaml: run `npm run build`').to.equal(true);
  });

  it('the drift check (npm run check:generated) fails when the copy differs from openapi.yaml', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relay-kit-copy-'));
    try {
      const copy = join(dir, 'openapi.yaml');
      await writeFile(copy, readFileSync('openapi.yaml', 'utf8').replace('version: 0.1.0', 'version: 0.0.9'));
      const failed = await run('bash', ['scripts/check-generated.sh', 'openapi.yaml', 'client/src/schema.ts', copy]).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(failed.code).to.equal(1);
      expect(failed.stderr).to.include('differs from openapi.yaml').and.include('npm run build').and.match(/^-  version: 0\.0\.9$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('passes every case, the optional features required, with a line per case and exit status 0', async () => {
    const run = await runKit([relay.url, '--token', ADMIN, '--require', 'auth,operations,idempotency,metrics']);
    const failed = [...run.lines].filter(([, l]) => l.outcome !== 'ok');
    expect(failed, run.stdout + run.stderr).to.deep.equal([]);
    expect([...run.lines.keys()], 'a line per case, in order').to.deep.equal(cases.map((c) => c.name));
    expect(run.stdout).to.match(new RegExp(`^relay-conformance: ${cases.length} passed, 0 failed, 0 skipped in `, 'm'));
    expect(run.code, run.stderr).to.equal(0);
  });

  it('fails exactly the cases whose answers a proxy breaks, saying why, with exit status 1', async () => {
    const prefix = `kit-${randomUUID().slice(0, 8)}`;
    const queue = (name: string) => `${prefix}-${name}`;
    proxy = await TestProxy.start(relay.url);
    proxy
      // A wrong status: 200 where enqueue answers 202.
      .rewrite((a, r) => (r.path === '/enqueue' && names(r, queue('enqueue-single')) && a.status === 202 ? { ...a, status: 200 } : undefined))
      // A required field missing: the jobs of next without their run_id.
      .rewrite((a, r) => (r.path === '/v1/next' && names(r, queue('enqueue-defaults')) && a.status === 200 ? editJson(a, (jobs) => jobs.map(({ run_id: _, ...job }: any) => job)) : undefined))
      // A body the schema refuses: a value outside an enum (the health case's /health, which
      // carries the token), a property it does not have.
      .rewrite((a, r) => (r.path === '/health' && r.headers.authorization !== undefined && a.status === 200 ? editJson(a, (h) => ({ ...h, database: 'mysql' })) : undefined))
      .rewrite((a, r) => (r.path === '/v1/complete/batch' && names(r, queue('complete-batch')) && a.status === 200 ? editJson(a, (b) => ({ ...b, extra: true })) : undefined))
      // A problem that is not problem+json.
      .rewrite((a, r) => (r.path === '/enqueue' && names(r, queue('enqueue-duplicate')) && a.status === 409 ? { ...a, headers: { ...a.headers, 'content-type': 'text/plain' } } : undefined))
      // A header its schema refuses.
      .rewrite((a, r) => (a.headers['idempotent-replayed'] !== undefined && names(r, queue('idempotency')) ? { ...a, headers: { ...a.headers, 'idempotent-replayed': 'yes' } } : undefined))
      // FIFO broken: the jobs of a next in reverse order.
      .rewrite((a, r) => (r.path === '/v1/next' && names(r, queue('fifo')) && a.status === 200 ? editJson(a, (jobs) => [...jobs].reverse()) : undefined));

    const run = await runKit([proxy.url, '--token', ADMIN, '--queue-prefix', prefix]);
    const failed = Object.fromEntries([...run.lines].filter(([, l]) => l.outcome !== 'ok').map(([name, l]) => [name, l.reason]));
    expect(Object.keys(failed).sort(), run.stdout).to.deep.equal(['complete-batch', 'enqueue-defaults', 'enqueue-duplicate', 'enqueue-single', 'fifo', 'health', 'idempotency']);
    expect(failed['enqueue-single'], run.stdout).to.match(/POST \/enqueue → 200: /);
    expect(failed['enqueue-defaults']).to.match(/GET \/v1\/next\?.* → 200: 200 of next: \/0 must have required property 'run_id'/);
    expect(failed.health).to.match(/GET \/health → 200: 200 of health: \/database must be equal to one of the allowed values/);
    expect(failed['complete-batch']).to.match(/200 of completeBatch: \/ must NOT have additional properties \(extra\)/);
    expect(failed['enqueue-duplicate']).to.match(/→ 409: .*text\/plain, not application\/problem\+json/);
    expect(failed.idempotency).to.match(/header idempotent-replayed: "yes" must be equal to one of the allowed values/);
    expect(failed.fifo).to.match(/next \(num_jobs=2\) handed out: \["f1","f0"\], expected \["f0","f1"\]/);
    expect(run.stdout).to.match(new RegExp(`^relay-conformance: ${cases.length - 7} passed, 7 failed, 0 skipped in `, 'm'));
    expect(run.code).to.equal(1);
  });

  it('one broken case is enough for a non-zero exit; --json reports it', async () => {
    const prefix = `kit-${randomUUID().slice(0, 8)}`;
    proxy = await TestProxy.start(relay.url);
    proxy.rewrite((a, r) => (r.path === '/v1/next' && names(r, `${prefix}-fifo`) && a.status === 200 ? editJson(a, (jobs) => [...jobs].reverse()) : undefined));
    const run = await runKit([proxy.url, '--token', ADMIN, '--queue-prefix', prefix, '--only', '^(fifo|complete)$', '--json']);
    expect(run.code, run.stderr).to.equal(1);
    const report = JSON.parse(run.stdout);
    expect(report.results.map((r: { name: string; outcome: string }) => [r.name, r.outcome])).to.deep.equal([
      ['fifo', 'fail'],
      ['complete', 'pass'],
    ]);
    expect(report).to.include({ passed: 1, failed: 1, skipped: 0, queuePrefix: prefix });
  });

  it('exits 2, saying why, when the server cannot be judged: it wants a token, or it is unreachable', async () => {
    const noToken = await runKit([relay.url]);
    expect(noToken.code).to.equal(2);
    expect(noToken.stderr).to.match(/asks for a token .*--token/);
    const unreachable = await runKit(['http://127.0.0.1:9/', '--request-timeout', '2']);
    expect(unreachable.code).to.equal(2);
    expect(unreachable.stderr).to.match(/cannot reach http:\/\/127\.0\.0\.1:9\//);
    const usage = await runKit(['--concurrency', 'many', relay.url]);
    expect(usage.code).to.equal(2);
  });
});
