import { randomUUID } from 'node:crypto';
import { FEATURES, type Case, type CaseContext, type Feature } from './case.js';
import { errorCases } from './cases/errors.js';
import { jobCases } from './cases/jobs.js';
import { leaseCases } from './cases/leases.js';
import { optionalCases } from './cases/optional.js';
import { Contract } from './contract.js';
import { CaseFailure, Skip } from './expect.js';
import { Session } from './http.js';

/** Every case, in the order they are reported. */
export const cases: readonly Case[] = [...jobCases, ...leaseCases, ...errorCases, ...optionalCases];

export interface RunOptions {
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>`; an admin token lets every case run. */
  token?: string;
  /** Every queue the run uses begins with it; default `conformance-<random>`, so that runs do not meet. */
  queuePrefix?: string;
  /** Only the cases whose name matches. */
  only?: RegExp;
  /** How many cases run at once. */
  concurrency?: number;
  requestTimeoutMs?: number;
  /** How long an expired lease may take to come back (its timeout plus the server's reap interval). */
  redeliveryTimeoutMs?: number;
  caseTimeoutMs?: number;
  /** Features whose absence fails their cases instead of skipping them. */
  require?: Feature[];
  /** Another openapi.yaml than the one the kit ships. */
  specPath?: string;
  /** Called with each result, in the cases' order, as soon as it and those before it are known. */
  onResult?: (result: CaseResult) => void;
}

export interface CaseResult {
  name: string;
  outcome: 'pass' | 'fail' | 'skip';
  reason?: string;
  ms: number;
}

export interface RunReport {
  baseUrl: string;
  queuePrefix: string;
  /** The optional features the server offers to the kit's token. */
  features: Feature[];
  role: string | null | undefined;
  results: CaseResult[];
  passed: number;
  failed: number;
  skipped: number;
  ms: number;
  requests: number;
}

/** The server could not be judged at all: unreachable, or it wants a token the kit was not given. */
export class SetupError extends Error {
  override name = 'SetupError';
}

interface Probe {
  features: Set<Feature>;
  /** Why each feature the server lacks is missing. */
  missing: Map<Feature, string>;
  role: string | null | undefined;
}

async function probe(options: Required<Pick<RunOptions, 'baseUrl' | 'requestTimeoutMs'>> & RunOptions, prefix: string): Promise<Probe> {
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  const get = async (path: string, token: string | undefined) => {
    try {
      const res = await fetch(new URL(path, base), {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(options.requestTimeoutMs),
      });
      const text = await res.text();
      let body: any;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.status, body };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      throw new SetupError(`cannot reach ${options.baseUrl}: ${e.cause?.code ?? e.cause?.message ?? e.message}`);
    }
  };
  const features = new Set<Feature>();
  const missing = new Map<Feature, string>();
  await get('health', undefined);

  let role: string | null | undefined;
  const anonymous = await get('v1/whoami', undefined);
  if (anonymous.status === 401) {
    if (!options.token) throw new SetupError(`${options.baseUrl} asks for a token (GET /v1/whoami answered 401): pass one with --token`);
    const mine = await get('v1/whoami', options.token);
    if (mine.status === 401) throw new SetupError(`${options.baseUrl} does not know the token given (GET /v1/whoami answered 401)`);
    role = typeof mine.body?.role === 'string' ? mine.body.role : undefined;
    // The cases call every operation, each role's: another role's 403s would say nothing of the server.
    if (role !== undefined && role !== 'admin') throw new SetupError(`the token given has the role ${role}: the kit calls every operation, so it needs an admin token`);
    features.add('auth');
  } else {
    role = anonymous.status === 200 ? (anonymous.body?.role ?? null) : undefined;
    missing.set('auth', options.token ? 'the server has no tokens (GET /v1/whoami without one answered 200)' : 'no --token given, and the server asks for none');
  }

  const queue = await get(`v1/queues/${encodeURIComponent(`${prefix}-probe`)}`, options.token);
  if (queue.status === 200) features.add('operations');
  else missing.set('operations', `no operations API for this token (GET /v1/queues/{queue} answered ${queue.status})`);
  const metrics = await get('metrics', options.token);
  if (metrics.status === 200) features.add('metrics');
  else missing.set('metrics', `no metrics (GET /metrics answered ${metrics.status})`);
  // Idempotency-Key cannot be seen without a write: its case finds out, and skips.
  features.add('idempotency');
  return { features, missing, role };
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CaseFailure(`did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export async function runConformance(options: RunOptions): Promise<RunReport> {
  const started = performance.now();
  const settings = {
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    redeliveryTimeoutMs: options.redeliveryTimeoutMs ?? 20_000,
    caseTimeoutMs: options.caseTimeoutMs ?? 120_000,
    concurrency: Math.max(1, options.concurrency ?? 4),
  };
  const prefix = options.queuePrefix ?? `conformance-${randomUUID().slice(0, 8)}`;
  const contract = new Contract(options.specPath);
  const found = await probe({ ...options, requestTimeoutMs: settings.requestTimeoutMs }, prefix);
  const required = new Set(options.require ?? []);
  for (const feature of required) if (!FEATURES.includes(feature)) throw new SetupError(`unknown feature ${feature} (${FEATURES.join(', ')})`);
  const api = new Session(contract, { baseUrl: options.baseUrl, token: options.token, requestTimeoutMs: settings.requestTimeoutMs });
  const requestsBefore = Session.requests;

  const selected = cases.filter((c) => !options.only || options.only.test(c.name));
  const results: Array<CaseResult | undefined> = selected.map(() => undefined);
  let reported = 0;
  const report = () => {
    while (reported < results.length && results[reported]) {
      const result = results[reported++]!;
      options.onResult?.(result);
    }
  };

  const runCase = async (c: Case): Promise<CaseResult> => {
    const caseStarted = performance.now();
    const done = (outcome: CaseResult['outcome'], reason?: string): CaseResult => ({ name: c.name, outcome, ...(reason ? { reason } : {}), ms: Math.round(performance.now() - caseStarted) });
    const absent = (c.needs ?? []).find((f) => !found.features.has(f));
    if (absent) return required.has(absent) ? done('fail', `--require ${absent}, but ${found.missing.get(absent)}`) : done('skip', found.missing.get(absent));
    const ctx: CaseContext = {
      api,
      queue: (suffix?: string) => `${prefix}-${c.name}${suffix ? `-${suffix}` : ''}`,
      features: found.features,
      role: found.role,
      settings: { redeliveryTimeoutMs: settings.redeliveryTimeoutMs },
    };
    try {
      await withTimeout(c.run(ctx), settings.caseTimeoutMs);
      return done('pass');
    } catch (err) {
      if (err instanceof Skip) return (c.needs ?? []).some((f) => required.has(f)) ? done('fail', `required, but ${err.message}`) : done('skip', err.message);
      if (err instanceof CaseFailure) return done('fail', err.message);
      // A bug of the kit, or of the server's answer in a way no check foresaw: reported, not hidden.
      return done('fail', `unexpected: ${(err as Error).stack ?? String(err)}`);
    }
  };

  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < selected.length) {
      const i = nextIndex++;
      results[i] = await runCase(selected[i]!);
      report();
    }
  };
  await Promise.all(Array.from({ length: Math.min(settings.concurrency, selected.length) }, worker));

  const final = results as CaseResult[];
  return {
    baseUrl: options.baseUrl,
    queuePrefix: prefix,
    features: FEATURES.filter((f) => found.features.has(f)),
    role: found.role,
    results: final,
    passed: final.filter((r) => r.outcome === 'pass').length,
    failed: final.filter((r) => r.outcome === 'fail').length,
    skipped: final.filter((r) => r.outcome === 'skip').length,
    ms: Math.round(performance.now() - started),
    requests: Session.requests - requestsBefore,
  };
}
