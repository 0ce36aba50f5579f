import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { FEATURES, type Feature } from './case.js';
import { cases, runConformance, SetupError, type CaseResult } from './runner.js';

/**
 * relay-conformance <base-url>: the contract's black-box cases against a running server, one
 * line per case. Exit status: 0 when no case failed (skipped ones included), 1 when one did,
 * 2 when the server could not be judged (unreachable, a token needed) or the command is wrong.
 */

const seconds = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number of seconds above 0`);
  return n * 1000;
};

const count = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number from 1');
  return n;
};

const pattern = (value: string) => {
  try {
    return new RegExp(value, 'i');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

const features = (value: string) => {
  const list = value.split(',').map((f) => f.trim()).filter(Boolean);
  const unknown = list.filter((f) => !(FEATURES as readonly string[]).includes(f));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown feature ${unknown.join(', ')} (one of ${FEATURES.join(', ')})`);
  return list as Feature[];
};

function command(): Command {
  return new Command('relay-conformance')
    .description('Runs the relay contract (openapi.yaml and its semantics) against a server, black-box, and prints ok, FAIL or skip per case.')
    .argument('[base-url]', 'the server, e.g. http://127.0.0.1:8080 (a path prefix is kept)')
    .addOption(new Option('--token <token>', 'bearer token sent with every request (admin, for every case to run)').env('RELAY_TOKEN'))
    .option('--queue-prefix <prefix>', 'prefix of every queue the run uses (default: conformance-<random>, so runs do not meet)')
    .option('--only <pattern>', 'only the cases whose name matches this regular expression', pattern)
    .option('--require <features>', `fail, instead of skip, the cases of these optional features when the server lacks them (${FEATURES.join(',')})`, features, [])
    .option('--json', 'print one JSON report at the end instead of a line per case')
    .option('--list', 'list the cases and exit')
    .option('--request-timeout <seconds>', 'how long one request may take (a long poll: its wait more)', seconds('--request-timeout'), 10_000)
    .option('--redelivery-timeout <seconds>', "how long an expired lease may take to come back: the job's timeout plus the server's reap interval, and more", seconds('--redelivery-timeout'), 20_000)
    .option('--case-timeout <seconds>', 'how long one case may take', seconds('--case-timeout'), 120_000)
    .option('--concurrency <n>', 'cases run at once (each on queues of its own)', count, 4)
    .option('--spec <file>', "an openapi.yaml to judge by instead of the kit's own copy")
    .addHelpText(
      'after',
      '\nExit status: 0 no case failed; 1 a case failed; 2 the server could not be judged (unreachable, needs a token) or bad arguments.',
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

const line = (r: CaseResult) => (r.outcome === 'pass' ? `ok   ${r.name}` : `${r.outcome === 'fail' ? 'FAIL' : 'skip'} ${r.name} — ${r.reason ?? ''}`);

export async function main(argv: string[]): Promise<number> {
  const cmd = command();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const opts = cmd.opts<{
    token?: string;
    queuePrefix?: string;
    only?: RegExp;
    require: Feature[];
    json?: boolean;
    list?: boolean;
    requestTimeout: number;
    redeliveryTimeout: number;
    caseTimeout: number;
    concurrency: number;
    spec?: string;
  }>();
  if (opts.list) {
    for (const c of cases.filter((c) => !opts.only || opts.only.test(c.name))) {
      process.stdout.write(`${c.name}${c.needs ? ` [${c.needs.join(', ')}]` : ''}\n    ${c.description}\n`);
    }
    return 0;
  }
  const [baseUrl] = cmd.args;
  if (!baseUrl) {
    process.stderr.write('relay-conformance: the server base URL is missing (relay-conformance http://127.0.0.1:8080)\n');
    return 2;
  }
  try {
    new URL(baseUrl);
  } catch {
    process.stderr.write(`relay-conformance: ${JSON.stringify(baseUrl)} is not a URL\n`);
    return 2;
  }
  const selected = cases.filter((c) => !opts.only || opts.only.test(c.name));
  if (selected.length === 0) {
    process.stderr.write(`relay-conformance: no case matches --only ${opts.only?.source}\n`);
    return 2;
  }
  try {
    if (!opts.json) process.stdout.write(`relay-conformance: ${selected.length} cases against ${baseUrl}\n`);
    const report = await runConformance({
      baseUrl,
      token: opts.token,
      queuePrefix: opts.queuePrefix,
      only: opts.only,
      require: opts.require,
      requestTimeoutMs: opts.requestTimeout,
      redeliveryTimeoutMs: opts.redeliveryTimeout,
      caseTimeoutMs: opts.caseTimeout,
      concurrency: opts.concurrency,
      specPath: opts.spec,
      onResult: opts.json ? undefined : (r) => process.stdout.write(`${line(r)}\n`),
    });
    if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const features = report.features.length ? report.features.join(', ') : 'none';
      process.stdout.write(
        `relay-conformance: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped in ${(report.ms / 1000).toFixed(1)} s (${report.requests} requests; queues ${report.queuePrefix}-*; optional features: ${features})\n`,
      );
    }
    return report.failed > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof SetupError) {
      if (opts.json) process.stdout.write(`${JSON.stringify({ baseUrl, error: err.message }, null, 2)}\n`);
      process.stderr.write(`relay-conformance: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
