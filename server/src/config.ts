import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option, type OptionValues } from 'commander';
import { checkDistinct, parseTokens, type AuthToken } from './http/auth.js';
import { processCount } from './cluster.js';
import { parseHostPattern, parseOriginPattern } from './http/origin-guard.js';
import { MAX_KEY_BYTES } from './job-rules.js';

export interface Config {
  port: number;
  host: string;
  /** Seconds between reaper runs; fractions allowed. */
  reapInterval: number;
  /** Unset: the embedded PGlite database in dataDir. */
  databaseUrl: string | undefined;
  maxConnections: number;
  dataDir: string;
  /** Largest request body in bytes; larger is a 413. */
  maxBody: number;
  statementTimeoutMs: number;
  connectionTimeoutMs: number;
  logLevel: string;
  /**
   * Host header values accepted besides loopback names. Empty: on a loopback host only
   * loopback names pass; on any other address every Host does.
   */
  allowedHosts: string[];
  /** Browser origins (scheme://host[:port], or *) allowed besides the server's own. */
  allowedOrigins: string[];
  /** Validate every response against openapi.yaml too (the test suite turns this on). */
  validateResponses: boolean;
  /** Tokens and their roles; none: every operation is open. */
  authTokens: AuthToken[];
  /** The most items of an array body (a batch); the contract's maxItems stays the ceiling. */
  maxBatchSize: number;
  /** The most bytes (UTF-8) of a job's queue and id together, at most MAX_KEY_BYTES. */
  maxKeyBytes: number;
  /** The largest page a listing answers; a larger `limit` gets this many. */
  maxPageSize: number;
  /** The most jobs one `next` answers, whatever num_jobs asks for. */
  maxNumJobs: number;
  /** Deepest nesting of a JSON request body. */
  maxJsonDepth: number;
  /** Roughly the largest answer of one `next`, bytes: past it, fewer jobs (at least one). */
  maxResponse: number;
  /** Concurrent HTTP connections; the requests of connections over it answer 429. */
  maxHttpConnections: number;
  /** Long polls waiting at once; one more answers 429. */
  maxWaitingPolls: number;
  /** How long an idle keep-alive connection stays open, ms. */
  keepAliveTimeoutMs: number;
  /** How often a queue with waiting long polls is re-checked without a notification, ms. */
  pollRecheckMs: number;
  /** How long an Idempotency-Key is remembered, seconds; 0 turns the header off. */
  idempotencyWindowSeconds: number;
  /** Failed jobs older than this are purged by the reaper, seconds; 0 keeps them forever. */
  failedRetentionSeconds: number;
  /** Serve the dashboard at /ui (http/ui.ts). */
  ui: boolean;
  /** The dashboard shows no actions, whatever the token's role. */
  uiReadOnly: boolean;
  /** Whether GET /metrics is served (and jobs are counted for it). */
  metrics: boolean;
  /** Also serve /metrics alone on this port (same host); undefined: not. */
  metricsPort: number | undefined;
  /** Seconds between reads of the queue gauges from the database. */
  metricsRefreshSeconds: number;
  /** Distinct queue label values at most; later queues are reported as queue="_other". */
  metricsMaxQueues: number;
  /** Server processes on one port (node:cluster, cluster.ts); more than 1 needs databaseUrl. */
  processes: number;
  /** Seconds between flushes of this server's throughput counts to the database (throughput.ts). */
  throughputFlushSeconds: number;
  /**
   * Optimisations turned off, for the bench's same-run A/B (scripts/bench/ab.ts), from
   * RELAY_BENCH_DISABLE (comma-separated): not for production use.
   */
  disabled: ReadonlySet<Optimisation>;
}

/** The limits the HTTP layer applies to each request. */
export type RequestLimits = Pick<
  Config,
  'maxBody' | 'maxJsonDepth' | 'maxNumJobs' | 'maxResponse' | 'maxBatchSize' | 'maxKeyBytes' | 'maxPageSize' | 'validateResponses'
>;

/** The largest `limit` openapi.yaml lets a listing ask for: --max-page-size can only lower it. */
const CONTRACT_MAX_PAGE = 1000;
/** The largest batch openapi.yaml takes (POST /enqueue/batch's maxItems). */
const CONTRACT_MAX_BATCH = 10_000;

/**
 * The optimisations a bench may turn off to measure what each one is worth; and `metrics`,
 * whose cost is measured the same way.
 */
export const OPTIMISATIONS = ['hand-off', 'known-empty', 'coalescing', 'metrics', 'cheap-validation'] as const;
export type Optimisation = (typeof OPTIMISATIONS)[number];

function disabledOptimisations(value: string | undefined): ReadonlySet<Optimisation> {
  const names = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!(OPTIMISATIONS as readonly string[]).includes(name)) throw new ConfigError(`RELAY_BENCH_DISABLE: unknown optimisation ${JSON.stringify(name)} (one of ${OPTIMISATIONS.join(', ')})`);
  }
  return new Set(names as Optimisation[]);
}

export const defaults: Config = {
  port: 8080,
  host: '127.0.0.1',
  reapInterval: 5,
  databaseUrl: undefined,
  maxConnections: 10,
  dataDir: './.relay-data',
  maxBody: 16 * 1024 * 1024,
  statementTimeoutMs: 5_000,
  connectionTimeoutMs: 5_000,
  logLevel: 'info',
  allowedHosts: [],
  allowedOrigins: [],
  validateResponses: false,
  authTokens: [],
  maxBatchSize: CONTRACT_MAX_BATCH,
  maxKeyBytes: MAX_KEY_BYTES,
  maxPageSize: CONTRACT_MAX_PAGE,
  maxNumJobs: 1000,
  maxJsonDepth: 128,
  maxResponse: 16 * 1024 * 1024,
  maxHttpConnections: 10_000,
  maxWaitingPolls: 10_000,
  // Longer than the idle timeout of common load balancers (60 s), so that they, not relay,
  // close an idle connection: a request they send on one relay just closed would fail.
  keepAliveTimeoutMs: 75_000,
  pollRecheckMs: 1000,
  idempotencyWindowSeconds: 24 * 3600,
  failedRetentionSeconds: 14 * 86_400,
  ui: true,
  uiReadOnly: false,
  metrics: true,
  metricsPort: undefined,
  metricsRefreshSeconds: 5,
  metricsMaxQueues: 1000,
  processes: 1,
  throughputFlushSeconds: 5,
  disabled: new Set(),
};

/** A configuration value that cannot be used; the binary prints it on one line and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^\s*\d+\s*$/.test(value)) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 86_400) {
    throw new InvalidArgumentError('must be a number of seconds greater than 0 (fractions allowed)');
  }
  return n;
}

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };
/** A duration in whole seconds, minutes, hours or days (90, 90s, 30m, 12h, 14d); 0 allowed. */
function duration(value: string): number {
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/i.exec(value);
  const n = m ? Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!m || n > 100 * 365 * 86_400) throw new InvalidArgumentError('must be a duration such as 3600, 30m, 12h or 14d (0 for none), up to 100 years');
  return n;
}

/** A duration as --help and the README write it: 1209600 -> 14d. */
function formatDuration(n: number): string {
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    if (n > 0 && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3 };
function bytes(value: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) === 0) {
    throw new InvalidArgumentError('must be a size in bytes, optionally with a unit (e.g. 16777216, 512kb, 16mb)');
  }
  return Number(m[1]) * unit;
}

/** A size as --help and the README write it: 16777216 -> 16mb. */
function formatBytes(n: number): string {
  for (const [unit, size] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) {
    if (n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

function list(parseEntry: (entry: string) => unknown) {
  return (value: string): string[] => {
    const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
    for (const entry of entries) {
      try {
        parseEntry(entry);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    }
    return entries;
  };
}

/** Seconds, fractions allowed, at most a minute: a crash loses the counts of one interval. */
function flushSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 60) {
    throw new InvalidArgumentError('must be a number of seconds greater than 0 and at most 60 (fractions allowed)');
  }
  return n;
}

function databaseUrl(value: string): string {
  if (value === '') return value; // an empty DATABASE_URL means unset
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be a URL such as postgres://user@host:5432/db');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new InvalidArgumentError('must start with postgres:// or postgresql://');
  }
  return value;
}

/** RELAY_METRICS: on or off (the flag --no-metrics turns them off too). */
function metricsSwitch(value: string | undefined): boolean {
  if (value === undefined || value === '') return defaults.metrics;
  if (/^(on|true|1)$/i.test(value)) return true;
  if (/^(off|false|0)$/i.test(value)) return false;
  throw new ConfigError(`RELAY_METRICS: must be on or off, got ${JSON.stringify(value)}`);
}

function processes(value: string): number {
  try {
    return processCount(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function logLevel(value: string): string {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(value)) throw new InvalidArgumentError(`must be one of ${levels.join(', ')}`);
  return value;
}

/** shown: how --help writes the default, when not as JSON. */
function option(flags: string, description: string, env: string, parse: (v: string) => unknown, fallback?: unknown, shown?: string): Option {
  const opt = new Option(flags, description).env(env).argParser(parse);
  return fallback === undefined ? opt : opt.default(fallback, shown);
}

function program(): Command {
  return new Command('relay-server')
    .description('The relay job queue: an HTTP API over PostgreSQL, or an embedded PGlite when DATABASE_URL is unset.')
    .addOption(option('-p, --port <port>', 'port to listen on (0 picks a free one)', 'PORT', integer(0, 65535), defaults.port))
    .addOption(option('--host <host>', 'address to listen on', 'HOST', String, defaults.host))
    .addOption(option('--reap-interval <seconds>', 'seconds between lease expiry checks; fractions allowed', 'REAP_INTERVAL', seconds, defaults.reapInterval))
    .addOption(option('--database-url <url>', 'PostgreSQL connection URL; unset: embedded PGlite in --data-dir', 'DATABASE_URL', databaseUrl))
    .addOption(option('--database-max-connections <n>', 'PostgreSQL pool size', 'DATABASE_MAX_CONNECTIONS', integer(1, 10_000), defaults.maxConnections))
    .addOption(option('--data-dir <dir>', 'embedded database directory (memory:// keeps nothing)', 'RELAY_DATA_DIR', String, defaults.dataDir))
    .addOption(option('--max-body <size>', 'largest request body; larger is a 413', 'RELAY_MAX_BODY', bytes, defaults.maxBody, formatBytes(defaults.maxBody)))
    .addOption(option('--statement-timeout <ms>', 'PostgreSQL statement_timeout in milliseconds', 'RELAY_STATEMENT_TIMEOUT', integer(1, 3_600_000), defaults.statementTimeoutMs))
    .addOption(option('--connection-timeout <ms>', 'wait for a pool connection before answering 429, milliseconds', 'RELAY_CONNECTION_TIMEOUT', integer(1, 600_000), defaults.connectionTimeoutMs))
    .addOption(option('--max-num-jobs <n>', 'the most jobs one next answers; a larger num_jobs gets this many', 'RELAY_MAX_NUM_JOBS', integer(1, 100_000), defaults.maxNumJobs))
    .addOption(option('--max-batch-size <n>', 'the most items in one batch request (POST /enqueue/batch, POST /v1/complete/batch, the settlements of POST /v1/next; never more than the maxItems of openapi.yaml); more is a 400', 'RELAY_MAX_BATCH_SIZE', integer(1, CONTRACT_MAX_BATCH), defaults.maxBatchSize))
    .addOption(option('--max-key-length <bytes>', `the most bytes (UTF-8) of a job's queue and id together, wherever a request names them; more is a 400 (at most ${MAX_KEY_BYTES})`, 'RELAY_MAX_KEY_LENGTH', integer(2, MAX_KEY_BYTES), defaults.maxKeyBytes))
    .addOption(option('--max-page-size <n>', 'the most items one listing answers (GET /v1/jobs, GET /v1/failed); a larger limit gets this many', 'RELAY_MAX_PAGE_SIZE', integer(1, CONTRACT_MAX_PAGE), defaults.maxPageSize))
    .addOption(option('--max-json-depth <n>', 'deepest nesting of a JSON request body; deeper is a 400', 'RELAY_MAX_JSON_DEPTH', integer(2, 1000), defaults.maxJsonDepth))
    .addOption(option('--max-response <size>', 'about the largest answer of one next; past it, fewer jobs', 'RELAY_MAX_RESPONSE', bytes, defaults.maxResponse, formatBytes(defaults.maxResponse)))
    .addOption(option('--max-connections <n>', 'concurrent HTTP connections; requests over it answer 429', 'RELAY_MAX_CONNECTIONS', integer(1, 1_000_000), defaults.maxHttpConnections))
    .addOption(option('--max-waiting-polls <n>', 'long polls waiting at once; one more answers 429', 'RELAY_MAX_WAITING_POLLS', integer(1, 1_000_000), defaults.maxWaitingPolls))
    .addOption(option('--keep-alive-timeout <ms>', 'how long an idle connection stays open, milliseconds', 'RELAY_KEEP_ALIVE_TIMEOUT', integer(1, 3_600_000), defaults.keepAliveTimeoutMs))
    .addOption(
      option(
        '--allowed-hosts <hosts>',
        'Host names answered besides loopback ones, comma-separated (relay.example.com, relay.internal:8080, *.example.com, or * for any); none: a loopback --host answers loopback names only, any other --host every name',
        'RELAY_ALLOWED_HOSTS',
        list(parseHostPattern),
        defaults.allowedHosts,
        'none',
      ),
    )
    .addOption(
      option(
        '--allowed-origins <origins>',
        'browser origins allowed to call the API besides its own, comma-separated (https://app.example.com, or * for any); only they get CORS headers',
        'RELAY_ALLOWED_ORIGINS',
        list(parseOriginPattern),
        defaults.allowedOrigins,
        'none',
      ),
    )
    .addOption(option('--poll-recheck-interval <ms>', 'how often waiting long polls re-check their queue without a notification, milliseconds', 'RELAY_POLL_RECHECK_INTERVAL', integer(10, 600_000), defaults.pollRecheckMs))
    .addOption(option('--idempotency-window <seconds>', 'how long an Idempotency-Key is remembered, seconds; 0 ignores the header', 'RELAY_IDEMPOTENCY_WINDOW', integer(0, 365 * 86_400), defaults.idempotencyWindowSeconds))
    .addOption(option('--failed-retention <duration>', 'failed jobs older than this are purged (e.g. 14d, 12h, 3600); 0 keeps them forever', 'RELAY_FAILED_RETENTION', duration, defaults.failedRetentionSeconds, formatDuration(defaults.failedRetentionSeconds)))
    // Read as given: a parser's error would echo the value, and with it the tokens.
    .addOption(new Option('--auth-tokens <list>', 'tokens with their roles, comma-separated role:token (roles producer, worker, reader, admin); unset: no tokens, every route open').env('RELAY_AUTH_TOKENS'))
    .addOption(new Option('--auth-tokens-file <path>', 'a file of role:token lines (# comments and blank lines ignored), besides --auth-tokens; unset: none').env('RELAY_AUTH_TOKENS_FILE'))
    // Switches, read from the environment by dashboardFlags(): commander would take any value
    // of a switch's variable, RELAY_UI_READ_ONLY=false included, as the switch given.
    .addOption(new Option('--no-ui', 'do not serve the dashboard at /ui (env: RELAY_UI=off)'))
    .addOption(new Option('--ui-read-only', 'the dashboard shows no actions, whatever the token (env: RELAY_UI_READ_ONLY=true)'))
    .addOption(new Option('--no-metrics', 'do not serve GET /metrics nor count for it (env: RELAY_METRICS=off)'))
    .addOption(option('--metrics-port <port>', 'also serve /metrics alone on this port of --host (0 picks a free one); unset: only on --port', 'RELAY_METRICS_PORT', integer(0, 65535)))
    .addOption(option('--metrics-refresh-interval <seconds>', 'seconds between reads of the queue gauges from the database; fractions allowed', 'RELAY_METRICS_REFRESH_INTERVAL', seconds, defaults.metricsRefreshSeconds))
    .addOption(option('--metrics-max-queues <n>', 'distinct queue labels in /metrics; later queues are counted as queue="_other"', 'RELAY_METRICS_MAX_QUEUES', integer(1, 1_000_000), defaults.metricsMaxQueues))
    .addOption(option('--processes <n>', 'server processes sharing the port, each with its own pool (auto: one per core); more than 1 needs --database-url', 'RELAY_PROCESSES', processes, defaults.processes))
    .addOption(option('--throughput-flush-interval <seconds>', 'seconds between additions of this server\'s throughput counts (GET /v1/throughput) to the database; a crash loses at most one interval of counts', 'RELAY_THROUGHPUT_FLUSH_INTERVAL', flushSeconds, defaults.throughputFlushSeconds))
    .addOption(option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'LOG_LEVEL', logLevel, defaults.logLevel))
    .helpOption('-h, --help', 'show this help')
    .showHelpAfterError(false)
    .allowExcessArguments(false);
}

/**
 * Reads flags first, then the environment, then the defaults. Throws ConfigError with one
 * clear line on a value that cannot be used. `help` is set when --help was asked for.
 */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): { config: Config } | { help: string } {
  const cmd = program();
  let helpText: string | undefined;
  cmd.exitOverride().configureOutput({ writeOut: (s) => (helpText = s), writeErr: () => undefined });
  const saved = process.env;
  // commander reads .env() values from process.env; point it at the environment we were given.
  process.env = env;
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (helpText !== undefined) return { help: helpText };
    const message = err instanceof Error ? err.message.replace(/^error: /, '') : String(err);
    throw new ConfigError(message);
  } finally {
    process.env = saved;
  }
  const o = cmd.opts();
  if (o.processes > 1 && !o.databaseUrl) {
    throw new ConfigError('--processes: more than one process needs --database-url (DATABASE_URL): the embedded database belongs to one process');
  }
  return {
    config: {
      ...settings(o),
      processes: o.processes,
      authTokens: authTokens(o.authTokens, o.authTokensFile),
      ...dashboardFlags(cmd, env),
      metrics: o.metrics !== false && metricsSwitch(env.RELAY_METRICS),
      metricsPort: o.metricsPort,
      metricsRefreshSeconds: o.metricsRefreshInterval,
      metricsMaxQueues: o.metricsMaxQueues,
      disabled: disabledOptimisations(env.RELAY_BENCH_DISABLE),
    },
  };
}

/** A switch's environment variable: on/off, true/false, 1/0, yes/no; unset: the default. */
function envSwitch(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const value = env[name]?.trim().toLowerCase();
  if (value === undefined || value === '') return fallback;
  if (['on', 'true', '1', 'yes'].includes(value)) return true;
  if (['off', 'false', '0', 'no'].includes(value)) return false;
  throw new ConfigError(`${name}: must be on or off (true/false, 1/0, yes/no), got ${JSON.stringify(value.slice(0, 40))}`);
}

/** --no-ui and --ui-read-only, over RELAY_UI and RELAY_UI_READ_ONLY. */
function dashboardFlags(cmd: Command, env: NodeJS.ProcessEnv): Pick<Config, 'ui' | 'uiReadOnly'> {
  const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
  const o = cmd.opts();
  return {
    ui: given('ui') ? o.ui === true : envSwitch(env, 'RELAY_UI', defaults.ui),
    uiReadOnly: given('uiReadOnly') ? o.uiReadOnly === true : envSwitch(env, 'RELAY_UI_READ_ONLY', defaults.uiReadOnly),
  };
}

/** The tokens of --auth-tokens and --auth-tokens-file; a list or file given but holding none is an error, not auth off. */
function authTokens(list: string | undefined, file: string | undefined): AuthToken[] {
  try {
    const tokens: AuthToken[] = [];
    if (list !== undefined && list !== '') {
      const parsed = parseTokens(list, 'list', '--auth-tokens');
      if (parsed.length === 0) throw new Error('--auth-tokens: no role:token entry');
      tokens.push(...parsed);
    }
    if (file !== undefined && file !== '') {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(`--auth-tokens-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const parsed = parseTokens(text, 'lines', `--auth-tokens-file ${file}`);
      if (parsed.length === 0) throw new Error(`--auth-tokens-file ${file}: no role:token line`);
      tokens.push(...parsed);
    }
    checkDistinct(tokens);
    return tokens;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

function settings(o: OptionValues): Config {
  return {
    ...defaults,
    port: o.port,
    host: o.host,
    reapInterval: o.reapInterval,
    databaseUrl: o.databaseUrl || undefined,
    maxConnections: o.databaseMaxConnections,
    dataDir: o.dataDir,
    maxBody: o.maxBody,
    statementTimeoutMs: o.statementTimeout,
    connectionTimeoutMs: o.connectionTimeout,
    logLevel: o.logLevel,
    maxNumJobs: o.maxNumJobs,
    maxJsonDepth: o.maxJsonDepth,
    maxResponse: o.maxResponse,
    maxHttpConnections: o.maxConnections,
    maxWaitingPolls: o.maxWaitingPolls,
    keepAliveTimeoutMs: o.keepAliveTimeout,
    pollRecheckMs: o.pollRecheckInterval,
    idempotencyWindowSeconds: o.idempotencyWindow,
    failedRetentionSeconds: o.failedRetention,
    throughputFlushSeconds: o.throughputFlushInterval,
    maxBatchSize: o.maxBatchSize,
    maxKeyBytes: o.maxKeyLength,
    maxPageSize: o.maxPageSize,
    allowedHosts: o.allowedHosts,
    allowedOrigins: o.allowedOrigins,
  };
}
