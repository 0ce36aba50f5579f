import { expect } from 'chai';
import { RelayClient, UnauthorizedError } from '@relay-ts/client';
import type { RelayServer } from '../../server/src/index.js';
import { call, relay, startRelay } from '../helpers/relay.js';

/* GET /v1/whoami: the role of the caller's token, so that the dashboard offers only what it may call. */

const ROLES = ['producer', 'worker', 'reader', 'admin'] as const;
const token = (role: string) => `${role}-whoami-token-0123456789`;

describe('whoami', () => {
  it('answers role null when the server has no tokens', async () => {
    const res = await call('GET', '/v1/whoami');
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.deep.equal({ role: null });
    expect(await new RelayClient({ baseUrl: relay().url }).whoami()).to.deep.equal({ role: null });
  });

  describe('with tokens', () => {
    let server: RelayServer;
    before(async () => {
      server = await startRelay({ authTokens: ROLES.map((role) => ({ role, token: token(role) })) });
    });
    after(() => server?.close());

    it("answers each token's role, to every role", async () => {
      for (const role of ROLES) {
        const res = await call('GET', '/v1/whoami', { baseUrl: server.url, headers: { authorization: `Bearer ${token(role)}` } });
        expect(res.status, res.text).to.equal(200);
        expect(res.body).to.deep.equal({ role });
        expect(await new RelayClient({ baseUrl: server.url, token: token(role) }).whoami()).to.deep.equal({ role });
      }
    });

    it('is a 401 without a token or with an unknown one', async () => {
      expect((await call('GET', '/v1/whoami', { baseUrl: server.url })).status).to.equal(401);
      const res = await call('GET', '/v1/whoami', { baseUrl: server.url, headers: { authorization: 'Bearer not-a-known-token' } });
      expect(res.status).to.equal(401);
      const client = new RelayClient({ baseUrl: server.url, token: 'not-a-known-token' });
      let caught: unknown;
      await client.whoami().catch((err: unknown) => (caught = err));
      expect(caught).to.be.instanceOf(UnauthorizedError);
    });
  });
});
