/**
 * The servers a client sends to, in its order of preference, and which one to use now. A
 * server that failed (no connection, no answer, 429, 502, 503, 504) backs off: it is skipped
 * for a while that doubles with each failure in a row, then tried again with the next request,
 * and used again once it answers. Servers share one database, so any of them can take any
 * request; the order only says where to go while every server is up.
 */

/** The first back-off of a server that failed, ms; it doubles with each failure in a row. */
export const FAILOVER_INITIAL_BACKOFF_MS = 1000;
/** The longest back-off, ms: a server that stays down is still tried again this often. */
export const FAILOVER_MAX_BACKOFF_MS = 30_000;

interface Server {
  readonly url: string;
  /** Failures in a row; 0 once it answers. */
  failures: number;
  /** Skipped until then (ms since the epoch). */
  backOffUntil: number;
}

export class Endpoints {
  readonly urls: readonly string[];
  readonly #servers: Server[];

  constructor(urls: readonly string[], private readonly now: () => number = Date.now) {
    this.urls = Object.freeze([...urls]);
    this.#servers = urls.map((url) => ({ url, failures: 0, backOffUntil: 0 }));
  }

  /**
   * Where the next request goes: the first server in order that is not backing off; when all
   * are, the one whose back-off ends first (a request is never refused for want of a server).
   */
  pick(): string {
    const servers = this.#servers;
    if (servers.length === 1) return servers[0]!.url;
    const now = this.now();
    let soonest = servers[0]!;
    for (const server of servers) {
      if (server.backOffUntil <= now) return server.url;
      if (server.backOffUntil < soonest.backOffUntil) soonest = server;
    }
    return soonest.url;
  }

  /** Whether `url` is backing off now. */
  backingOff(url: string): boolean {
    const server = this.#find(url);
    return server !== undefined && server.backOffUntil > this.now();
  }

  /** `url` could not serve a request: skip it for a back-off, at least `retryAfterMs` when the server asked for it. */
  failed(url: string, retryAfterMs: number | undefined): void {
    const server = this.#find(url);
    if (server === undefined || this.#servers.length === 1) return;
    const now = this.now();
    // Requests sent together fail together: one failure per back-off, or a burst of them would
    // put the server away for the longest back-off at once.
    if (server.backOffUntil > now) {
      if (retryAfterMs !== undefined) server.backOffUntil = Math.max(server.backOffUntil, now + retryAfterMs);
      return;
    }
    server.failures++;
    const ceiling = Math.min(FAILOVER_MAX_BACKOFF_MS, FAILOVER_INITIAL_BACKOFF_MS * 2 ** Math.min(server.failures - 1, 30));
    // Equal jitter: clients that lost a server together do not all come back to it at once.
    const backOff = ceiling / 2 + Math.random() * (ceiling / 2);
    server.backOffUntil = now + Math.max(backOff, retryAfterMs ?? 0);
  }

  /** `url` answered: it is used again in its turn. */
  answered(url: string): void {
    const server = this.#find(url);
    if (server === undefined || server.failures === 0) return;
    server.failures = 0;
    server.backOffUntil = 0;
  }

  #find(url: string): Server | undefined {
    for (const server of this.#servers) if (server.url === url) return server;
    return undefined;
  }
}
