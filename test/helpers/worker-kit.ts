import { EventEmitter, once } from 'node:events';
import { RelayClient, type RelayClientOptions } from '@relay-ts/client';
import type { Worker } from '../../worker/src/index.js';
import { relay } from './relay.js';

/**
 * Helpers for the worker tests: a fetch that records every request a worker's client sends
 * (to count polls, and to check that each call names its delivery) before passing it to the
 * real server. The tests make their workers with the function form, `new Worker({ ..., process })`,
 * and `logger: {}` unless they look at the logs: the default writes warnings to stderr.
 */

export interface SeenCall {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The request body as text ('' when none). */
  body: string;
  /** When it was sent (ms since the epoch). */
  at: number;
}

/** A fetch that records each request, then sends it to the real server. */
export class Recorder {
  readonly calls: SeenCall[] = [];
  /** Called as each request is sent, before it is recorded (e.g. to check the worker's state). */
  onRequest: ((call: SeenCall) => void) | undefined;
  /** Called when the response to a request has come (its body not yet read), or it failed. */
  onResponse: ((call: SeenCall) => void) | undefined;

  readonly fetch = async (input: Request | string | URL, init?: RequestInit): Promise<Response> => {
    // Read from the request as given and pass it on as it is: a new Request made from it would
    // follow its AbortSignal only weakly on Node 20, and an abort could be lost.
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const body = request.body ? await request.clone().text() : '';
    const call: SeenCall = { method: request.method, path: url.pathname, query: url.searchParams, body, at: Date.now() };
    this.onRequest?.(call);
    this.calls.push(call);
    try {
      return await globalThis.fetch(input, init);
    } finally {
      this.onResponse?.(call);
    }
  };

  /** A client of the shared test server that sends through this recorder. */
  client<P = unknown, S = unknown>(options: Partial<RelayClientOptions> = {}): RelayClient<P, S> {
    return new RelayClient<P, S>({ baseUrl: relay().url, fetch: this.fetch, ...options });
  }

  /** The calls to one path (and method), in order. */
  seen(path: string, method?: string): SeenCall[] {
    return this.calls.filter((c) => c.path === path && (method === undefined || c.method === method));
  }

  /** The polls (GET /v1/next) sent from `since` on. */
  polls(since = 0): SeenCall[] {
    return this.seen('/v1/next', 'GET').filter((c) => c.at >= since);
  }
}

/**
 * The worker holds no job: every job it had is done with, and whatever it was going to send
 * for them (a completion, a failure) has been sent. A test waits for this before it checks
 * what was or was not sent.
 */
export function holdsNoJob(worker: Worker<any, any>): boolean {
  const { processing, waiting, settling } = worker.jobs;
  return processing + waiting + settling === 0;
}

/** Resolves with the arguments of the next `event` of `emitter`. */
export function nextEvent<T extends unknown[]>(emitter: EventEmitter<any>, event: string): Promise<T> {
  return once(emitter as EventEmitter, event) as Promise<T>;
}

/** A promise with its resolve function, to let a handler wait for the test. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Resolves `promise`, or rejects when it takes longer than `ms` (a bound on a wait, not a timing claim). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
