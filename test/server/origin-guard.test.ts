import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import type { RelayServer } from '../../server/src/index.js';
import { killAll, spawnRelay } from '../helpers/process.js';
import { call, relay, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * What a web page can make a browser send to a relay server: a foreign Host (DNS rebinding),
 * a cross-origin request, a GET from an <img> or a link. Over real HTTP with node:http, which
 * lets a test set Host (fetch does not). Traffic goes to 127.0.0.1 only, also for the server
 * that listens on 0.0.0.0.
 */

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: any;
}

/** One request to server with exactly these headers (Host included when given). */
function send(server: { url: string }, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => {
        const json = /json/.test(res.headers['content-type'] ?? '') && text ? JSON.parse(text) : undefined;
        resolve({ status: res.statusCode!, headers: res.headers, text, body: json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function portOf(server: { url: string }): number {
  return Number(new URL(server.url).port);
}

/** The server's address on 127.0.0.1, also when it listens on 0.0.0.0. */
function local(server: { url: string }): string {
  return `http://127.0.0.1:${portOf(server)}`;
}

/** A lease of up to 1000 jobs, as the page of the issue asks for. */
const nextPath = (queue: string) => `/v1/next?queue=${encodeURIComponent(queue)}&num_jobs=1000`;

async function enqueue(server: { url: string }, queue: string, ...ids: string[]): Promise<void> {
  for (const id of ids) {
    const res = await call('POST', '/enqueue', { baseUrl: local(server), json: { id, queue, timeout: 60 } });
    expect(res.status, res.text).to.equal(202);
  }
}

/** What a well-behaved worker on the machine leases: [id, attempt] pairs. */
async function leaseAll(server: { url: string }, queue: string): Promise<Array<[string, number]>> {
  const res = await call('GET', '/v1/next', { baseUrl: local(server), query: { queue, num_jobs: 1000 } });
  expect(res.status, res.text).to.be.oneOf([200, 204]);
  return res.status === 200 ? (res.body as Array<{ id: string; attempt: number }>).map((j) => [j.id, j.attempt]) : [];
}

function expectForbidden(reply: Reply, slug: 'forbidden-host' | 'forbidden-origin', what: string): void {
  expect(reply.status, `${what}: ${reply.text}`).to.equal(403);
  expect(reply.headers['content-type'], what).to.match(/^application\/problem\+json/);
  expect(reply.body, what).to.include({ type: `urn:relay-ts:problem:${slug}`, title: 'Forbidden', status: 403 });
  const setting = slug === 'forbidden-host' ? /--allowed-hosts \(RELAY_ALLOWED_HOSTS\)/ : /--allowed-origins \(RELAY_ALLOWED_ORIGINS\)/;
  expect(reply.body.detail, what).to.match(setting);
  expect(reply.headers, what).not.to.have.property('access-control-allow-origin');
}

describe('browsers: the Host and the Origin of a request', function () {
  const servers: RelayServer[] = [];
  async function server(overrides: Parameters<typeof startRelay>[0]): Promise<RelayServer> {
    const s = await startRelay(overrides);
    servers.push(s);
    return s;
  }
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await killAll();
  });

  describe('Host', () => {
    it('on a loopback server: loopback names pass with any port (or no Host); any other name is a 403 forbidden-host (DNS rebinding) and leases nothing', async () => {
      const queue = uniqueQueue('rebind');
      await enqueue(relay(), queue, 'a', 'b');
      const port = portOf(relay());
      const foreign = [
        'evil.example',
        `evil.example:${port}`,
        'localhost.evil.example',
        '127.0.0.1.evil.example',
        'evil.example@127.0.0.1',
        '[::2]',
        '10.0.0.1',
      ];
      for (const host of foreign) expectForbidden(await send(relay(), 'GET', nextPath(queue), { host }), 'forbidden-host', host);
      // GET /health too: one rule for every path.
      expectForbidden(await send(relay(), 'GET', '/health', { host: 'evil.example' }), 'forbidden-host', '/health');
      expect(await leaseAll(relay(), queue)).to.deep.equal([['a', 1], ['b', 1]]);

      const loopback = ['localhost', `localhost:${port}`, 'LocalHost:1', 'localhost.', 'app.localhost:3000', '127.0.0.1', `127.0.0.1:${port}`, '127.255.0.9:80', '[::1]', `[::1]:${port}`];
      for (const host of loopback) {
        const reply = await send(relay(), 'GET', '/health', { host });
        expect(reply.status, `${host}: ${reply.text}`).to.equal(200);
      }
      await enqueue(relay(), queue, 'c');
      const reply = await send(relay(), 'GET', nextPath(queue), { host: `localhost:${port}` });
      expect(reply.status, reply.text).to.equal(200);
      expect(reply.body.map((j: { id: string }) => j.id)).to.deep.equal(['c']);

      // Without a Host (HTTP/1.0): browsers always send one, so this is no browser.
      const socket = net.connect(port, '127.0.0.1');
      socket.setEncoding('utf8');
      let answer = '';
      socket.on('data', (chunk: string) => (answer += chunk));
      await new Promise<void>((resolve) => socket.on('connect', resolve));
      socket.write('GET /health HTTP/1.0\r\n\r\n');
      await new Promise<void>((resolve) => socket.on('end', resolve));
      expect(answer).to.match(/^HTTP\/1\.1 200 /);
    });

    it('--allowed-hosts adds names to the loopback ones', async () => {
      const s = await server({ allowedHosts: ['relay.example.com', '*.svc.example', 'pinned.example:8443'] });
      const pass = ['relay.example.com', 'RELAY.example.com:8080', 'a.svc.example', 'a.b.svc.example:1', 'pinned.example:8443', 'localhost', '127.0.0.1'];
      for (const host of pass) {
        const reply = await send(s, 'GET', '/health', { host });
        expect(reply.status, `${host}: ${reply.text}`).to.equal(200);
      }
      const refuse = ['svc.example', 'pinned.example', 'pinned.example:8080', 'evil.example', 'relay.example.com.evil.example'];
      for (const host of refuse) expectForbidden(await send(s, 'GET', '/health', { host }), 'forbidden-host', host);
    });

    it('on 0.0.0.0: any name passes while --allowed-hosts is unset (behind a reverse proxy), only listed and loopback names once it is set', async () => {
      const open = await server({ host: '0.0.0.0' });
      for (const host of ['relay.example.com', 'evil.example:80']) {
        const reply = await send(open, 'GET', '/health', { host });
        expect(reply.status, `${host}: ${reply.text}`).to.equal(200);
      }
      const queue = uniqueQueue('proxied');
      await enqueue(open, queue, 'a');
      const reply = await send(open, 'GET', nextPath(queue), { host: 'relay.example.com' });
      expect(reply.status, reply.text).to.equal(200);
      expect(reply.body.map((j: { id: string }) => j.id)).to.deep.equal(['a']);

      const listed = await server({ host: '0.0.0.0', allowedHosts: ['relay.example.com'] });
      for (const host of ['relay.example.com', 'localhost']) {
        const ok = await send(listed, 'GET', '/health', { host });
        expect(ok.status, `${host}: ${ok.text}`).to.equal(200);
      }
      const other = uniqueQueue('listed');
      await enqueue(listed, other, 'b');
      expectForbidden(await send(listed, 'GET', nextPath(other), { host: 'evil.example' }), 'forbidden-host', 'evil.example');
      expect(await leaseAll(listed, other)).to.deep.equal([['b', 1]]);
    });
  });

  describe('Origin', () => {
    it('refuses a cross-origin request with 403 forbidden-origin and no CORS headers; nothing is leased or stored', async () => {
      const queue = uniqueQueue('cross');
      await enqueue(relay(), queue, 'a');
      for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${portOf(relay()) + 1}`]) {
        expectForbidden(await send(relay(), 'GET', nextPath(queue), { origin }), 'forbidden-origin', origin);
      }
      const body = JSON.stringify({ id: 'from-a-page', queue, timeout: 60 });
      // A form or fetch POST with a body type that needs no preflight.
      const posted = await send(relay(), 'POST', '/enqueue', { origin: 'https://evil.example', 'content-type': 'text/plain' }, body);
      expectForbidden(posted, 'forbidden-origin', 'POST /enqueue');
      expect(await leaseAll(relay(), queue)).to.deep.equal([['a', 1]]);
    });

    it('refuses what a browser sends from another site without an Origin (an <img>, a link to /v1/next)', async () => {
      const queue = uniqueQueue('img');
      await enqueue(relay(), queue, 'a');
      for (const site of ['cross-site', 'same-site']) {
        expectForbidden(await send(relay(), 'GET', nextPath(queue), { 'sec-fetch-site': site }), 'forbidden-origin', site);
      }
      // The user's own typing in the address bar is not another site.
      const typed = await send(relay(), 'GET', nextPath(queue), { 'sec-fetch-site': 'none' });
      expect(typed.status, typed.text).to.equal(200);
      expect(typed.body.map((j: { id: string; attempt: number }) => [j.id, j.attempt])).to.deep.equal([['a', 1]]);
    });

    it('answers a request from its own origin', async () => {
      const port = portOf(relay());
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
        const reply = await send(relay(), 'GET', '/health', { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' });
        expect(reply.status, `${host}: ${reply.text}`).to.equal(200);
      }
      // Another scheme or port is another origin.
      for (const origin of [`https://127.0.0.1:${port}`, `http://localhost:${port + 1}`]) {
        expectForbidden(await send(relay(), 'GET', '/health', { host: `localhost:${port}`, origin }), 'forbidden-origin', origin);
      }
    });

    it('gives an allowed origin CORS headers and a working preflight; other origins get neither', async () => {
      const s = await server({ allowedOrigins: ['https://app.example.com'] });
      const origin = 'https://app.example.com';
      const queue = uniqueQueue('cors');

      const preflight = await send(s, 'OPTIONS', '/enqueue', {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,idempotency-key,traceparent',
      });
      expect(preflight.status, preflight.text).to.equal(204);
      expect(preflight.headers['access-control-allow-origin']).to.equal(origin);
      const methods = String(preflight.headers['access-control-allow-methods']).split(/,\s*/);
      expect(methods).to.include.members(['GET', 'POST', 'PATCH', 'DELETE']);
      const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase().split(/,\s*/);
      expect(allowed).to.include.members(['content-type', 'authorization', 'idempotency-key', 'traceparent', 'x-request-id']);
      expect(String(preflight.headers.vary).toLowerCase()).to.include('origin');

      const posted = await send(s, 'POST', '/enqueue', { origin, 'content-type': 'application/json' }, JSON.stringify({ id: 'a', queue, timeout: 60 }));
      expect(posted.status, posted.text).to.equal(202);
      expect(posted.headers['access-control-allow-origin']).to.equal(origin);
      expect(String(posted.headers.vary).toLowerCase()).to.include('origin');
      const leased = await send(s, 'GET', nextPath(queue), { origin });
      expect(leased.status, leased.text).to.equal(200);
      expect(leased.headers['access-control-allow-origin']).to.equal(origin);
      expect(leased.body.map((j: { id: string }) => j.id)).to.deep.equal(['a']);

      await enqueue(s, queue, 'b');
      const other = 'https://evil.example';
      expectForbidden(
        await send(s, 'OPTIONS', '/enqueue', { origin: other, 'access-control-request-method': 'POST' }),
        'forbidden-origin',
        'preflight from another origin',
      );
      expectForbidden(await send(s, 'GET', nextPath(queue), { origin: other }), 'forbidden-origin', other);
      expect(await leaseAll(s, queue)).to.deep.equal([['b', 1]]);
    });

    it('--allowed-origins * allows every origin, each echoed back', async () => {
      const s = await server({ allowedOrigins: ['*'] });
      for (const origin of ['https://a.example', 'http://localhost:3000']) {
        const reply = await send(s, 'GET', '/health', { origin });
        expect(reply.status, `${origin}: ${reply.text}`).to.equal(200);
        expect(reply.headers['access-control-allow-origin']).to.equal(origin);
      }
    });
  });

  it('the relay-server binary takes both lists from its flags and environment', async () => {
    const relayProcess = await spawnRelay({
      env: { RELAY_DATA_DIR: 'memory://', RELAY_ALLOWED_HOSTS: 'relay.example.com, *.svc.example' },
      args: ['--allowed-origins', 'https://app.example.com'],
    });
    try {
      expect((await send(relayProcess, 'GET', '/health', { host: 'a.svc.example' })).status).to.equal(200);
      expectForbidden(await send(relayProcess, 'GET', '/health', { host: 'evil.example' }), 'forbidden-host', 'evil.example');
      const allowed = await send(relayProcess, 'GET', '/health', { host: 'relay.example.com', origin: 'https://app.example.com' });
      expect(allowed.status, allowed.text).to.equal(200);
      expect(allowed.headers['access-control-allow-origin']).to.equal('https://app.example.com');
      expectForbidden(await send(relayProcess, 'GET', '/health', { origin: 'https://evil.example' }), 'forbidden-origin', 'evil origin');
    } finally {
      expect(await relayProcess.stop()).to.deep.equal({ code: 0, signal: null });
    }
  });
});
