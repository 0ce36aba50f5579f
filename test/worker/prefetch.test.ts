import { expect } from 'chai';
import { AutoPrefetch, MAX_AHEAD } from '../../worker/src/prefetch.js';

/** The rule of `prefetch: 'auto'` on its own: what it holds ahead for given round trips, handler times and leases. */
describe("Worker: prefetch 'auto', the rule", () => {
  const rule = (concurrency: number, roundTripMs: number, handlerMs: number, leaseMs = 30_000) => {
    const auto = new AutoPrefetch(concurrency);
    auto.roundTrip(roundTripMs);
    auto.handled(handlerMs);
    auto.leased(leaseMs);
    return auto.ahead;
  };

  it('holds nothing ahead until it has seen both a round trip under a backlog and a handler', () => {
    const auto = new AutoPrefetch(8);
    expect(auto.ahead).to.equal(0);
    auto.handled(1);
    expect(auto.ahead, 'no round trip yet').to.equal(0);
    const other = new AutoPrefetch(8);
    other.roundTrip(5);
    expect(other.ahead, 'no handler yet').to.equal(0);
  });

  it('covers two round trips of the slots: more when the round trips slow down, none for jobs far longer than a round trip', () => {
    expect(rule(8, 5, 1)).to.equal(80);
    expect(rule(8, 20, 1), 'a busy host: round trips four times longer').to.equal(320);
    expect(rule(1, 5, 10)).to.equal(1);
    expect(rule(4, 5, 1000), 'second-long jobs').to.equal(0);
  });

  it('keeps the waiting within a quarter of the shortest lease seen, and at most what one poll may bring', () => {
    // 8 slots of 100 ms jobs: a lease of 2 s allows 8 × 500 / 100 = 40 waiting, whatever the round trip.
    expect(rule(8, 1000, 100, 2_000)).to.equal(40);
    const auto = new AutoPrefetch(8);
    auto.roundTrip(1000);
    auto.handled(100);
    auto.leased(30_000);
    auto.leased(2_000);
    auto.leased(30_000);
    expect(auto.ahead, 'the shortest lease rules').to.equal(40);
    expect(rule(50, 5, 0), 'jobs that return at once').to.equal(MAX_AHEAD);
  });

  it('follows the recent figures, not the first ones', () => {
    const auto = new AutoPrefetch(8);
    auto.roundTrip(5);
    auto.handled(1);
    auto.leased(30_000);
    for (let i = 0; i < 50; i++) auto.handled(1_000);
    expect(auto.ahead, 'the jobs became long').to.equal(0);
  });
});
