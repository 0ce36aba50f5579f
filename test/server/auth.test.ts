import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { specPath } from '../../server/src/app.js';
import { Contract } from '../../server/src/http/contract.js';
import type { RelayServer } from '../../server/src/index.js';
import { embeddedDataDir, killAll, removeDir, spawnRelay } from '../helpers/process.js';
import { rawRequest } from '../helpers/raw-http.js';
import { call, startRelay, uniqueQueue, type ApiResponse } from '../helpers/relay.js';

/*
 * Tokens with roles (issue 12 item 8), over real HTTP. What each operation takes is read here
 * from openapi.yaml on its own (not through the server's contract.ts), so an operation added to
 * the document is covered by these tests with no change to them.
 */

const ROLES = ['producer', 'worker', 'reader', 'admin'] as const;
type Role = (typeof ROLES)[number];
const TOKENS: Record<Role, string> = {
  producer: 'producer-token-0123456789',
  worker: 'worker-token-0123456789',
  reader: 'reader-token-0123456789',
  admin: 'admin-token-0123456789',
};
const authTokens = ROLES.map((role) => ({ role, token: TOKENS[role] }));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface Operation {
  method: string;
  path: string;
  /** undefined: open (no token needed). */
  roles: Set<Role> | undefined;
}

/** Every operation of openapi.yaml with the roles its security (or the document's) names; admin is always in. */
function operations(): Operation[] {
  const doc = yaml.load(readFileSync(specPath(), 'utf8')) as any;
  const out: Operation[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch']) {
      const op = item[method];
      if (!op) continue;
      const security: Array<Record<string, string[]>> = op.security ?? doc.security ?? [];
      let roles: Set<Role> | undefined = new Set<Role>(['admin']);
      if (security.length === 0 || security.some((r) => Object.keys(r).length === 0)) roles = undefined;
      else {
        for (const requirement of security) {
          const names = requirement.bearerAuth!;
          for (const name of names.length === 0 ? ROLES : names) roles.add(name as Role);
        }
      }
      out.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x'), roles });
    }
  }
  return out;
}

const OPERATIONS = operations();

function expectUnauthorized(res: ApiResponse, what: string, tokenSent: boolean) {
  expect(res.status, `${what}: ${res.text}`).to.equal(401);
  expect(res.headers.get('content-type'), what).to.match(/^application\/problem\+json/);
  expect(res.body, what).to.include({ type: 'urn:relay-ts:problem:unauthorized', status: 401 });
  expect(res.headers.get('www-authenticate'), what).to.equal(tokenSent ? 'Bearer realm="relay", error="invalid_token"' : 'Bearer realm="relay"');
}

describe('tokens with roles', () => {
  let server: RelayServer;
  const at = (method: string, path: string, options: Parameters<typeof call>[2] = {}) => call(method, path, { ...options, baseUrl: server.url });
  before(async () => {
    server = await startRelay({ authTokens, maxBody: 4096 });
  });
  after(() => server?.close());

  it('openapi.yaml declares roles on operations of every kind (the loop below has something to check)', () => {
    expect(OPERATIONS.filter((o) => o.roles === undefined).map((o) => o.path)).to.deep.equal(['/health']);
    for (const role of ['producer', 'worker', 'reader'] as const) {
      expect(OPERATIONS.some((o) => o.roles?.has(role)), role).to.equal(true);
    }
  });

  for (const { method, path, roles } of OPERATIONS) {
    const name = `${method} ${path}`;
    if (roles === undefined) {
      it(`${name} stays open: 200 without a token, and with any`, async () => {
        expect((await at(method, path)).status).to.equal(200);
        expect((await at(method, path, { headers: bearer('not-a-token') })).status).to.equal(200);
      });
      continue;
    }
    const allowed = [...roles];
    const refused = ROLES.filter((r) => !roles.has(r));
    it(`${name}: 401 without a token or with a wrong one; 403 for ${refused.join(', ') || 'no role'}; not refused for ${allowed.join(', ')}`, async () => {
      expectUnauthorized(await at(method, path), `${name} without a token`, false);
      expectUnauthorized(await at(method, path, { headers: bearer('not-a-token') }), `${name} with a wrong token`, true);
      // One character off, and a known token with a suffix: no prefix matching.
      expectUnauthorized(await at(method, path, { headers: bearer(TOKENS.admin.slice(0, -1)) }), `${name} with a near token`, true);
      expectUnauthorized(await at(method, path, { headers: bearer(`${TOKENS.admin}x`) }), `${name} with a longer token`, true);
      expectUnauthorized(await at(method, path, { headers: { authorization: `Basic ${Buffer.from(`admin:${TOKENS.admin}`).toString('base64')}` } }), `${name} with Basic`, false);
      for (const role of refused) {
        const res = await at(method, path, { headers: bearer(TOKENS[role]) });
        expect(res.status, `${name} as ${role}: ${res.text}`).to.equal(403);
        expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
        expect(res.body).to.include({ type: 'urn:relay-ts:problem:forbidden', status: 403 });
        expect(res.body.detail).to.include(role);
      }
      for (const role of allowed) {
        const res = await at(method, path, { headers: bearer(TOKENS[role]) });
        expect([401, 403], `${name} as ${role}: ${res.status} ${res.text}`).not.to.include(res.status);
        expect(res.status, `${name} as ${role}: ${res.text}`).to.be.below(500);
      }
    });
  }

  it('the scheme name is case-insensitive (RFC 7235)', async () => {
    const res = await at('GET', '/v1/next', { query: { queue: uniqueQueue() }, headers: { authorization: `bearer ${TOKENS.worker}` } });
    expect(res.status).to.equal(204);
  });

  it('a path the API does not have is a 401 without a token (its shape is not probed), a 404 with one; a wrong method likewise 401, then 405', async () => {
    expectUnauthorized(await at('GET', '/v1/no-such-path'), 'unknown path', false);
    expect((await at('GET', '/v1/no-such-path', { headers: bearer(TOKENS.reader) })).status).to.equal(404);
    expectUnauthorized(await at('PUT', '/enqueue'), 'wrong method', false);
    expect((await at('PUT', '/enqueue', { headers: bearer(TOKENS.reader) })).status).to.equal(405);
    // /health has only open operations: its other methods answer as without tokens.
    expect((await at('POST', '/health')).status).to.equal(405);
  });

  it('a refused enqueue stores nothing', async () => {
    const queue = uniqueQueue('refused');
    const job = { id: 'a', queue, timeout: 30 };
    expect((await at('POST', '/enqueue', { json: job })).status).to.equal(401);
    expect((await at('POST', '/enqueue', { json: job, headers: bearer('wrong') })).status).to.equal(401);
    for (const role of ['worker', 'reader'] as const) {
      expect((await at('POST', '/enqueue', { json: job, headers: bearer(TOKENS[role]) })).status).to.equal(403);
      expect((await at('POST', '/enqueue/batch', { json: [job], headers: bearer(TOKENS[role]) })).status).to.equal(403);
    }
    expect((await at('GET', '/v1/next', { query: { queue, num_jobs: 10 }, headers: bearer(TOKENS.worker) })).status).to.equal(204);
    // And the producer's own goes through.
    expect((await at('POST', '/enqueue', { json: job, headers: bearer(TOKENS.producer) })).status).to.equal(202);
    const leased = await at('GET', '/v1/next', { query: { queue }, headers: bearer(TOKENS.worker) });
    expect(leased.body.map((j: { id: string }) => j.id)).to.deep.equal(['a']);
  });

  it('the body of a request without a valid token is not read: malformed or oversized, it is a 401 (with the token, 400 and 413)', async () => {
    const headers = { 'content-type': 'application/json' };
    expectUnauthorized(await at('POST', '/enqueue', { raw: '{not json', headers }), 'malformed', false);
    expectUnauthorized(await at('POST', '/enqueue', { raw: 'x'.repeat(10_000), headers }), 'oversized', false);
    expectUnauthorized(await at('POST', '/enqueue', { raw: '{not json', headers: { ...headers, ...bearer('wrong') } }), 'malformed, wrong token', true);
    expect((await at('POST', '/enqueue', { raw: '{not json', headers: { ...headers, ...bearer(TOKENS.reader) } })).status).to.equal(403);
    expect((await at('POST', '/enqueue', { raw: '{not json', headers: { ...headers, ...bearer(TOKENS.producer) } })).status).to.equal(400);
    expect((await at('POST', '/enqueue', { raw: 'x'.repeat(10_000), headers: { ...headers, ...bearer(TOKENS.producer) } })).status).to.equal(413);
  });

  it('a refused request announcing a body it never sends is answered at once, and the connection closed', async () => {
    const { host } = new URL(server.url);
    const res = await rawRequest(server.url, `POST /enqueue HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{`, 5_000);
    expect(res.status).to.equal(401);
    expect(res.headers['connection']).to.equal('close');
  });
});

describe('tokens: the binary', function () {
  this.timeout(30_000);
  let dir: string | undefined;
  let dataDir: string | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-tokens-'));
    dataDir = await embeddedDataDir();
  });
  afterEach(async () => {
    await killAll();
    await rm(dir!, { recursive: true, force: true });
    await removeDir(dataDir);
  });

  it('reads tokens from RELAY_AUTH_TOKENS_FILE (comments, blank lines) together with RELAY_AUTH_TOKENS, and never logs them', async () => {
    const file = join(dir!, 'tokens');
    await writeFile(file, '# relay tokens\n\nworker:file-worker-token\n  reader:file-reader-token  \n# admin:commented-out-token\n');
    const relay = await spawnRelay({
      env: { RELAY_DATA_DIR: dataDir, RELAY_AUTH_TOKENS_FILE: file, RELAY_AUTH_TOKENS: 'producer:env-producer-token', LOG_LEVEL: 'trace' },
    });
    const queue = uniqueQueue('file');
    const as = (token: string) => ({ baseUrl: relay.url, headers: bearer(token) });
    expect((await call('POST', '/enqueue', { ...as('env-producer-token'), json: { id: 'a', queue, timeout: 30 } })).status).to.equal(202);
    expect((await call('GET', '/v1/next', { ...as('file-reader-token'), query: { queue } })).status).to.equal(403);
    expect((await call('GET', '/v1/next', { ...as('commented-out-token'), query: { queue } })).status).to.equal(401);
    const leased = await call('GET', '/v1/next', { ...as('file-worker-token'), query: { queue } });
    expect(leased.status).to.equal(200);
    expect((await call('GET', '/v1/failed', { ...as('file-reader-token'), query: { queue } })).status).to.equal(200);
    expect((await call('GET', '/health', { baseUrl: relay.url })).status).to.equal(200);
    await relay.stop('SIGTERM');
    const output = relay.stdout() + relay.stderr();
    for (const token of ['env-producer-token', 'file-worker-token', 'file-reader-token']) expect(output).not.to.include(token);
  });

  it('warns once at start-up when listening beyond loopback without tokens, not with them', async () => {
    const open = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir, HOST: '0.0.0.0' } });
    const warning = await open.waitForLog((l) => /no auth tokens/.test(String(l.msg)), 5_000);
    expect(warning.level).to.equal(40);
    await open.stop('SIGTERM');
    const guarded = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir, HOST: '0.0.0.0', RELAY_AUTH_TOKENS: 'admin:some-admin-token' } });
    await guarded.stop('SIGTERM');
    expect(guarded.logs.filter((l) => /no auth tokens/.test(String(l.msg)))).to.deep.equal([]);
    const local = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
    await local.stop('SIGTERM');
    expect(local.logs.filter((l) => /no auth tokens/.test(String(l.msg)))).to.deep.equal([]);
  });
});

describe('tokens: roles come from the contract alone', () => {
  it('an operation added with security is guarded as it says, templated paths included; one without security is admin-only', () => {
    const contract = new Contract({
      paths: {
        '/v1/queues/{queue}/jobs/{id}': { get: { security: [{ bearerAuth: ['reader'] }] }, delete: {} },
        '/v1/anyone': { get: { security: [{ bearerAuth: [] }] } },
      },
    });
    const read = contract.operation('GET', '/v1/queues/mail/jobs/a-1')!.access;
    expect(read instanceof Set && [...read].sort()).to.deep.equal(['admin', 'reader']);
    const remove = contract.operation('DELETE', '/v1/queues/mail/jobs/a-1')!.access;
    expect(remove instanceof Set && [...remove]).to.deep.equal(['admin']);
    expect(contract.operation('GET', '/v1/anyone')!.access).to.equal('any-role');
  });

  it('a role openapi.yaml names that the server does not know stops it at start-up', () => {
    expect(() => new Contract({ paths: { '/x': { get: { security: [{ bearerAuth: ['auditor'] }] } } } })).to.throw(/unknown role "auditor"/);
  });
});
