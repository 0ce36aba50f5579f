import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RelayServer } from '../../server/src/index.js';
import { call, startRelay, uniqueQueue } from '../helpers/relay.js';
import { bin, repo, run, typeCheck } from '../helpers/pack.js';

/**
 * The client and the worker as a user installs them today (the READMEs' way): `npm pack` both,
 * install the two tarballs into an empty project, and run the READMEs' own examples there
 * against a live server. The examples are taken from the READMEs' code blocks and changed only
 * in their queue and in the URL of the mail API the worker example calls.
 */


/** The ```ts blocks of a README. */
async function codeBlocks(readme: string): Promise<string[]> {
  const text = await readFile(join(repo, readme), 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

async function block(readme: string, marker: string): Promise<string> {
  const found = (await codeBlocks(readme)).filter((b) => b.includes(marker));
  expect(found, `${readme}: the block with ${marker}`).to.have.length(1);
  return found[0]!;
}

const tsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022', 'DOM'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    typeRoots: [join(repo, 'node_modules', '@types')],
    types: ['node'],
  },
  files: ['producer.ts', 'worker.ts'],
};

describe('the packed @relay-ts/client and @relay-ts/worker, installed as the READMEs say', function () {
  this.timeout(180_000);
  let dir: string;
  let project: string;
  let server: RelayServer;
  let mailApi: Server;
  const mails: Array<{ to: string; template: string }> = [];
  const queues = { client: uniqueQueue('readme'), worker: uniqueQueue('readme') };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-worker-pack-'));
    server = await startRelay();
    // Stands in for https://mail.example.com/send of the worker example.
    mailApi = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk));
      req.on('end', () => {
        mails.push(JSON.parse(body));
        res.end('{}');
      });
    });
    mailApi.listen(0, '127.0.0.1');
    await once(mailApi, 'listening');

    const { stdout } = await run('npm', ['pack', '--json', '-w', 'client', '-w', 'worker', '--pack-destination', dir], { cwd: repo });
    const packed = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ name: string; filename: string }>;
    expect(packed.map((p) => p.name).sort()).to.deep.equal(['@relay-ts/client', '@relay-ts/worker']);
    project = join(dir, 'my-app');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'my-app', private: true, type: 'module' }));
    const tarballs = packed.map((p) => join(dir, p.filename));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], { cwd: project });

    const adapt = (code: string, queue: string) => code.replaceAll("'mail'", `'${queue}'`);
    const producer = (await block('client/README.md', 'await relay.enqueue({')) + (await block('client/README.md', 'const [job] = await relay.next('));
    const mailApiUrl = `http://127.0.0.1:${(mailApi.address() as AddressInfo).port}/send`;
    const worker = (await block('worker/README.md', 'worker.start({ handleSignals: true })')).replace('https://mail.example.com/send', mailApiUrl);
    expect(worker).to.include(mailApiUrl);
    await writeFile(join(project, 'producer.ts'), adapt(producer, queues.client));
    await writeFile(join(project, 'worker.ts'), adapt(worker, queues.worker));
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  });
  after(async () => {
    mailApi?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('has one version across the workspace, and the worker takes any compatible client', async () => {
    const manifest = async (path: string) => JSON.parse(await readFile(join(repo, path), 'utf8')) as Record<string, any>;
    const versions = await Promise.all(['package.json', 'client/package.json', 'worker/package.json', 'server/package.json'].map(async (p) => (await manifest(p)).version));
    expect(new Set(versions).size, versions.join(', ')).to.equal(1);
    const installed = JSON.parse(await readFile(join(project, 'node_modules', '@relay-ts', 'worker', 'package.json'), 'utf8'));
    expect(installed.dependencies['@relay-ts/client']).to.equal(`^${versions[0]}`);
    for (const name of ['client', 'worker']) {
      const m = JSON.parse(await readFile(join(project, 'node_modules', '@relay-ts', name, 'package.json'), 'utf8'));
      expect(m, name).to.include({ version: versions[0], license: 'MIT' });
      expect(m.engines, name).to.deep.equal({ node: '>=20.19' });
      expect(m.repository, name).to.deep.equal({ type: 'git', url: 'git+https://github.com/relay-ts/relay-ts.git', directory: name });
    }
  });

  it('the README examples type-check with tsc --strict against the installed packages', async () => {
    await typeCheck(['-p', 'tsconfig.json'], project);
  });

  it("the client README's producer enqueues, and its consumer leases, checkpoints and completes a job", async () => {
    const queue = queues.client;
    await run(bin('tsx'), ['producer.ts'], { cwd: project, env: { ...process.env, RELAY_URL: server.url } });
    const enqueued = ['invoice-1043', 'invoice-1044'];
    // The consumer completed one of the two due jobs; the other is still waiting.
    const left = await call('GET', '/v1/next', { baseUrl: server.url, query: { queue, num_jobs: 10 } });
    expect(left.status).to.equal(200);
    expect(left.body).to.have.length(1);
    expect(enqueued).to.include(left.body[0].id);
    const completedId = enqueued.find((id) => id !== left.body[0].id)!;
    const again = await call('POST', '/enqueue', { baseUrl: server.url, json: { id: completedId, queue, timeout: 30 } });
    expect(again.status, 'the completed job is gone').to.equal(202);
    // invoice-1042 waits for its run_at a minute from now.
    const future = await call('POST', '/enqueue', { baseUrl: server.url, json: { id: 'invoice-1042', queue, timeout: 30 } });
    expect(future.status).to.equal(409);
  });

  it("the worker README's complete worker processes its job, completes it, and stops on SIGTERM", async () => {
    const queue = queues.worker;
    const child = spawn(bin('tsx'), ['worker.ts'], { cwd: project, env: { ...process.env, RELAY_URL: server.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const deadline = Date.now() + 60_000;
      while (!stdout.includes('newsletter-42 sent')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no completion; stdout: ${stdout}; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code, stderr).to.equal(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(mails).to.deep.equal([
      { to: 'ada@example.com', template: 'newsletter' },
      { to: 'alan@example.com', template: 'newsletter' },
    ]);
    expect((await call('GET', '/v1/next', { baseUrl: server.url, query: { queue } })).status).to.equal(204);
    expect((await call('GET', '/v1/failed', { baseUrl: server.url, query: { queue } })).body).to.deep.equal([]);
    expect(stderr).to.equal('');
  });
});
