import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CONTENT_SECURITY_POLICY, defaultDist } from '../../server/src/http/ui.js';
import { ConfigError, parseConfig, type RelayServer } from '../../server/src/index.js';
import { call, startRelay } from '../helpers/relay.js';

/*
 * The dashboard as the server serves it (issue 14), without a browser: test/ui/ drives it in
 * Chromium. The assets are built by `npm run build` (npm test runs it first).
 */

const assets = () => readdirSync(join(defaultDist(), 'assets'));

describe('dashboard: serving /ui', () => {
  it('answers the page with a strict Content-Security-Policy, naming its hashed assets, no inline script or style', async () => {
    const res = await call('GET', '/ui');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    expect(res.headers.get('content-security-policy')).to.equal(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).to.include("script-src 'self'").and.include("style-src 'self'").and.not.include('unsafe');
    expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(res.headers.get('cache-control')).to.equal('no-cache');
    expect(res.text).to.include('<meta name="relay-ui-read-only" content="false">').and.include('<meta name="relay-ui-tokens" content="false">');
    expect(res.text).to.not.match(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.text).to.not.match(/<style|\sstyle=/);
    for (const [, src] of res.text.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)) {
      const asset = await call('GET', src!);
      expect(asset.status, src).to.equal(200);
      expect(asset.headers.get('cache-control')).to.include('immutable');
      expect(asset.headers.get('content-security-policy')).to.equal(CONTENT_SECURITY_POLICY);
    }
    expect((await call('GET', '/ui/')).status).to.equal(200);
  });

  it('answers 404 problem+json for an asset it does not have', async () => {
    const res = await call('GET', '/ui/assets/nothing-here.js');
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
  });

  it(`ships at most 150 KB of gzipped JavaScript`, () => {
    const scripts = assets().filter((name) => name.endsWith('.js'));
    expect(scripts).to.have.length(1);
    const gzipped = gzipSync(readFileSync(join(defaultDist(), 'assets', scripts[0]!)), { level: 9 }).length;
    expect(gzipped).to.be.below(150 * 1024);
  });

  describe('with tokens and read-only mode', () => {
    let server: RelayServer;
    before(async () => {
      server = await startRelay({ authTokens: [{ role: 'reader', token: 'reader-ui-token-0123456789' }], uiReadOnly: true });
    });
    after(() => server?.close());

    it('serves the page without a token (its API calls carry one) and tells it tokens and read-only are on', async () => {
      const res = await call('GET', '/ui', { baseUrl: server.url });
      expect(res.status).to.equal(200);
      expect(res.text).to.include('<meta name="relay-ui-read-only" content="true">').and.include('<meta name="relay-ui-tokens" content="true">');
      expect((await call('GET', '/v1/queues', { baseUrl: server.url })).status).to.equal(401);
    });
  });

  describe('--no-ui', () => {
    let server: RelayServer;
    before(async () => {
      server = await startRelay({ ui: false });
    });
    after(() => server?.close());

    it('serves no /ui: the path is the API\'s 404', async () => {
      const res = await call('GET', '/ui', { baseUrl: server.url });
      expect(res.status).to.equal(404);
      expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
    });
  });

  describe('flags', () => {
    const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const parsed = parseConfig(argv, env);
      if (!('config' in parsed)) throw new Error('help');
      return parsed.config;
    };

    it('serves the dashboard by default, with actions', () => {
      expect(parse([])).to.include({ ui: true, uiReadOnly: false });
    });

    it('reads --no-ui and --ui-read-only, over RELAY_UI and RELAY_UI_READ_ONLY', () => {
      expect(parse(['--no-ui']).ui).to.equal(false);
      expect(parse(['--ui-read-only']).uiReadOnly).to.equal(true);
      expect(parse([], { RELAY_UI: 'off', RELAY_UI_READ_ONLY: 'true' })).to.include({ ui: false, uiReadOnly: true });
      expect(parse([], { RELAY_UI: 'on', RELAY_UI_READ_ONLY: 'false' })).to.include({ ui: true, uiReadOnly: false });
      expect(parse(['--no-ui'], { RELAY_UI: 'on' }).ui).to.equal(false);
      expect(parse(['--ui-read-only'], { RELAY_UI_READ_ONLY: 'false' }).uiReadOnly).to.equal(true);
    });

    it('refuses a value of RELAY_UI or RELAY_UI_READ_ONLY that is not a switch', () => {
      expect(() => parse([], { RELAY_UI: 'maybe' })).to.throw(ConfigError, /RELAY_UI/);
      expect(() => parse([], { RELAY_UI_READ_ONLY: 'sometimes' })).to.throw(ConfigError, /RELAY_UI_READ_ONLY/);
    });
  });
});
