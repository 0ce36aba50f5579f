export { startServer, type RelayServer } from './server.js';
export { parseConfig, defaults, ConfigError, type Config } from './config.js';
export { createLogger } from './logger.js';
export * from './errors.js';
