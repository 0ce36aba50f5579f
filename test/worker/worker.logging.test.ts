import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { RelayClient } from '@relay-ts/client';
import { closedPort } from '../helpers/net.js';
import { enqueue, eventually, relay, uniqueQueue } from '../helpers/relay.js';
import { Worker, type WorkerOptions } from '../../worker/src/index.js';

/** Everything written to process.stderr and through console while `run` runs. */
async function captureOutput(run: () => Promise<void>): Promise<{ stderr: string; console: unknown[][] }> {
  const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const saved = methods.map((m) => console[m]);
  const write = process.stderr.write;
  const out = { stderr: '', console: [] as unknown[][] };
  for (const m of methods) console[m] = (...args: unknown[]) => void out.console.push(args);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out.stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await run();
  } finally {
    process.stderr.write = write;
    methods.forEach((m, i) => (console[m] = saved[i]!));
  }
  return out;
}

/** Runs a worker that cannot reach its server, and one whose job fails for good, both with `options` (no logger: the default). */
async function troubledWorkers(options: Partial<WorkerOptions>): Promise<void> {
  const queue = uniqueQueue('log');
  await enqueue({ id: 'doomed', queue, timeout: 30 });
  const unreachable = new Worker({
    client: new RelayClient({ baseUrl: `http://127.0.0.1:${await closedPort()}`, retry: false }),
    queue: 'q',
    pollIntervalMs: 10,
    ...options,
    process: async () => undefined,
  });
  let failed = 0;
  const failing = new Worker({
    baseUrl: relay().url,
    queue,
    ...options,
    process: async () => {
      throw new Error('the template\nis missing');
    },
  });
  failing.on('failed', () => failed++);
  await unreachable.start();
  await failing.start();
  try {
    await eventually(async () => failed === 1, 5000);
  } finally {
    await Promise.all([unreachable.stop(), failing.stop()]);
  }
}

describe('Worker: logging', () => {
  it('without a logger, writes warnings and errors to stderr, one line each, without stacks', async () => {
    const out = await captureOutput(() => troubledWorkers({}));
    expect(out.console).to.deep.equal([]);
    const lines = out.stderr.split('\n');
    expect(lines.pop(), 'the output ends with a newline').to.equal('');
    expect(lines.length).to.be.at.least(2);
    for (const line of lines) expect(line).to.match(/^relay-worker (warn|error): /);
    expect(out.stderr).not.to.match(/^\s+at /m);
    expect(lines.find((l) => l.startsWith('relay-worker warn: poll failed'))).to.include('ECONNREFUSED');
    const failure = lines.find((l) => l.startsWith('relay-worker error: job failed for good'));
    expect(failure).to.include('jobId="doomed"').and.include('error="Error: the template\\nis missing"');
    // info and debug stay silent by default.
    expect(out.stderr).not.to.include('worker started');
  });

  it('logger: {} prints nothing at all', async () => {
    const out = await captureOutput(() => troubledWorkers({ logger: {} }));
    expect(out).to.deep.equal({ stderr: '', console: [] });
  });

  it('the pino adapter of the README logs the error of a failed job, a failure for good at level error', async () => {
    const readme = await readFile('worker/README.md', 'utf8');
    // The adapter exactly as the README shows it.
    expect(readme).to.include('logger: { info: (m, f) => log.info(f, m), warn: (m, f) => log.warn(f, m), error: (m, f) => log.error(f, m) }');
    const records: Array<Record<string, any>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) records.push(JSON.parse(line));
        done();
      },
    });
    const log = pino({ level: 'info' }, sink);
    await troubledWorkers({
      logger: { info: (m, f) => log.info(f, m), warn: (m, f) => log.warn(f, m), error: (m, f) => log.error(f, m) },
    });
    const failure = records.find((r) => String(r.msg).startsWith('job failed'));
    expect(failure, JSON.stringify(records)).to.include({ level: 50, jobId: 'doomed', outcome: 'failed' });
    expect(failure!.error).to.include({ name: 'Error', message: 'the template\nis missing' });
    expect(failure!.error.stack).to.be.a('string');
    const pollFailed = records.find((r) => r.msg === 'poll failed');
    expect(pollFailed).to.include({ level: 40 });
    expect(pollFailed!.error).to.include({ name: 'RetryableError', reason: 'network' });
    expect(pollFailed!.error.message).to.include('ECONNREFUSED');
  });

  it('a failure that will be retried is a warning', async () => {
    const queue = uniqueQueue('log');
    await enqueue({ id: 'flaky', queue, timeout: 30, max_retries: 1 });
    const seen: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const worker = new Worker({
      baseUrl: relay().url,
      queue,
      logger: {
        warn: (m, f) => seen.push(['warn', m, f]),
        error: (m, f) => seen.push(['error', m, f]),
      },
      process: async () => {
        throw new Error('try again');
      },
    });
    let failed = 0;
    worker.on('failed', () => failed++);
    await worker.start();
    try {
      await eventually(async () => failed === 1, 5000);
    } finally {
      await worker.stop();
    }
    const [level, message, fields] = seen.find(([, m]) => m.startsWith('job failed'))!;
    expect([level, message]).to.deep.equal(['warn', 'job failed; it will be retried']);
    expect(fields).to.include({ outcome: 'retrying', jobId: 'flaky' });
    expect(fields!.runAt).to.be.a('string');
  });
});
