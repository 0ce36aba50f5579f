import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RelayServer } from '../../server/src/index.js';
import { bin, repo, run, typeCheck } from '../helpers/pack.js';
import { startRelay } from '../helpers/relay.js';

/**
 * The package as a user receives it: `npm pack` the client, install the tarball into an empty
 * project, type-check a small consumer with `tsc --strict --noEmit` (DOM and ES libraries only,
 * no Node types, the package's own .d.ts checked too), then run it against a live server.
 */


const consumer = `
import {
  JobExistsError, RelayClient, RelayError, RetryableError, ValidationError,
  type Job, type NewJob, type RetryOptions,
} from '@relay-ts/client';

interface Mail { to: string; attempt: number }
interface Progress { sent: number }

// Browser-safe: no Node types are loaded; the URL comes from the environment when there is one.
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const baseUrl = env.RELAY_URL ?? 'http://127.0.0.1:8080';
const queue = env.RELAY_QUEUE ?? 'pack-test';

const retry: RetryOptions = { maxAttempts: 3, initialDelayMs: 10 };
const producer = new RelayClient<Mail, Progress>({ baseUrl, retry, timeoutMs: 5000 });
const worker = new RelayClient<Mail, Progress>({ baseUrl });

const job: NewJob<Mail, Progress> = { id: 'mail-1', queue, timeout: 30, payload: { to: 'ada@example.com', attempt: 1 }, run_at: new Date() };
// @ts-expect-error an unknown field (a typo of max_retries) does not compile
const typo: NewJob<Mail, Progress> = { id: 'x', queue, timeout: 30, max_retry: 3 };
// @ts-expect-error the payload must be a Mail
const wrongPayload: NewJob<Mail, Progress> = { id: 'x', queue, timeout: 30, payload: { to: 42 } };
void typo;
void wrongPayload;

await producer.enqueue(job);
let duplicate = 'none';
try {
  await producer.enqueue(job);
} catch (err) {
  if (err instanceof JobExistsError) duplicate = \`\${err.name} \${err.status}\`;
}

const jobs: Job<Mail, Progress>[] = await worker.next(queue, { numJobs: 10 });
const first = jobs[0];
if (!first) throw new Error('next returned no job');
const to: string = first.payload.to;
await worker.heartbeat(queue, first.id, { state: { sent: 1 }, runId: first.run_id });
await worker.complete(queue, first.id, { runId: first.run_id });

let invalid = 'none';
try {
  await producer.enqueue({ id: '', queue, timeout: 1 });
} catch (err) {
  if (err instanceof ValidationError && err instanceof RelayError) invalid = err.problem?.errors?.[0]?.path ?? 'no path';
}

let unreachable = 'none';
try {
  await new RelayClient({ baseUrl: 'http://127.0.0.1:1', retry: false }).health();
} catch (err) {
  if (err instanceof RetryableError) unreachable = err.reason;
}

const health = await worker.health();
console.log(JSON.stringify({ to, duplicate, invalid, unreachable, database: health.database, left: await worker.next(queue) }));
`;

const tsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022', 'DOM'],
    types: [],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
  },
  files: ['consumer.ts'],
};

describe('the packed @relay-ts/client', function () {
  this.timeout(120_000);
  let dir: string;
  let server: RelayServer;
  let tarball: string;
  let packed: { unpackedSize: number; size: number; files: Array<{ path: string }> };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-client-pack-'));
    server = await startRelay();
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: join(repo, 'client') });
    packed = JSON.parse(stdout.slice(stdout.indexOf('[')))[0];
    tarball = join(dir, (packed as unknown as { filename: string }).filename);
    const project = join(dir, 'consumer');
    await run('mkdir', ['-p', project]);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await writeFile(join(project, 'consumer.ts'), consumer);
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project });
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('holds the built ESM with .d.ts and nothing of the repository around it', () => {
    const files = packed.files.map((f) => f.path);
    expect(files).to.include.members(['package.json', 'dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE']);
    expect(files.filter((f) => !/^(dist|src)\/|^(package\.json|README\.md|LICENSE)$/.test(f))).to.deep.equal([]);
    expect(files.some((f) => f.endsWith('.tsbuildinfo') || f.includes('test'))).to.equal(false);
    console.log(`      packed ${packed.size} bytes, unpacked ${packed.unpackedSize} bytes, ${files.length} files`);
  });

  it('installs with openapi-fetch and @opentelemetry/api (the API only, no SDK) as its only dependencies', async () => {
    const modules = join(dir, 'consumer', 'node_modules');
    const lock = JSON.parse(await readFile(join(dir, 'consumer', 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const installed = Object.keys(lock.packages).filter((p) => p !== '').map((p) => p.replace(/^node_modules\//, '')).sort();
    expect(installed).to.deep.equal(['@opentelemetry/api', '@relay-ts/client', 'openapi-fetch', 'openapi-typescript-helpers']);
    const manifest = JSON.parse(await readFile(join(modules, '@relay-ts', 'client', 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies)).to.deep.equal(['@opentelemetry/api', 'openapi-fetch']);
    expect(manifest.exports['.']).to.include({ types: './dist/index.d.ts', import: './dist/index.js' });
    const { stdout } = await run('du', ['-sk', '--apparent-size', modules]);
    console.log(`      node_modules of the consumer: ${stdout.split('\t')[0]} KiB`);
  });

  it('uses no Node-only API in its JavaScript', async () => {
    const distDir = join(dir, 'consumer', 'node_modules', '@relay-ts', 'client', 'dist');
    for (const file of (await readdir(distDir)).filter((f) => f.endsWith('.js'))) {
      const js = await readFile(join(distDir, file), 'utf8');
      expect(js, file).not.to.match(/from ['"]node:|require\(|\bprocess\.|\bBuffer\b|\bglobal\./);
      for (const specifier of js.matchAll(/from ['"]([^'"]+)['"]/g)) {
        expect(specifier[1], `${file} imports`).to.match(/^(\.\/|openapi-fetch$|@opentelemetry\/api$)/);
      }
    }
  });

  it('type-checks a consumer with tsc --strict --noEmit, without Node types', async () => {
    await typeCheck(['--strict', '--noEmit', '-p', 'tsconfig.json'], join(dir, 'consumer'));
  });

  it('runs the consumer against a live server', async () => {
    const { stdout } = await run(bin('tsx'), ['consumer.ts'], {
      cwd: join(dir, 'consumer'),
      env: { ...process.env, RELAY_URL: server.url, RELAY_QUEUE: `pack-${Date.now()}` },
    });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(out).to.deep.equal({
      to: 'ada@example.com',
      duplicate: 'JobExistsError 409',
      invalid: '/body/id',
      unreachable: 'network',
      database: server.databaseKind,
      left: [],
    });
  });
});
