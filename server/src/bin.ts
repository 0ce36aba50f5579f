#!/usr/bin/env -S node --max-semi-space-size=32
// The flag above (and in bin/relay-server.js, the file npm links, and in the root
// package.json's start script): a 32 MB young generation instead of 16 lets the garbage of
// requests in flight die young rather than be promoted and swept by full collections: fewer
// GC pauses (the A/B is in the README's Performance section).
import cluster from 'node:cluster';
import { runPrimary, SHUTDOWN_MESSAGE } from './cluster.js';
import { ConfigError, parseConfig } from './config.js';
import { createLogger } from './logger.js';
import { startServer } from './server.js';

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`relay-server: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    return;
  }
  const { config } = parsed;
  // Each of several processes says which one it is.
  const logger = createLogger(config.logLevel, cluster.isWorker ? { pid: process.pid } : undefined);
  if (config.processes > 1 && cluster.isPrimary) {
    process.exit(await runPrimary(config.processes, logger));
  }
  const inCluster = cluster.isWorker;
  const starting = startServer(config, logger);

  // Installed before start-up finishes: a signal while the database opens or migrates must
  // still end in a clean close, not in Node's default exit-by-signal.
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      // A second signal is the operator insisting: stop waiting for requests in flight.
      logger.warn({ signal }, 'second signal: exiting without finishing shutdown');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    starting
      .then((server) => server.close())
      .then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  if (inCluster) {
    // The primary stops its processes (a message); a Ctrl-C reaches the whole process group,
    // and taken here too it would count as the second, insisting signal.
    process.on('SIGINT', () => undefined);
    process.on('message', (message) => {
      if (message === SHUTDOWN_MESSAGE && !stopping) shutdown('primary');
    });
  } else {
    process.on('SIGINT', () => shutdown('SIGINT'));
  }

  const server = await starting;
  if (inCluster) return void logger.info({ url: server.url }, 'server process listening');
  logger.info(
    { url: server.url, database: server.databaseKind, reapInterval: config.reapInterval },
    `relay-server listening on ${server.url} (database: ${server.databaseKind}, reap interval: ${config.reapInterval}s)`,
  );
}

main().catch((err) => {
  process.stderr.write(`relay-server: ${err instanceof Error ? err.message : String(err)}\n`);
  // A setting found unusable only at start-up (a data directory another server holds) is a
  // configuration error like a bad flag: status 2, which a supervisor need not retry.
  process.exit(err instanceof ConfigError ? 2 : 1);
});
