import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCK_FILE } from '../../server/src/db/data-dir-lock.js';
import { ConfigError, defaults } from '../../server/src/index.js';
import {
  BIN,
  embeddedDataDir,
  killAll,
  RelayExitedError,
  relayEnv,
  removeDir,
  runRelay,
  spawnRelay,
  type Finished,
  type RelayProcess,
} from '../helpers/process.js';
import { call, eventually, sleep, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * The relay-server binary as a process: flags, bad settings, start-up log, signals. On the
 * embedded database (a temporary RELAY_DATA_DIR, DATABASE_URL unset) so it runs in both passes.
 */

/** The option blocks of --help, each joined to one line: "-p, --port <port> port to ... (default: 8080, env: PORT)". */
function helpOptions(help: string): string[] {
  const lines = help.split('\n');
  const start = lines.findIndex((l) => /^Options:/.test(l));
  const blocks: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^\s{2}-/.test(line)) blocks.push(line.trim());
    else if (/^\s{3,}\S/.test(line) && blocks.length) blocks[blocks.length - 1] += ` ${line.trim()}`;
    else if (line.trim() && !/^\s/.test(line)) break;
  }
  return blocks.map((b) => b.replace(/\s+/g, ' '));
}

/** The flags an option block starts with: "-p, --port <port> ..." -> ['-p', '--port']. */
function flagsOf(option: string): string[] {
  return (/^((?:-[\w-]+,? )+)/.exec(`${option} `)?.[1] ?? '').split(/[, ]+/).filter(Boolean);
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Each setting of SEMANTICS.md "Running" and the README: its flag, variable and default (shown: as --help writes it, when not as JSON). */
const SETTINGS: Array<{ flag: string; env: string; fallback: unknown; shown?: string }> = [
  { flag: '--port', env: 'PORT', fallback: defaults.port },
  { flag: '--host', env: 'HOST', fallback: defaults.host },
  { flag: '--reap-interval', env: 'REAP_INTERVAL', fallback: defaults.reapInterval },
  { flag: '--database-url', env: 'DATABASE_URL', fallback: undefined },
  { flag: '--database-max-connections', env: 'DATABASE_MAX_CONNECTIONS', fallback: defaults.maxConnections },
  { flag: '--data-dir', env: 'RELAY_DATA_DIR', fallback: defaults.dataDir },
  { flag: '--max-body', env: 'RELAY_MAX_BODY', fallback: defaults.maxBody, shown: '16mb' },
  { flag: '--allowed-hosts', env: 'RELAY_ALLOWED_HOSTS', fallback: defaults.allowedHosts, shown: 'none' },
  { flag: '--allowed-origins', env: 'RELAY_ALLOWED_ORIGINS', fallback: defaults.allowedOrigins, shown: 'none' },
  { flag: '--max-num-jobs', env: 'RELAY_MAX_NUM_JOBS', fallback: defaults.maxNumJobs },
  { flag: '--max-json-depth', env: 'RELAY_MAX_JSON_DEPTH', fallback: defaults.maxJsonDepth },
  { flag: '--max-batch-size', env: 'RELAY_MAX_BATCH_SIZE', fallback: defaults.maxBatchSize },
  { flag: '--max-key-length', env: 'RELAY_MAX_KEY_LENGTH', fallback: defaults.maxKeyBytes },
  { flag: '--max-page-size', env: 'RELAY_MAX_PAGE_SIZE', fallback: defaults.maxPageSize },
  { flag: '--auth-tokens', env: 'RELAY_AUTH_TOKENS', fallback: undefined },
  { flag: '--auth-tokens-file', env: 'RELAY_AUTH_TOKENS_FILE', fallback: undefined },
  { flag: '--max-response', env: 'RELAY_MAX_RESPONSE', fallback: defaults.maxResponse, shown: '16mb' },
  { flag: '--max-connections', env: 'RELAY_MAX_CONNECTIONS', fallback: defaults.maxHttpConnections },
  { flag: '--max-waiting-polls', env: 'RELAY_MAX_WAITING_POLLS', fallback: defaults.maxWaitingPolls },
  { flag: '--keep-alive-timeout', env: 'RELAY_KEEP_ALIVE_TIMEOUT', fallback: defaults.keepAliveTimeoutMs },
  { flag: '--poll-recheck-interval', env: 'RELAY_POLL_RECHECK_INTERVAL', fallback: defaults.pollRecheckMs },
  { flag: '--idempotency-window', env: 'RELAY_IDEMPOTENCY_WINDOW', fallback: defaults.idempotencyWindowSeconds },
  { flag: '--throughput-flush-interval', env: 'RELAY_THROUGHPUT_FLUSH_INTERVAL', fallback: defaults.throughputFlushSeconds },
  { flag: '--log-level', env: 'LOG_LEVEL', fallback: defaults.logLevel },
];

/** The README's configuration table: flag -> its default column, without backticks. */
function readmeDefaults(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim().replace(/`/g, ''));
    if (cells.length > 4 && /^--[\w-]+$/.test(cells[1]!)) rows.set(cells[1]!, cells[3]!);
  }
  return rows;
}

/** The server package's bin, as npm links it: the file's path from the repository root. */
function linkedBin(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'server/package.json'), 'utf8')) as { bin: Record<string, string> };
  return join('server', pkg.bin['relay-server']!);
}

describe('relay-server binary', function () {
  this.timeout(30_000);
  after(killAll);

  describe('--help', () => {
    let long: Finished;
    let short: Finished;
    before(async () => {
      [long, short] = await Promise.all([runRelay(['--help']), runRelay(['-h'])]);
    });

    it('lists every option with its variable and default, on stdout, and exits 0', () => {
      const { code, stdout, stderr } = long;
      expect(code).to.equal(0);
      expect(stderr).to.equal('');
      const options = helpOptions(stdout);
      for (const { flag, env, fallback, shown } of SETTINGS) {
        const option = options.find((o) => flagsOf(o).includes(flag));
        expect(option, `${flag} in --help:\n${stdout}`).to.be.a('string');
        expect(option).to.include(`env: ${env}`);
        if (fallback === undefined) expect(option).to.match(/unset/i);
        else expect(option).to.include(`default: ${shown ?? JSON.stringify(fallback)}`);
      }
      // And nothing it lists lacks a description.
      for (const option of options) expect(option.replace(/^(-\S+,? )+(<[^>]+> )?/, ''), option).to.have.length.greaterThan(3);
    });

    it('writes each default in the form the README shows it (16mb, not 16777216)', () => {
      const readme = readmeDefaults();
      expect(readme.get('--max-body'), 'the README lists --max-body').to.be.a('string');
      for (const option of helpOptions(long.stdout)) {
        const shown = /\(default: (.*?), env: /.exec(option)?.[1];
        const documented = readme.get(flagsOf(option).find((f) => f.startsWith('--'))!);
        if (shown === undefined || documented === undefined) continue;
        expect(shown.replace(/^"(.*)"$/, '$1'), option).to.equal(documented);
      }
    });

    it('accepts -h too', () => {
      expect(short.code).to.equal(0);
      expect(short.stdout).to.equal(long.stdout);
    });

    it('runs through the first line (`#!/usr/bin/env -S node <flags>`) of the file npm links, whose node flags npm start passes too', async () => {
      const bin = join(ROOT, linkedBin());
      const first = readFileSync(bin, 'utf8').split('\n', 1)[0]!;
      const shebang = /^#!\/usr\/bin\/env (-S node( --[\w-]+=\S+)+)$/.exec(first);
      expect(shebang, first).to.not.equal(null);
      // The built binary (`node server/dist/bin.js`) starts the same way.
      expect(readFileSync(BIN, 'utf8').split('\n', 1)[0]).to.equal(first);
      // As the kernel runs it: the rest of the line is one argument of env.
      const child = spawn('/usr/bin/env', [shebang![1]!, bin, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      expect(code).to.equal(0);
      expect(out).to.equal(long.stdout);
      const start = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }).scripts.start;
      expect(start).to.equal(`node${shebang![1]!.slice('-S node'.length)} server/dist/bin.js`);
    });

    it("runs as the README says, `npx relay-server --help` at the root of a clone", async function () {
      this.timeout(60_000);
      // npm links a workspace's bin while it installs, before the build, and skips a file
      // that does not exist yet: the file must be committed, not built.
      const tracked = spawnSync('git', ['ls-files', '--error-unmatch', linkedBin()], { cwd: ROOT, encoding: 'utf8' });
      expect(tracked.status, `${linkedBin()} is not committed: ${tracked.stderr}`).to.equal(0);
      // Never fetch a package of that name from the registry instead.
      const child = spawn('npx', ['relay-server', '--help'], { cwd: ROOT, env: relayEnv({ npm_config_yes: 'false' }), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      const [code] = (await once(child, 'close')) as [number];
      expect(code, err).to.equal(0);
      expect(out).to.equal(long.stdout);
    });
  });

  describe('an invalid setting', () => {
    const cases: Array<{ name: string; args?: string[]; env?: Record<string, string>; mentions: RegExp }> = [
      { name: 'PORT=abc', env: { PORT: 'abc' }, mentions: /PORT|port/ },
      { name: 'PORT=70000', env: { PORT: '70000' }, mentions: /PORT|port/ },
      { name: 'REAP_INTERVAL=0', env: { REAP_INTERVAL: '0' }, mentions: /REAP_INTERVAL|reap-interval/ },
      { name: 'REAP_INTERVAL=-1', env: { REAP_INTERVAL: '-1' }, mentions: /REAP_INTERVAL|reap-interval/ },
      { name: 'DATABASE_URL=not-a-url', env: { DATABASE_URL: 'not-a-url' }, mentions: /DATABASE_URL|database-url/ },
      { name: 'DATABASE_URL=mysql://x', env: { DATABASE_URL: 'mysql://x' }, mentions: /DATABASE_URL|database-url/ },
      { name: 'DATABASE_MAX_CONNECTIONS=0', env: { DATABASE_MAX_CONNECTIONS: '0' }, mentions: /DATABASE_MAX_CONNECTIONS|max-connections/ },
      { name: '--port abc', args: ['--port', 'abc'], mentions: /port/ },
      { name: 'an unknown flag', args: ['--no-such-flag'], mentions: /no-such-flag/ },
      { name: 'RELAY_ALLOWED_HOSTS=evil@127.0.0.1', env: { RELAY_ALLOWED_HOSTS: 'relay.example.com,evil@127.0.0.1' }, mentions: /RELAY_ALLOWED_HOSTS|allowed-hosts/ },
      { name: 'RELAY_ALLOWED_ORIGINS without a scheme', env: { RELAY_ALLOWED_ORIGINS: 'app.example.com' }, mentions: /RELAY_ALLOWED_ORIGINS|allowed-origins/ },
      { name: '--allowed-origins with a path', args: ['--allowed-origins', 'https://app.example.com/ui'], mentions: /allowed-origins/ },
      { name: 'RELAY_MAX_BATCH_SIZE over the contract', env: { RELAY_MAX_BATCH_SIZE: '10001' }, mentions: /RELAY_MAX_BATCH_SIZE|max-batch-size/ },
      { name: 'RELAY_MAX_KEY_LENGTH over the absolute limit', env: { RELAY_MAX_KEY_LENGTH: '2601' }, mentions: /RELAY_MAX_KEY_LENGTH|max-key-length/ },
      { name: 'RELAY_MAX_PAGE_SIZE=0', env: { RELAY_MAX_PAGE_SIZE: '0' }, mentions: /RELAY_MAX_PAGE_SIZE|max-page-size/ },
      { name: '--processes 2 on the embedded database', args: ['--processes', '2'], mentions: /--processes: more than one process needs --database-url/ },
      { name: 'RELAY_PROCESSES=0', env: { RELAY_PROCESSES: '0' }, mentions: /RELAY_PROCESSES|processes.*from 1 to 1024, or auto/ },
      // The token-ish values below must never be echoed: the check is in the test itself.
      { name: 'RELAY_AUTH_TOKENS with an unknown role', env: { RELAY_AUTH_TOKENS: 'worker:s3cret-a,boss:s3cret-b' }, mentions: /auth-tokens: entry 2 has an unknown role "boss"/ },
      { name: 'RELAY_AUTH_TOKENS with an empty token', env: { RELAY_AUTH_TOKENS: 'worker:s3cret-a,reader:' }, mentions: /auth-tokens: entry 2 has an empty token/ },
      { name: 'RELAY_AUTH_TOKENS without a role', env: { RELAY_AUTH_TOKENS: 's3cret-a' }, mentions: /auth-tokens: entry 1 is not role:token/ },
      { name: 'RELAY_AUTH_TOKENS with a token twice', env: { RELAY_AUTH_TOKENS: 'worker:s3cret-a,reader:s3cret-a' }, mentions: /token 2 repeats an earlier one/ },
      { name: 'RELAY_AUTH_TOKENS with a space in a token', env: { RELAY_AUTH_TOKENS: 'worker:s3cret a' }, mentions: /auth-tokens: entry 1 has a token with characters/ },
      { name: 'RELAY_AUTH_TOKENS of commas only', env: { RELAY_AUTH_TOKENS: ',,' }, mentions: /auth-tokens: no role:token entry/ },
      { name: 'RELAY_AUTH_TOKENS_FILE that does not exist', env: { RELAY_AUTH_TOKENS_FILE: '/nonexistent/relay-tokens' }, mentions: /auth-tokens-file: cannot read \/nonexistent\/relay-tokens: ENOENT/ },
    ];
    // Each is a process start: a few side by side. All at once, two dozen processes loading the
    // server on two cores would each outlast runRelay's time limit before reaching the check.
    const results = new Map<string, Finished>();
    before(async function () {
      this.timeout(120_000);
      const queue = [...cases];
      const runOne = async (): Promise<void> => {
        for (let c = queue.shift(); c; c = queue.shift()) results.set(c.name, await runRelay(c.args ?? [], c.env ?? {}));
      };
      await Promise.all(Array.from({ length: 4 }, runOne));
    });

    for (const c of cases) {
      it(`${c.name}: exits 2 with one clear line on stderr`, () => {
        const { code, signal, stdout, stderr } = results.get(c.name)!;
        expect({ code, signal }).to.deep.equal({ code: 2, signal: null });
        expect(stdout).to.equal('');
        expect(stderr.endsWith('\n'), JSON.stringify(stderr)).to.equal(true);
        const lines = stderr.trimEnd().split('\n');
        expect(lines, stderr).to.have.length(1);
        expect(lines[0]).to.match(c.mentions);
        expect(lines[0]).not.to.match(/\bat .+:\d+:\d+/); // no stack trace
        expect(stderr, 'no token is echoed').not.to.match(/s3cret/);
      });
    }
  });

  describe('running', () => {
    let dataDir: string;
    before(async function () {
      this.timeout(60_000);
      dataDir = await embeddedDataDir();
    });
    after(() => removeDir(dataDir));

    it('listens where PORT and HOST say, logs one JSON line (address, database kind, reap interval); SIGTERM drops idle keep-alive connections and exits 0', async () => {
      const port = await freePort();
      const relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', REAP_INTERVAL: '0.25' } });
      const agent = new http.Agent({ keepAlive: true });
      try {
        const { started } = relay;
        expect(started.url).to.equal(`http://127.0.0.1:${port}`);
        expect(started).to.include({ database: 'pglite', reapInterval: 0.25 });
        expect(started.msg).to.include(started.url as string).and.include('pglite').and.include('0.25');
        // A client keeps its connection open after a request...
        const { status, socket } = await get(`${relay.url}/health`, agent);
        expect(status).to.equal(200);
        // The start-up line, and the request's line (README: Monitoring, request logs).
        await eventually(async () => relay.logs.length >= 2);
        expect(relay.logs.filter((l) => l.msg !== 'request'), relay.stdout()).to.have.length(1);
        // (spawnRelay's own readiness probes are requests to /health too.)
        const requests = relay.logs.filter((l) => l.msg === 'request').map((l) => [l.method, l.route, l.status]);
        expect(requests).to.have.length.at.least(1);
        for (const request of requests) expect(request).to.deep.equal(['GET', '/health', 200]);
        expect(relay.stderr()).to.equal('');
        // ...which must not hold the shutdown for the keep-alive timeout: it is closed at once.
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        relay.child.kill('SIGTERM');
        await Promise.race([closed, sleep(3000).then(() => Promise.reject(new Error('the idle connection is still open')))]);
        expect(await relay.exitWithin(10_000)).to.deep.equal({ code: 0, signal: null });
      } finally {
        agent.destroy();
        await relay.stop('SIGKILL');
      }
    });

    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`${signal}: stops accepting, finishes the request in flight (a large batch), exits 0`, async () => {
        const queue = uniqueQueue(signal.toLowerCase());
        const jobs = Array.from({ length: 1000 }, (_, i) => ({ id: `j${i}`, queue, timeout: 30, payload: { i, pad: 'x'.repeat(100) } }));
        const body = Buffer.from(JSON.stringify(jobs));

        const relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
        // The request is in flight once the server has read its headers: it answers
        // `Expect: 100-continue` only then. Its body is sent only after the signal.
        const { request, continued, response } = startRequest(relay.url, '/enqueue/batch', body.length);
        await continued;
        relay.child.kill(signal);
        await relay.waitForLog((l) => l.signal === signal);
        // No new connection is accepted any more (the log line comes just before the
        // listener closes)...
        await eventually(async () => !(await connects(relay.url)), 2000, 20);
        // ...but the request in flight is finished.
        request.end(body);
        const res = await response;
        expect(res.status, res.text).to.equal(202);
        expect(await relay.exitWithin(10_000)).to.deep.equal({ code: 0, signal: null });
        expect(relay.stderr()).to.equal('');

        if (signal === 'SIGINT') return;
        // The batch was stored: a new server on the same data directory hands it all out.
        const again = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
        try {
          const delivered: string[] = [];
          for (let batch = await drain2(again.url, queue); batch.length; batch = await drain2(again.url, queue)) {
            delivered.push(...batch);
          }
          expect(delivered).to.deep.equal(jobs.map((j) => j.id));
        } finally {
          expect(await again.stop()).to.deep.equal({ code: 0, signal: null });
        }
      });
    }

    it('SIGTERM during start-up (the database opening) still ends in a clean exit 0', async () => {
      // A supervisor may stop the server while it starts (PGlite takes seconds to open, a
      // migration longer). The signal must not kill it mid-write: the handlers have to be in
      // place before the database is touched, not only after the start-up line (a signal in
      // between also kills it outright). The first file the embedded database touches in its
      // directory shows that start-up has reached the database.
      const touched = new Promise<void>((resolve) => {
        const watcher = watch(dataDir, { recursive: true }, (_event, name) => {
          // The lock on the directory is taken before the database opens.
          if (String(name).startsWith(LOCK_FILE)) return;
          watcher.close();
          resolve();
        });
      });
      const child = spawn(process.execPath, [BIN], {
        env: relayEnv({ RELAY_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'info' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      let exit;
      try {
        await touched;
        child.kill('SIGTERM');
        exit = await exited;
      } finally {
        clearTimeout(timer);
        child.kill('SIGKILL');
      }
      expect(exit, output).to.deep.equal({ code: 0, signal: null });
      // And the data directory is fine for the next start.
      const again = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
      expect(await again.stop()).to.deep.equal({ code: 0, signal: null });
    });
  });

  describe('one data directory, one process', () => {
    let dataDir: string;
    beforeEach(async function () {
      this.timeout(60_000);
      dataDir = await embeddedDataDir();
    });
    afterEach(async () => {
      await killAll();
      await removeDir(dataDir);
    });

    /** The second server's refusal: status 2, nothing on stdout, one line on stderr naming the directory and the holder. */
    function expectRefused(finished: { code: number | null; signal: string | null; stdout: string; stderr: string }, holder: number) {
      expect({ code: finished.code, signal: finished.signal }, finished.stderr).to.deep.equal({ code: 2, signal: null });
      expect(finished.stdout).to.equal('');
      const lines = finished.stderr.trimEnd().split('\n');
      expect(lines, finished.stderr).to.have.length(1);
      expect(lines[0]).to.match(/^relay-server: /).and.include(dataDir).and.include(`pid ${holder}`);
      expect(lines[0]).not.to.match(/\bat .+:\d+:\d+/);
    }

    it('a second server on the directory exits 2 with one line; the first keeps serving and hands each job out once', async () => {
      const queue = uniqueQueue('one-dir');
      const first = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
      const res = await call('POST', '/enqueue', { baseUrl: first.url, json: { id: 'j', queue, timeout: 30 } });
      expect(res.status, res.text).to.equal(202);

      const second = await runRelay([], { RELAY_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
      expectRefused(second, first.child.pid!);

      expect(await drain2(first.url, queue)).to.deep.equal(['j']);
      expect(await drain2(first.url, queue)).to.deep.equal([]);
      expect(await first.stop()).to.deep.equal({ code: 0, signal: null });
      // Released at close: the next server starts.
      const third = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
      expect(await third.stop()).to.deep.equal({ code: 0, signal: null });
    });

    it('of two servers started at the same moment, one serves and the other exits 2', async () => {
      const started = await Promise.all(
        [0, 1].map(() => spawnRelay({ env: { RELAY_DATA_DIR: dataDir } }).catch((err: unknown) => err)),
      );
      const serving = started.filter((s): s is RelayProcess => !(s instanceof Error));
      const refused = started.filter((s): s is RelayExitedError => s instanceof RelayExitedError);
      expect(serving, String(started.find((s) => s instanceof Error && !(s instanceof RelayExitedError)))).to.have.length(1);
      expect(refused).to.have.length(1);
      expectRefused({ ...refused[0]!.exit, stdout: refused[0]!.stdout, stderr: refused[0]!.stderr }, serving[0]!.child.pid!);
      const health = await call('GET', '/health', { baseUrl: serving[0]!.url });
      expect(health.status).to.equal(200);
    });

    it('SIGKILLed mid-write, its lock is left behind and taken over by the next server, which has every job that got a 202', async () => {
      const queue = uniqueQueue('killed');
      const relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
      const acknowledged: string[] = [];
      let killed = false;
      // Single enqueues and batches in flight together when the process dies.
      const producers = Array.from({ length: 6 }, async (_, p) => {
        for (let i = 0; ; i++) {
          const ids = p % 2 ? Array.from({ length: 20 }, (_, k) => `p${p}-${i}-${k}`) : [`p${p}-${i}`];
          const [path, json] = ids.length > 1 ? ['/enqueue/batch', ids.map((id) => ({ id, queue, timeout: 30 }))] : ['/enqueue', { id: ids[0], queue, timeout: 30 }];
          try {
            const res = await call('POST', path as string, { baseUrl: relay.url, json });
            if (res.status !== 202) throw new Error(`enqueue answered ${res.status}: ${res.text}`);
            acknowledged.push(...ids);
          } catch (err) {
            if (!killed) throw err;
            return;
          }
        }
      });
      await eventually(async () => acknowledged.length >= 200, 20_000, 10);
      killed = true;
      relay.child.kill('SIGKILL');
      await Promise.all(producers);
      expect((await relay.exited).signal).to.equal('SIGKILL');
      const left = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')) as { pid: number };
      expect(left.pid, 'the lock names the killed server').to.equal(relay.child.pid);

      const again = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
      const stored = new Set<string>();
      for (let batch = await drain2(again.url, queue); batch.length; batch = await drain2(again.url, queue)) batch.forEach((id) => stored.add(id));
      const lost = acknowledged.filter((id) => !stored.has(id));
      expect(lost, `${lost.length} of ${acknowledged.length} acknowledged jobs lost`).to.deep.equal([]);
      expect(await again.stop()).to.deep.equal({ code: 0, signal: null });
      expect(existsSync(join(dataDir, LOCK_FILE)), 'the lock is released at a clean stop').to.equal(false);
    });

    it('a lock left under a pid that is now another process (a container: pid 1 at every start) does not keep a server out', async () => {
      // The pid is this test process's own: a server in this process finds its pid in the
      // lock without having taken it.
      writeFileSync(join(dataDir, LOCK_FILE), `${JSON.stringify({ pid: process.pid })}\n`);
      const server = await startRelay({ databaseUrl: undefined, dataDir });
      try {
        // A second server in the same process is refused all the same.
        const error = await startRelay({ databaseUrl: undefined, dataDir }).then(
          (s) => s.close().then(() => undefined),
          (err: unknown) => err,
        );
        expect(error).to.be.instanceOf(ConfigError);
        expect((error as Error).message).to.include(`pid ${process.pid}`);
      } finally {
        await server.close();
      }
      if (process.platform !== 'linux') return;
      // On Linux a live process under the recorded pid but started later is not the holder
      // either (a pid reused after a crash): the lock records when its holder started.
      writeFileSync(join(dataDir, LOCK_FILE), `${JSON.stringify({ pid: process.pid, start: 'another-boot/1' })}\n`);
      const relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
      expect(await relay.stop()).to.deep.equal({ code: 0, signal: null });
    });
  });
});

/** Leases up to 1000 jobs from url; their ids. */
async function drain2(url: string, queue: string): Promise<string[]> {
  const res = await call('GET', '/v1/next', { baseUrl: url, query: { queue, num_jobs: 1000 } });
  expect(res.status, res.text).to.be.oneOf([200, 204]);
  return res.status === 200 ? (res.body as Array<{ id: string }>).map((j) => j.id) : [];
}

/** A POST whose body is sent later; `continued` resolves when the server has read the headers. */
function startRequest(baseUrl: string, path: string, length: number) {
  const url = new URL(path, baseUrl);
  let continued!: Promise<void>;
  let response!: Promise<{ status: number; text: string }>;
  const request = http.request(url, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': String(length), expect: '100-continue' },
  });
  continued = new Promise((resolve, reject) => {
    request.once('continue', () => resolve());
    request.once('error', reject);
  });
  response = new Promise((resolve, reject) => {
    request.once('error', reject);
    request.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', reject);
    });
  });
  request.flushHeaders();
  return { request, continued, response };
}

/** Whether a new TCP connection to url is accepted. */
function connects(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function get(url: string, agent: http.Agent): Promise<{ status: number; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, socket: req.socket as net.Socket }));
    });
    req.on('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
