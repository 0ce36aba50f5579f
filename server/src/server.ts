import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { createApp } from './app.js';
import { ConnectionCap } from './http/connections.js';
import { listenForMetrics, type MetricsListener } from './http/metrics-route.js';
import { answerNodeErrors } from './http/node-errors.js';
import { isLoopbackAddress } from './http/origin-guard.js';
import type { Config } from './config.js';
import { openDatabase } from './db/index.js';
import type { Logger } from './logger.js';
import { migrate } from './migrate.js';
import { startReaper } from './reaper.js';
import { Idempotency } from './idempotency.js';
import { jobEventsOf } from './job-events.js';
import { LongPoll } from './long-poll.js';
import { Metrics } from './metrics.js';
import { notify } from './sql/notify.js';
import { queueSummaries } from './sql/queues.js';
import { JOBS_CHANNEL, Notifier } from './notifier.js';
import { Operations } from './operations.js';
import { Store } from './store.js';
import { ThroughputRecorder } from './throughput.js';

export interface RelayServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  databaseKind: 'postgres' | 'pglite';
  /** Where /metrics is served alone (--metrics-port), when it is. */
  metricsUrl?: string;
  /** Long polls waiting now. */
  readonly waitingPolls: number;
  /** Of those, the ones asleep after their claims: an enqueue now hands them its jobs. */
  readonly sleepingPolls: number;
  /**
   * Adds the throughput this server counted so far to the database (it does so every
   * --throughput-flush-interval seconds, and when it closes); resolves when it is there.
   */
  flushThroughput(): Promise<void>;
  /** Stops accepting, finishes requests in flight, stops the reaper, flushes the throughput, closes the database. */
  close(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RelayServer> {
  const db = await openDatabase(config, logger);
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  // Only a real PostgreSQL can have other servers on it to notify and hear from.
  const shared = db.kind === 'postgres';
  const notifier = new Notifier({
    sendRemote: shared ? (channel, payloads) => notify(db, channel, payloads) : undefined,
    minIntervalMs: 10,
    logger,
  });
  const announce = (queues: string[]) => notifier.jobsAvailable(queues);
  const longPoll = new LongPoll(db, announce, {
    recheckMs: config.pollRecheckMs,
    maxWaiting: config.maxWaitingPolls,
    knownEmpty: !config.disabled.has('known-empty'),
  });
  notifier.subscribe((queue) => longPoll.notify(queue));
  const idempotency = new Idempotency(db, config.idempotencyWindowSeconds);
  const metrics = config.metrics && !config.disabled.has('metrics')
    ? new Metrics({
        maxQueues: config.metricsMaxQueues,
        refreshSeconds: config.metricsRefreshSeconds,
        queueSummaries: () => queueSummaries(db),
        pool: db.poolStats,
        waitingPolls: () => longPoll.waiting,
        logger,
      })
    : undefined;
  // Not from the metrics: the throughput is counted with metrics off too.
  const throughput = new ThroughputRecorder(db, { flushSeconds: config.throughputFlushSeconds, logger });
  const events = jobEventsOf(metrics ? [metrics, throughput] : [throughput]);
  const store = new Store(db, {
    onAvailable: announce,
    handOff: config.disabled.has('hand-off') ? undefined : longPoll,
    idempotency,
    coalesce: !config.disabled.has('coalescing'),
    events,
  });
  const operations = new Operations(db, { onAvailable: announce, failedRetentionSeconds: config.failedRetentionSeconds, events });
  const unlisten = shared ? await db.listen(JOBS_CHANNEL, (payload) => notifier.received(payload)) : async () => undefined;
  const connections = new ConnectionCap(config.maxHttpConnections);
  const app = await createApp({
    store,
    operations,
    longPoll,
    databaseKind: db.kind,
    limits: config,
    connections,
    idempotency,
    logger,
    guard: { listenHost: config.host, allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins },
    tokens: config.authTokens,
    ui: config.ui ? { readOnly: config.uiReadOnly } : undefined,
    metrics,
    stockValidator: config.disabled.has('cheap-validation'),
  });
  if (config.authTokens.length === 0 && !isLoopbackAddress(config.host)) {
    logger.warn({ host: config.host }, `no auth tokens (--auth-tokens) while listening on ${config.host}: anyone who reaches this address may call every operation`);
  }

  // HTTP/1.1 without Host: answered by the API (problem+json) rather than by Node's bare 400.
  const server: Server = createServer({ requireHostHeader: false }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  connections.attach(server);
  answerNodeErrors(server);
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  // Time to receive a request's headers, and the whole request. A long poll's wait is not
  // part of it (it is spent answering), so neither bounds the 60 s wait.
  server.headersTimeout = 20_000;
  server.requestTimeout = 120_000;
  const reaper = startReaper(store, operations, config.reapInterval, logger, metrics && ((startedAt, seconds) => metrics.reaperRan(startedAt, seconds)));
  throughput.start();
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let metricsListener: MetricsListener | undefined;
  if (metrics && config.metricsPort !== undefined) {
    try {
      metricsListener = await listenForMetrics(metrics, config.host, config.metricsPort);
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await reaper.stop();
      await throughput.close();
      await unlisten();
      await db.close();
      throw err;
    }
  }

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    databaseKind: db.kind,
    ...(metricsListener ? { metricsUrl: `http://${host}:${metricsListener.port}/metrics` } : {}),
    get waitingPolls() {
      return longPoll.waiting;
    },
    get sleepingPolls() {
      return longPoll.sleeping;
    },
    flushThroughput: () => throughput.flush(),
    close() {
      closing ??= (async () => {
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        // Waiting long polls answer now (no jobs) instead of holding the shutdown.
        longPoll.close();
        // A keep-alive connection becomes idle only once its last response is sent; close
        // each as soon as it does rather than waiting out the keep-alive timeout.
        const closeUnused = () => {
          server.closeIdleConnections();
          connections.closeUnused();
        };
        closeUnused();
        const sweeper = setInterval(closeUnused, 20);
        await drained.finally(() => clearInterval(sweeper));
        await metricsListener?.close();
        metrics?.close();
        await reaper.stop();
        // After the requests and the reaper: what they counted is flushed too.
        await throughput.close();
        await notifier.flush();
        await unlisten();
        await db.close();
      })();
      return closing;
    },
  };
}
