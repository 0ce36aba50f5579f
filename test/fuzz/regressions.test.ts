import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { backend, call, relay } from '../helpers/relay.js';
import { breaches, check, judge, type Limits } from './oracle.js';
import { regressions } from './regressions.js';
import { documentedLimits } from './spec.js';
import { fromRegression, namedJobs, render, send } from './wire.js';

/*
 * The shrunk cases the fuzz test found (regressions.ts), as regular tests: each request is
 * sent as the fuzz test sent it, its answer held to the same oracle (the status the contract
 * calls for, declared and valid by openapi.yaml, problem+json, no 5xx), and a refused request
 * must have stored none of the jobs it names.
 */

const limits: Limits = { ...documentedLimits(), maxHeaderBytes: 16 * 1024 };

describe(`fuzz regressions: shrunk cases the fuzz test found (${backend})`, () => {
  const prefix = `fuzz-regression-${randomUUID().slice(0, 8)}`;

  for (const [name, text] of regressions) {
    it(name, async () => {
      const request = fromRegression(text, prefix);
      const rendered = render(request, new URL(relay().url).host);
      const verdict = judge(rendered, limits);
      const answer = await send(relay().url, rendered, 15_000);
      const problems = [...check(rendered, answer, verdict, limits), ...breaches(rendered.method, rendered.target, answer)];
      expect(problems, `${answer.status} ${answer.text.slice(0, 300)}`).to.deep.equal([]);
      const named = namedJobs(request);
      if (answer.status >= 400 && named.length > 0) {
        const done = await call('POST', '/v1/complete/batch', { json: named.map((j) => ({ queue: j.queue, job_id: j.id })) });
        expect(done.status, done.text).to.equal(200);
        expect(done.body.completed, 'jobs a refused request stored').to.deep.equal([]);
      }
    });
  }
});
