import { expect } from 'chai';
import http from 'node:http';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.js';
import { killAll, runRelay, spawnRelay, type LogLine, type RelayProcess } from '../helpers/process.js';
import { eventually, uniqueQueue } from '../helpers/relay.js';

/*
 * relay-server --processes N: N server processes on one port, sharing only PostgreSQL. Each
 * request here goes on a connection of its own (no keep-alive), which node:cluster hands to
 * the processes in turn: a long poll and the enqueue that should wake it land in different
 * processes, and only the database's notification can carry the wake-up, since the servers
 * re-check a waiting queue only once a minute.
 */

function request(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, url), { method, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** relay_long_polls_waiting of the process that answers this scrape. */
async function waitingPolls(url: string): Promise<number> {
  const { body } = await request(url, 'GET', '/metrics');
  const line = body.split('\n').find((l) => l.startsWith('relay_long_polls_waiting'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

const pidsOf = (lines: LogLine[], msg: string) => [...new Set(lines.filter((l) => l.msg === msg).map((l) => l.pid as number))];

describe('relay-server --processes', function () {
  this.timeout(60_000);
  let db: FreshDatabase;
  let relay: RelayProcess;

  before(async () => {
    db = await freshDatabase('relay_processes');
  });
  after(async () => {
    await killAll();
    await db.drop();
  });

  describe('running', () => {
    beforeEach(async () => {
      relay = await spawnRelay({ args: ['--processes', '2', '--poll-recheck-interval', '60000'], env: { DATABASE_URL: db.url } });
      await relay.waitForLog((l) => l.processes === 2);
    });
    afterEach(async () => {
      if (relay.child.exitCode === null) await relay.stop('SIGTERM');
    });

    it('runs two server processes on one port, and a long poll in one is woken by a job stored through the other', async () => {
      const started = await relay.waitForLog((l) => l.processes === 2);
      expect(started).to.include({ database: 'postgres', url: relay.url });
      const pids = await eventually(async () => {
        const found = pidsOf(relay.logs, 'server process listening');
        return found.length === 2 && found;
      });
      expect(pids).to.not.include(relay.child.pid);

      const queues = Array.from({ length: 6 }, () => uniqueQueue('cluster'));
      const polls = queues.map((queue) => request(relay.url, 'GET', `/v1/next?queue=${queue}&wait=30`));
      // Waiting in both processes: two scrapes on new connections reach one process each.
      await eventually(async () => (await waitingPolls(relay.url)) + (await waitingPolls(relay.url)) === queues.length, 15_000);
      // Enqueued in the reverse order of the polls, each on a new connection.
      const startedAt = Date.now();
      for (const queue of [...queues].reverse()) {
        expect((await request(relay.url, 'POST', '/enqueue', { id: 'j', queue, timeout: 30 })).status).to.equal(202);
      }
      const answers = await Promise.all(polls);
      const took = Date.now() - startedAt;
      answers.forEach((a, i) => {
        expect(a.status, a.body).to.equal(200);
        expect(JSON.parse(a.body)[0]).to.include({ id: 'j', queue: queues[i] });
      });
      expect(took, 'woken by the notification, not by the one-minute re-check').to.be.below(15_000);
      // Which process served what, from the request log lines: some jobs were stored by one
      // process for a poll waiting in the other.
      const servedBy = (route: string, queue: string) =>
        relay.waitForLog((l) => l.msg === 'request' && l.route === route && l.queue === queue).then((l) => l.pid as number);
      const pairs = await Promise.all(queues.map(async (q) => [await servedBy('/v1/next', q), await servedBy('/enqueue', q)]));
      expect(new Set(pairs.flat()), 'both processes served requests').to.deep.equal(new Set(pids));
      expect(pairs.filter(([poll, enqueue]) => poll !== enqueue), 'jobs stored by one process for a poll in the other').to.not.be.empty;
    });

    it('replaces a process that dies, and keeps answering', async () => {
      const pids = await eventually(async () => {
        const found = pidsOf(relay.logs, 'server process listening');
        return found.length === 2 && found;
      });
      process.kill(pids[0]!, 'SIGKILL');
      await relay.waitForLog((l) => l.msg?.startsWith('a server process died') === true, 10_000);
      const replacement = await eventually(async () => pidsOf(relay.logs, 'server process listening').find((pid) => !pids.includes(pid)), 15_000);
      expect(alive(replacement)).to.equal(true);
      const queue = uniqueQueue('replaced');
      for (let i = 0; i < 4; i++) expect((await request(relay.url, 'POST', '/enqueue', { id: String(i), queue, timeout: 30 })).status).to.equal(202);
      const got = await request(relay.url, 'GET', `/v1/next?queue=${queue}&num_jobs=10`);
      expect(JSON.parse(got.body).map((j: { id: string }) => j.id)).to.deep.equal(['0', '1', '2', '3']);
    });

    it('SIGTERM stops every process: a waiting long poll is answered, and the primary exits 0', async () => {
      const pids = await eventually(async () => {
        const found = pidsOf(relay.logs, 'server process listening');
        return found.length === 2 && found;
      });
      const poll = request(relay.url, 'GET', `/v1/next?queue=${uniqueQueue('stop')}&wait=30`);
      await eventually(async () => (await waitingPolls(relay.url)) + (await waitingPolls(relay.url)) === 1, 15_000);
      const exit = await relay.stop('SIGTERM', 20_000);
      expect(exit).to.deep.equal({ code: 0, signal: null });
      expect((await poll).status, 'the long poll ends with an answer, not a reset').to.equal(204);
      for (const pid of pids) expect(alive(pid), `process ${pid}`).to.equal(false);
    });

  });

  describe('that cannot start', () => {
    // Replacing processes that fail to start would only fail again: the primary stops.
    it('exits 1, saying why, when its processes cannot reach the database', async () => {
      const finished = await runRelay(['--processes', '2', '--port', '0'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }, 30_000);
      expect(finished.code).to.equal(1);
      expect(finished.stderr).to.match(/ECONNREFUSED/);
      expect(finished.stdout).to.match(/a server process failed to start/);
    });
  });
});
