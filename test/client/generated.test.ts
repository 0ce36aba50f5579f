import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = 'scripts/check-generated.sh';

/** Runs the drift check on the given files; resolves to its exit code and output. */
async function check(spec: string, generated: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('bash', [script, spec, generated]);
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe('the generated client types (drift check)', function () {
  this.timeout(60_000);
  let dir: string;
  let spec: string;
  let generated: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-drift-'));
    spec = join(dir, 'openapi.yaml');
    generated = join(dir, 'schema.ts');
    await copyFile('openapi.yaml', spec);
    await copyFile('client/src/schema.ts', generated);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('passes when client/src/schema.ts is what openapi.yaml generates', async () => {
    const result = await check(spec, generated);
    expect(result.output).to.match(/matches/);
    expect(result.code).to.equal(0);
  });

  it('fails with a clear message when openapi.yaml changes without regeneration', async () => {
    const original = await readFile(spec, 'utf8');
    const marker = '        run_at:\n          $ref: \'#/components/schemas/RunAt\'\n    RescheduleRequest:';
    expect(original).to.include(marker);
    await writeFile(spec, original.replace(marker, marker.replace('    RescheduleRequest:', '        priority:\n          type: integer\n    RescheduleRequest:')));

    const result = await check(spec, generated);
    expect(result.code).to.equal(1);
    expect(result.output).to.include('out of date');
    expect(result.output).to.include('npm run generate');
    expect(result.output).to.match(/^\+\s+priority\?: number;/m);
  });

  it('fails when the generated file was edited by hand', async () => {
    const text = await readFile(generated, 'utf8');
    await writeFile(generated, text.replace('max_retries?: components["schemas"]["MaxRetries"];', 'max_retries?: string;'));
    const result = await check(spec, generated);
    expect(result.code).to.equal(1);
    expect(result.output).to.match(/^-\s+max_retries\?: string;/m);
  });

  it('passes again once the types are regenerated from the changed document', async () => {
    const original = await readFile(spec, 'utf8');
    await writeFile(spec, original.replace('description: Which delivery this is; 1 on the first.', 'description: Which delivery this is (1 on the first).'));
    expect((await check(spec, generated)).code).to.equal(1);
    await run('node_modules/.bin/openapi-typescript', [spec, '-o', generated]);
    expect((await check(spec, generated)).code).to.equal(0);
  });
});
