import { expect } from 'chai';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { RelayServer } from '../../server/src/index.js';
import { backend, call, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * The dashboard (issue 14) end to end, in a real headless Chromium (Debian's `chromium`,
 * which .ci/run installs): a server with a scripted workload on it, every page loaded, every
 * action performed and its effect checked through the API, the reader role and read-only
 * mode without actions, the banner of an unreachable server. Screenshots go to
 * test-results/screenshots (ignored by git), so that a test run leaves the checkout clean;
 * `RELAY_SCREENSHOTS_DIR=docs/screenshots` refreshes the ones the README shows.
 *
 * scripts/test.sh runs this file in the embedded-database pass only: what it tests is the
 * page, and the API it calls is tested on both databases by the rest of the suite.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.RELAY_SCREENSHOTS_DIR ?? fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));
const READER = 'reader-dashboard-token-0123456789';
const ADMIN = 'admin-dashboard-token-0123456789';

/** A queue name: plain on a fresh embedded database (readable screenshots), unique on a shared PostgreSQL. */
const name = (label: string) => (backend === 'pglite' ? label : uniqueQueue(label));
type Queues = Record<'mail' | 'reports' | 'images' | 'video' | 'billing' | 'webhooks', string>;
const queueNames = (): Queues => ({
  mail: name('mail'), reports: name('reports'), images: name('images'), video: name('video'), billing: name('billing'), webhooks: name('webhooks'),
});
const QUEUES = queueNames();
const jobPath = (queue: string, id: string) => `/v1/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`;
const hashOf = (queue: string) => encodeURIComponent(queue);

async function api(server: RelayServer, method: string, path: string, options: Parameters<typeof call>[2] = {}) {
  return call(method, path, { ...options, baseUrl: server.url, headers: { authorization: `Bearer ${ADMIN}`, ...options.headers } });
}

async function enqueue(server: RelayServer, job: Record<string, unknown>): Promise<void> {
  const res = await api(server, 'POST', '/enqueue', { json: job });
  expect(res.status, res.text).to.equal(202);
}

/** Enqueued, leased and failed for good, with reason. */
async function failJob(server: RelayServer, queue: string, id: string, reason: string): Promise<void> {
  await enqueue(server, { id, queue, timeout: 30, payload: { id } });
  const leased = await api(server, 'GET', '/v1/next', { query: { queue, num_jobs: 1 } });
  const [job] = leased.body;
  expect(job.id).to.equal(id);
  const res = await api(server, 'POST', '/v1/fail', { query: { queue, job_id: id, run_id: job.run_id }, json: { error: reason } });
  expect(res.body).to.deep.equal({ outcome: 'failed' });
}

/**
 * Waiting, scheduled, in-flight and failed jobs on five queues, one of them paused; a sixth
 * whose jobs all completed. Its throughput flushed, so that the overview shows it at once.
 */
async function workload(server: RelayServer, queues: Queues): Promise<void> {
  const { mail, reports, images, video, billing, webhooks } = queues;
  const batch = Array.from({ length: 30 }, (_, i) => ({ id: `invoice-${String(i + 1).padStart(4, '0')}`, queue: mail, timeout: 30, max_retries: 3, payload: { to: `customer-${i + 1}@example.com`, template: 'invoice' } }));
  expect((await api(server, 'POST', '/enqueue/batch', { json: batch })).status).to.equal(202);
  await enqueue(server, { id: 'digest-weekly', queue: mail, timeout: 30, run_at: new Date(Date.now() + 3600_000).toISOString(), payload: { template: 'digest' } });
  await failJob(server, reports, 'report-7', 'timeout talking to the warehouse');
  await failJob(server, reports, 'report-7', 'PDF renderer crashed: out of memory');
  await failJob(server, reports, 'report-8', 'no such customer 4411');
  await failJob(server, reports, 'report-9', 'no such customer 5120');
  await failJob(server, images, 'thumb-0', 'unsupported format: image/heic');
  await enqueue(server, { id: 'thumb-1', queue: images, timeout: 30, payload: { file: 'a.png' } });
  await enqueue(server, { id: 'thumb-2', queue: images, timeout: 30, payload: { file: 'b.png' } });
  expect((await api(server, 'POST', `/v1/queues/${encodeURIComponent(images)}/pause`)).status).to.equal(200);
  for (const id of ['encode-1', 'encode-2']) await enqueue(server, { id, queue: video, timeout: 600, payload: { id, codec: 'av1' }, state: { frame: 0 } });
  expect((await api(server, 'GET', '/v1/next', { query: { queue: video, num_jobs: 2 } })).body).to.have.length(2);
  await failJob(server, billing, 'charge-1', 'card declined');
  await failJob(server, billing, 'charge-2', 'card declined');
  const hooks = Array.from({ length: 4 }, (_, i) => ({ id: `hook-${i + 1}`, queue: webhooks, timeout: 30 }));
  expect((await api(server, 'POST', '/enqueue/batch', { json: hooks })).status).to.equal(202);
  const leased = (await api(server, 'GET', '/v1/next', { query: { queue: webhooks, num_jobs: 4 } })).body;
  const done = await api(server, 'POST', '/v1/complete/batch', { json: leased.map((j: any) => ({ queue: webhooks, job_id: j.id, run_id: j.run_id })) });
  expect(done.body.completed).to.have.length(4);
  await server.flushThroughput();
}

describe('dashboard in Chromium', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: RelayServer;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    // No skip: CI installs chromium, and a dashboard untested is a failure to see.
    expect(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`).to.equal(true);
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    server = await startRelay({ authTokens: [], ui: true });
    await workload(server, QUEUES);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A fresh tab at a route of the dashboard; every error the page throws or logs fails the test. */
  async function open(at: RelayServer, hash: string, ready: string): Promise<Page> {
    const tab = await browser.newPage();
    await tab.setViewport({ width: 1280, height: 860 });
    tab.on('pageerror', (err) => pageErrors.push(String(err)));
    tab.on('console', (msg) => {
      // A failed request is logged by Chromium itself; the page reports those in its own way.
      if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) pageErrors.push(msg.text());
    });
    const res = await tab.goto(`${at.url}/ui${hash}`);
    expect(res?.status()).to.equal(200);
    await tab.waitForSelector(ready, { timeout: 10_000 });
    return tab;
  }

  async function shoot(tab: Page, file: string): Promise<void> {
    await tab.screenshot({ path: `${SCREENSHOTS}/${file}`, fullPage: true });
  }

  async function textOf(tab: Page, selector: string): Promise<string> {
    return tab.$eval(selector, (el) => el.textContent ?? '');
  }

  /** Waits until selector's text includes text (the page refreshes on its own). */
  async function waitForText(tab: Page, selector: string, text: string, timeout = 10_000): Promise<void> {
    await tab.waitForFunction(
      (sel, t) => [...document.querySelectorAll(sel)].some((el) => el.textContent?.includes(t)),
      { timeout },
      selector,
      text,
    );
  }

  /** Clicks the dialog's confirm button and waits for the outcome. */
  async function confirmAndExpect(tab: Page, outcome: string): Promise<void> {
    await tab.waitForSelector('[data-dialog=confirm]');
    await tab.click('[data-dialog-confirm]');
    await waitForText(tab, '[data-toast=ok]', outcome);
    expect(await tab.$('[data-dialog=confirm]')).to.equal(null);
  }

  afterEach(async function () {
    for (const tab of (await browser.pages()).slice(1)) await tab.close();
    expect(pageErrors.splice(0), 'errors in the page').to.deep.equal([]);
  });

  describe('pages', () => {
    it('queues: counts per status, oldest job age, paused state, problem queues first', async () => {
      page = await open(server, '#/queues', `[data-queue="${QUEUES.mail}"]`);
      const rows = await page.$$eval('tr[data-queue]', (trs) => trs.map((tr) => tr.getAttribute('data-queue')));
      const mine = rows.filter((q) => Object.values(QUEUES).includes(q!));
      expect(mine.indexOf(QUEUES.images), 'paused and failed first').to.equal(0);
      expect(mine.indexOf(QUEUES.mail)).to.be.greaterThan(mine.indexOf(QUEUES.billing));
      expect(mine.indexOf(QUEUES.mail)).to.be.greaterThan(mine.indexOf(QUEUES.reports));
      const count = (queue: string, status: string) => textOf(page, `tr[data-queue="${queue}"] [data-count=${status}]`);
      expect(await count(QUEUES.mail, 'waiting')).to.equal('30');
      expect(await count(QUEUES.mail, 'scheduled')).to.equal('1');
      expect(await count(QUEUES.video, 'in_flight')).to.equal('2');
      expect(await count(QUEUES.reports, 'failed')).to.equal('4');
      await waitForText(page, `tr[data-queue="${QUEUES.webhooks}"] [data-throughput=completed]`, '4');
      expect(await textOf(page, `tr[data-queue="${QUEUES.images}"] [data-state]`)).to.include('paused').and.include('failed jobs');
      await shoot(page, 'queues.png');
    });

    it('queues: the jobs completed and failed per minute over 15 minutes, as GET /v1/throughput counts them', async () => {
      page = await open(server, '#/queues', `[data-queue="${QUEUES.webhooks}"]`);
      const counted = new Map<string, any>((await api(server, 'GET', '/v1/throughput')).body.map((t: any) => [t.queue, t]));
      // A queue whose jobs all completed holds none, and is listed for its throughput.
      expect(counted.get(QUEUES.webhooks)).to.include({ enqueued: 4, completed: 4, failed: 0 });
      expect(counted.get(QUEUES.reports)).to.include({ failed: 4 });
      expect(await textOf(page, `tr[data-queue="${QUEUES.webhooks}"] [data-count=waiting]`)).to.equal('0');
      for (const queue of Object.values(QUEUES)) {
        const t = counted.get(queue) ?? { completed: 0, failed: 0 };
        for (const kind of ['completed', 'failed'] as const) {
          expect(await textOf(page, `tr[data-queue="${queue}"] [data-throughput=${kind}]`), `${queue} ${kind}`).to.equal(String(t[kind]));
          // The bars: one per minute, their values adding up to the total.
          const label = await page.$eval(`tr[data-queue="${queue}"] svg.spark-${kind}`, (svg) => svg.getAttribute('aria-label') ?? '');
          const values = label.replace(/^.*: /, '').split(', ').map(Number);
          expect(values, label).to.have.length(15);
          expect(values.reduce((a, b) => a + b, 0), label).to.equal(t[kind]);
          expect(await page.$$(`tr[data-queue="${queue}"] svg.spark-${kind} rect:not(.spark-base)`)).to.have.length(15);
        }
      }
      expect(await page.$eval('th[title]', (th) => th.getAttribute('title'))).to.include('every server of the database');
    });

    it('queues: refreshes on its own, without a reload', async () => {
      page = await open(server, '#/queues', `[data-queue="${QUEUES.mail}"]`);
      await page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));
      await enqueue(server, { id: 'late-arrival', queue: QUEUES.mail, timeout: 30 });
      await waitForText(page, `tr[data-queue="${QUEUES.mail}"] [data-count=waiting]`, '31');
      expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).to.equal(1);
      expect((await api(server, 'DELETE', jobPath(QUEUES.mail, 'late-arrival'))).status).to.equal(204);
    });

    it("a queue's jobs by status, in keyset pages, with search by id", async () => {
      page = await open(server, `#/queues/${hashOf(QUEUES.mail)}?status=waiting`, '[data-jobs=waiting]');
      const ids = () => page.$$eval('[data-jobs] tr[data-job]', (trs) => trs.map((tr) => tr.getAttribute('data-job')!));
      const first = await ids();
      expect(first).to.have.length(25);
      expect(first[0]).to.equal('invoice-0001');
      await shoot(page, 'queue.png');
      await page.click('[data-page-next]');
      await page.waitForFunction(() => document.querySelector('[data-jobs] tr[data-job]')?.getAttribute('data-job') === 'invoice-0026');
      const second = await ids();
      expect(second).to.deep.equal(['invoice-0026', 'invoice-0027', 'invoice-0028', 'invoice-0029', 'invoice-0030']);
      expect(await page.$eval('[data-page-next]', (b) => (b as HTMLButtonElement).disabled)).to.equal(true);
      await page.click('[data-page-prev]');
      await page.waitForFunction(() => document.querySelector('[data-jobs] tr[data-job]')?.getAttribute('data-job') === 'invoice-0001');

      await page.click('[data-tab=scheduled]');
      await page.waitForSelector('[data-jobs=scheduled] tr[data-job="digest-weekly"]');

      await page.type('[data-form=search] input', 'no-such-job');
      await page.click('[data-form=search] button');
      await waitForText(page, '[data-search-missing]', 'No job “no-such-job”');
      await page.$eval('[data-form=search] input', (input) => ((input as HTMLInputElement).value = ''));
      await page.type('[data-form=search] input', 'invoice-0017');
      await page.click('[data-form=search] button');
      await page.waitForSelector('[data-page=job]');
      expect(await page.evaluate(() => location.hash)).to.equal(`#/queues/${hashOf(QUEUES.mail)}/jobs/invoice-0017`);
    });

    it('a job: payload and state as JSON, attempts, lease end', async () => {
      page = await open(server, `#/queues/${hashOf(QUEUES.video)}/jobs/encode-1`, '[data-facts]');
      expect(await textOf(page, '[data-fact=status]')).to.equal('in flight');
      expect(await textOf(page, '[data-fact=attempts]')).to.match(/^1 /);
      expect(await textOf(page, '[data-fact=lease]')).to.match(/in \d+m/);
      expect(JSON.parse(await textOf(page, '[data-json=payload]'))).to.deep.equal({ id: 'encode-1', codec: 'av1' });
      expect(JSON.parse(await textOf(page, '[data-json=state]'))).to.deep.equal({ frame: 0 });
    });

    it('a failed job: its reason and the failures of its id that are kept', async () => {
      page = await open(server, `#/queues/${hashOf(QUEUES.reports)}/jobs/report-7`, '[data-history] [data-failure]');
      expect(await textOf(page, '[data-fact=reason]')).to.equal('PDF renderer crashed: out of memory');
      await waitForText(page, '[data-history]', 'timeout talking to the warehouse');
      expect(await page.$$('[data-history] [data-failure]')).to.have.length(2);
      await shoot(page, 'job.png');
    });

    it('failed jobs, queue by queue', async () => {
      page = await open(server, '#/failed', `[data-failed-queue="${QUEUES.reports}"]`);
      for (const queue of [QUEUES.reports, QUEUES.images, QUEUES.billing]) expect(await page.$(`[data-failed-queue="${queue}"]`), queue).to.not.equal(null);
      expect(await page.$$(`[data-failed-queue="${QUEUES.reports}"] tr[data-job]`)).to.have.length(4);
      await shoot(page, 'failed.png');
    });
  });

  describe('actions, each checked through the API', () => {
    const queueState = async (queue: string) => (await api(server, 'GET', `/v1/queues/${encodeURIComponent(queue)}`)).body;

    it('pause asks first (and cancelling the question does nothing), resume', async () => {
      page = await open(server, '#/queues', `[data-queue="${QUEUES.mail}"] [data-action=pause]`);
      await page.click(`[data-queue="${QUEUES.mail}"] [data-action=pause]`);
      await page.waitForSelector('[data-dialog=confirm]');
      await page.click('[data-dialog-cancel]');
      expect(await page.$('[data-dialog=confirm]')).to.equal(null);
      expect((await queueState(QUEUES.mail)).paused).to.equal(false);

      await page.click(`[data-queue="${QUEUES.mail}"] [data-action=pause]`);
      await confirmAndExpect(page, `Paused “${QUEUES.mail}”`);
      expect((await queueState(QUEUES.mail)).paused).to.equal(true);
      await page.waitForSelector(`[data-queue="${QUEUES.mail}"] [data-action=resume]`);
      await page.click(`[data-queue="${QUEUES.mail}"] [data-action=resume]`);
      await waitForText(page, '[data-toast=ok]', `Resumed “${QUEUES.mail}”`);
      expect((await queueState(QUEUES.mail)).paused).to.equal(false);
    });

    it('cancel a job', async () => {
      page = await open(server, `#/queues/${hashOf(QUEUES.mail)}/jobs/invoice-0030`, '[data-action=cancel]');
      await page.click('[data-action=cancel]');
      await confirmAndExpect(page, 'Cancelled “invoice-0030”');
      expect((await api(server, 'GET', jobPath(QUEUES.mail, 'invoice-0030'))).status).to.equal(404);
      await page.waitForSelector('[data-gone]');
    });

    it('retry one failed job, purge another', async () => {
      page = await open(server, '#/failed', `[data-failed-queue="${QUEUES.reports}"] tr[data-job="report-8"] [data-action=retry]`);
      await page.click(`[data-failed-queue="${QUEUES.reports}"] tr[data-job="report-8"] [data-action=retry]`);
      await waitForText(page, '[data-toast=ok]', '“report-8” is waiting again');
      expect((await api(server, 'GET', jobPath(QUEUES.reports, 'report-8'))).body.status).to.equal('waiting');

      await page.waitForSelector(`[data-failed-queue="${QUEUES.reports}"] tr[data-job="report-9"] [data-action=purge]`);
      await page.click(`[data-failed-queue="${QUEUES.reports}"] tr[data-job="report-9"] [data-action=purge]`);
      await confirmAndExpect(page, 'Purged “report-9”');
      expect((await api(server, 'GET', jobPath(QUEUES.reports, 'report-9'))).status).to.equal(404);
    });

    it('retry all failed jobs of a queue', async () => {
      page = await open(server, `#/queues/${hashOf(QUEUES.reports)}?status=failed`, '[data-action=retry-all]');
      await page.click('[data-action=retry-all]');
      // report-7's two failures: the latest goes back, the older is skipped (its id is live again).
      await confirmAndExpect(page, 'Retried 1 failed job');
      expect((await api(server, 'GET', jobPath(QUEUES.reports, 'report-7'))).body.status).to.equal('waiting');
    });

    it('purge all failed jobs of a queue', async () => {
      page = await open(server, '#/failed', `[data-failed-queue="${QUEUES.billing}"] [data-action=purge-all]`);
      await page.click(`[data-failed-queue="${QUEUES.billing}"] [data-action=purge-all]`);
      await confirmAndExpect(page, `Purged 2 failed jobs of “${QUEUES.billing}”`);
      expect((await queueState(QUEUES.billing)).failed).to.equal(0);
      await page.waitForFunction((q) => !document.querySelector(`[data-failed-queue="${q}"]`), {}, QUEUES.billing);
    });

    it('enqueue from a form, checked against the contract before it is sent', async () => {
      page = await open(server, `#/enqueue?queue=${hashOf(QUEUES.mail)}`, '[data-form=enqueue]');
      const fill = async (field: string, value: string) => {
        await page.$eval(`[data-form=enqueue] [name=${field}]`, (el) => ((el as HTMLInputElement).value = ''));
        await page.type(`[data-form=enqueue] [name=${field}]`, value);
      };
      await fill('id', 'welcome-42');
      await fill('timeout', '-5');
      await fill('payload', '{"to": "ada@example.com",}');
      await page.click('[data-action=enqueue]');
      await page.waitForSelector('[data-field-error=payload]');
      expect(await textOf(page, '[data-field-error=payload]')).to.include('is not JSON');
      expect(await textOf(page, '[data-field-error=timeout]')).to.include('must be at least 0');
      await shoot(page, 'enqueue.png');
      expect((await api(server, 'GET', jobPath(QUEUES.mail, 'welcome-42'))).status).to.equal(404);

      await fill('timeout', '45');
      await fill('max_retries', '2');
      await fill('payload', '{"to": "ada@example.com", "template": "welcome"}');
      await page.click('[data-action=enqueue]');
      await waitForText(page, '[data-toast=ok]', `Enqueued “welcome-42” in “${QUEUES.mail}”`);
      expect(await page.$('[data-field-error]')).to.equal(null);
      const job = (await api(server, 'GET', jobPath(QUEUES.mail, 'welcome-42'))).body;
      expect(job).to.include({ status: 'waiting', timeout: 45, max_retries: 2 });
      expect(job.payload).to.deep.equal({ to: 'ada@example.com', template: 'welcome' });

      // The server's answer is an outcome too: the id exists now.
      await fill('id', 'welcome-42');
      await page.click('[data-action=enqueue]');
      await waitForText(page, '[data-toast=error]', '409');
    });
  });

  describe('access', () => {
    let guarded: RelayServer;
    const AQ = queueNames();
    before(async () => {
      guarded = await startRelay({ authTokens: [{ role: 'reader', token: READER }, { role: 'admin', token: ADMIN }] });
      await workload(guarded, AQ);
    });
    after(() => guarded?.close());

    const signIn = async (tab: Page, token: string) => {
      await tab.waitForSelector('[data-form=token]');
      await tab.type('[data-form=token] input', token);
      await tab.click('[data-form=token] button[type=submit]');
    };

    it('asks for a token; a reader token shows every page and no action', async () => {
      page = await open(guarded, '#/queues', '[data-form=token]');
      await shoot(page, 'token.png');
      await signIn(page, 'not-a-known-token');
      await waitForText(page, '[data-form=token]', 'did not accept');
      await page.$eval('[data-form=token] input', (el) => ((el as HTMLInputElement).value = ''));
      await signIn(page, READER);
      await page.waitForSelector(`[data-queue="${AQ.mail}"]`);
      expect(await textOf(page, '[data-role]')).to.equal('reader');
      expect(await page.evaluate(() => sessionStorage.getItem('relay-ui-token'))).to.equal(READER);
      const routes = [
        ['#/queues', `[data-queue="${AQ.mail}"]`],
        [`#/queues/${hashOf(AQ.reports)}?status=failed`, '[data-jobs=failed]'],
        [`#/queues/${hashOf(AQ.video)}/jobs/encode-1`, '[data-facts]'],
        ['#/failed', `[data-failed-queue="${AQ.reports}"]`],
      ];
      for (const [hash, ready] of routes) {
        await page.evaluate((h) => (location.hash = h), hash!);
        await page.waitForSelector(ready!);
        expect(await page.$$('[data-action]'), hash).to.have.length(0);
      }
      expect(await page.$('nav a[href="#/enqueue"]')).to.equal(null);
      await shoot(page, 'reader.png');
    });

    it('an admin token shows the actions', async () => {
      page = await open(guarded, '#/queues', '[data-form=token]');
      await signIn(page, ADMIN);
      await page.waitForSelector(`[data-queue="${AQ.mail}"] [data-action=pause]`);
      expect(await textOf(page, '[data-role]')).to.equal('admin');
    });
  });

  describe('read-only mode, and an unreachable server', () => {
    let readOnly: RelayServer;
    const RQ = queueNames();
    before(async () => {
      readOnly = await startRelay({ uiReadOnly: true });
      await workload(readOnly, RQ);
    });
    after(() => readOnly?.close());

    it('--ui-read-only hides every action from everybody', async () => {
      page = await open(readOnly, '#/queues', `[data-queue="${RQ.mail}"]`);
      expect(await page.$('[data-read-only]')).to.not.equal(null);
      for (const [hash, ready] of [
        ['#/queues', `[data-queue="${RQ.mail}"]`],
        [`#/queues/${hashOf(RQ.reports)}?status=failed`, '[data-jobs=failed]'],
        [`#/queues/${hashOf(RQ.reports)}/jobs/report-7`, '[data-facts]'],
        ['#/failed', `[data-failed-queue="${RQ.reports}"]`],
      ]) {
        await page.evaluate((h) => (location.hash = h), hash!);
        await page.waitForSelector(ready!);
        expect(await page.$$('[data-action]'), hash).to.have.length(0);
      }
    });

    it('says when the server is unreachable, keeping what it showed', async () => {
      page = await open(readOnly, '#/queues', `[data-queue="${RQ.mail}"]`);
      expect(await page.$('[data-banner=unreachable]')).to.equal(null);
      await readOnly.close();
      await page.waitForSelector('[data-banner=unreachable]', { timeout: 15_000 });
      expect(await page.$(`[data-queue="${RQ.mail}"]`)).to.not.equal(null);
      await shoot(page, 'unreachable.png');
    });
  });
});
