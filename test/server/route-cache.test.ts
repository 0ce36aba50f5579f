import { expect } from 'chai';
import { createRequire } from 'node:module';
import { cacheValidatorRouteMatchers } from '../../server/src/route-cache.js';
import { call, uniqueQueue } from '../helpers/relay.js';

/*
 * The memoized route matchers of express-openapi-validator (server/src/route-cache.ts): the
 * server (started by test/setup.ts) has installed them; requests are still routed and checked.
 */

type Compiled = { regexp: RegExp; keys: Array<{ name: string }> };

function validatorsPathToRegexp(): (path: unknown, options?: object) => Compiled {
  const require = createRequire(import.meta.url);
  const validator = require.resolve('express-openapi-validator');
  return (createRequire(validator)('path-to-regexp') as { pathToRegexp: (path: unknown, options?: object) => Compiled }).pathToRegexp;
}

describe('route matchers of the OpenAPI validator', () => {
  it('compiles each route once: the same matcher for the same route and settings, another for other settings', () => {
    cacheValidatorRouteMatchers(); // a second install keeps the first
    const compile = validatorsPathToRegexp();
    const a = compile('/v1/next', { sensitive: false, strict: false });
    expect(compile('/v1/next', { sensitive: false, strict: false })).to.equal(a);
    expect(a.regexp.flags).to.not.match(/[gy]/);
    expect(a.regexp.test('/v1/next')).to.equal(true);
    expect(a.regexp.test('/v1/next/x')).to.equal(false);
    const sensitive = compile('/v1/next', { sensitive: true, strict: false });
    expect(sensitive).to.not.equal(a);
    expect(sensitive.regexp.test('/V1/NEXT')).to.equal(false);
    expect(a.regexp.test('/V1/NEXT')).to.equal(true);
    // Parameters still come out as keys.
    expect(compile('/jobs/:id', {}).keys.map((k) => k.name)).to.deep.equal(['id']);
  });

  it('leaves routing and validation as they were, request after request', async () => {
    const queue = uniqueQueue('routes');
    for (let i = 0; i < 3; i++) {
      expect((await call('POST', '/enqueue', { json: { id: `j${i}`, queue, timeout: 30 } })).status).to.equal(202);
      expect((await call('GET', `/v1/next?queue=${queue}`)).status).to.equal(200);
      const bad = await call('GET', '/v1/next?num_jobs=1');
      expect(bad.status).to.equal(400);
      expect(bad.body).to.have.property('type').that.matches(/^urn:relay-ts:problem:/);
      expect((await call('GET', '/v1/nope')).status).to.equal(404);
    }
  });
});
