import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RelayServer } from '../../server/src/index.js';
import { repo, run } from '../helpers/pack.js';
import { startRelay } from '../helpers/relay.js';

/**
 * The kit as a user receives it: `npm pack` the conformance package, install the tarball into
 * an empty project (no server, no client), and run its bin from there against a live server.
 */

describe('the packed @relay-ts/conformance', function () {
  this.timeout(180_000);
  let dir: string;
  let project: string;
  let server: RelayServer;
  let packed: { filename: string; files: Array<{ path: string }> };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-conformance-pack-'));
    server = await startRelay();
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: join(repo, 'conformance') });
    packed = JSON.parse(stdout.slice(stdout.indexOf('[')))[0];
    project = join(dir, 'project');
    await run('mkdir', ['-p', project]);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'project', private: true }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed.filename)], { cwd: project });
  });
  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('holds the bin, the built code with its sources and its own openapi.yaml, nothing else of the repository', () => {
    const files = packed.files.map((f) => f.path);
    expect(files).to.include.members(['package.json', 'bin/relay-conformance.js', 'dist/bin.js', 'dist/index.js', 'dist/index.d.ts', 'openapi.yaml', 'README.md', 'LICENSE']);
    expect(files.filter((f) => !/^(dist|bin|src)\/|^(package\.json|openapi\.yaml|README\.md|LICENSE)$/.test(f))).to.deep.equal([]);
  });

  it('installs without the server, the client or their dependencies', async () => {
    const lock = JSON.parse(await readFile(join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const installed = Object.keys(lock.packages)
      .filter((p) => p !== '')
      .map((p) => p.replace(/^node_modules\//, ''))
      .filter((p) => !p.includes('/node_modules/'));
    expect(installed).to.include.members(['@relay-ts/conformance', 'ajv', 'ajv-formats', 'commander', 'js-yaml']);
    for (const absent of ['@relay-ts/server', '@relay-ts/client', 'express', 'express-openapi-validator', 'pg', '@electric-sql/pglite']) {
      expect(installed, absent).not.to.include(absent);
    }
  });

  it('runs from the installed bin against a server', async () => {
    const { stdout } = await run(join(project, 'node_modules', '.bin', 'relay-conformance'), [server.url, '--only', '^(health|enqueue-single|fifo)$'], { cwd: project });
    expect(stdout).to.match(/^ok {3}health$/m).and.match(/^ok {3}enqueue-single$/m).and.match(/^ok {3}fifo$/m);
    expect(stdout).to.match(/^relay-conformance: 3 passed, 0 failed, 0 skipped in /m);
  });
});
