/**
 * npm run bench -- --profile: the relay server under `node --cpu-prof` through one processing
 * phase with per-job completion (worker concurrency 8, or --concurrency), then the functions with the most
 * self time, by function and by package, from the .cpuprofile it wrote on exit. `--against <ref>`
 * profiles an earlier commit's server instead (built as bench:ab builds it).
 */
import { mkdtempSync, readdirSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { preload, truncate } from './db.js';
import { Relay } from './relay.js';
import { buildCheckout } from './checkout.js';
import { ServerProcess } from './server.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/**
 * Self time (ms) per function (name + file:line) and per package (node_modules/<pkg>, node:*,
 * the relay packages), over the samples taken within `window` (µs, CLOCK_MONOTONIC: the clock
 * of both V8's profile timestamps and process.hrtime). Shares are of the busy time: idle apart.
 */
export function selfTimes(
  profile: CpuProfile,
  window?: [number, number],
): { busy: number; idle: number; byFunction: SelfTime[]; byPackage: SelfTime[]; byCaller: SelfTime[] } {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const perNode = new Map<number, number>();
  // Sample i was taken at startTime + sum(timeDeltas[0..i]); it stands for the interval until
  // the next sample.
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window[0] || at > window[1])) continue;
    const id = profile.samples[i]!;
    perNode.set(id, (perNode.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000);
  }
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  const caller = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, ms] of perNode) {
    const { functionName, url, lineNumber } = byNode.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle += ms;
      continue;
    }
    busy += ms;
    const file = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/(server|client|worker)\/dist\//, '$1/dist/');
    const name = url ? `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}` : functionName || '(anonymous)';
    fn.set(name, (fn.get(name) ?? 0) + ms);
    const p = packageOf(url, functionName);
    pkg.set(p, (pkg.get(p) ?? 0) + ms);
    const c = callerPackageOf(id, byNode, parent) ?? p;
    caller.set(c, (caller.get(c) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m].map(([name, ms]) => ({ name, ms, share: ms / busy })).sort((a, b) => b.ms - a.ms);
  return { busy, idle, byFunction: sorted(fn), byPackage: sorted(pkg), byCaller: sorted(caller) };
}

/**
 * The nearest package on the stack, from the sample's frame up: a package's share then counts
 * the V8 builtins, natives and Node internals it calls (a RegExp, url.parse, a Map), which
 * self time leaves under "(native / V8)" and "node:*".
 */
function callerPackageOf(id: number, byNode: Map<number, ProfileNode>, parent: Map<number, number>): string | undefined {
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const { url } = byNode.get(at)!.callFrame;
    if (/node_modules\/|\/(server|client|worker)\/dist\//.test(url)) return packageOf(url, '');
  }
  return undefined;
}

/** Frames of the request validation stage: express-openapi-validator and the server's modules around it. */
const VALIDATION = /node_modules\/express-openapi-validator\/|\/server\/dist\/(http\/validator|http\/query|route-cache)\.js/;
/** Frames of what runs around and after it: Express, its router, the rest of the server. */
const AROUND = /node_modules\/(express|router)\/|\/(server|client|worker)\/dist\//;

/**
 * Busy time (ms) of the request validation stage within `window`: samples whose nearest frame
 * of either kind above is the validator's, so that the ajv code, builtins and Node internals it
 * calls count, and the routes it hands the request to do not.
 */
export function validationTime(profile: CpuProfile, window?: [number, number]): number {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inStage = new Map<number, boolean>();
  const stageOf = (id: number): boolean => {
    let hit = inStage.get(id);
    if (hit !== undefined) return hit;
    hit = false;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { url } = byNode.get(at)!.callFrame;
      if (VALIDATION.test(url)) {
        hit = true;
        break;
      }
      if (AROUND.test(url)) break;
    }
    inStage.set(id, hit);
    return hit;
  };
  let ms = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window[0] || at > window[1])) continue;
    if (stageOf(profile.samples[i]!)) ms += (profile.timeDeltas[i + 1] ?? 0) / 1000;
  }
  return ms;
}

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const own = /\/(server|client|worker)\/dist\//.exec(url);
  if (own) return `@relay-ts/${own[1]}`;
  return url;
}

/** CLOCK_MONOTONIC in µs, the clock of V8's profile timestamps. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export async function runProfile(url: string, options: { jobs: number; concurrency: number; serverConnections: number; queue: string; against?: string }): Promise<void> {
  const serverRoot = options.against === undefined ? undefined : buildCheckout(options.against);
  const dir = mkdtempSync(join(tmpdir(), 'relay-prof-'));
  const ctl = new pg.Client({ connectionString: url, application_name: 'relay-bench-control' });
  const server = await ServerProcess.start({
    databaseUrl: url,
    maxConnections: options.serverConnections,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    root: serverRoot,
  });
  await ctl.connect();
  let seconds: number;
  let window: [number, number];
  try {
    const relay = new Relay(server.url);
    // Warm up, then the measured phase.
    await truncate(ctl);
    await preload(ctl, options.queue, 2_000);
    await relay.process(options.queue, 2_000, { concurrency: options.concurrency, completionWindowMs: 0 });
    await truncate(ctl);
    await preload(ctl, options.queue, options.jobs);
    const from = monotonicUs();
    ({ seconds } = await relay.process(options.queue, options.jobs, { concurrency: options.concurrency, completionWindowMs: 0 }));
    window = [from, monotonicUs()];
    await truncate(ctl);
  } finally {
    await server.stop();
    await ctl.end();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const { busy, idle, byFunction, byPackage, byCaller } = selfTimes(profile, window!);
  const validation = validationTime(profile, window!);
  const rows = (items: SelfTime[], n: number) =>
    items.slice(0, n).map((s) => `| ${s.name.replaceAll('|', '\\|')} | ${s.ms.toFixed(0)} | ${(s.share * 100).toFixed(1)}% |`);
  const md = [
    `# relay server${options.against === undefined ? '' : ` of ${options.against}`} CPU profile: ${options.jobs} jobs processed in ${seconds!.toFixed(2)} s (${Math.round(options.jobs / seconds!)} jobs/s), worker concurrency ${options.concurrency}, per-job completion, after a 2 000-job warm-up`,
    '',
    `Profile: ${join(dir, file)}. Samples of the measured phase only (${seconds!.toFixed(2)} s): ${(busy / 1000).toFixed(2)} s busy, ${(idle / 1000).toFixed(2)} s idle; shares are of the busy time.`,
    '',
    `Request validation (express-openapi-validator with server/src/http/validator.ts, query.ts and route-cache.ts, and what they call short of Express and the routes): ${validation.toFixed(0)} ms, ${((validation / busy) * 100).toFixed(1)}% of the busy time.`,
    '',
    '## Self time by package',
    '',
    '| package | ms | share |',
    '|---|---|---|',
    ...rows(byPackage, 25),
    '',
    '## Time by package, with the natives and Node internals it calls',
    '',
    '| package | ms | share |',
    '|---|---|---|',
    ...rows(byCaller, 25),
    '',
    '## Self time by function (top 40)',
    '',
    '| function | ms | share |',
    '|---|---|---|',
    ...rows(byFunction, 40),
    '',
  ].join('\n');
  const root = fileURLToPath(new URL('../../', import.meta.url));
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  const out = options.against === undefined ? 'profile-latest.md' : `profile-${options.against.replace(/[^\w.-]/g, '_')}.md`;
  writeFileSync(join(root, 'bench-results', out), md);
  process.stdout.write(md);
  process.stderr.write(`wrote bench-results/${out}\n`);
}
