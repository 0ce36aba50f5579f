import { startSharedRelay, stopSharedRelay } from './helpers/relay.js';

/** Mocha root hooks: one relay server for the whole run. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    await startSharedRelay();
  },
  async afterAll() {
    await stopSharedRelay();
  },
};
