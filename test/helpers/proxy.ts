import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small HTTP proxy for the client tests: it stands in front of a real relay server,
 * records every request it receives, and answers the next requests as a test scripts them
 * (an error status, a dropped connection, no answer at all) before passing requests through
 * again. It can also go down (connections refused) and come back on the same port, and
 * rewrite the real server's answers (a server that breaks the contract in one place, for the
 * tests of the conformance kit).
 */

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Reply =
  /** Forward to the real server and relay its answer. */
  | 'pass'
  /** Close the connection without answering; the real server never sees the request. */
  | 'drop'
  /** Forward to the real server, then close the connection instead of relaying the answer. */
  | 'pass-then-drop'
  /** Never answer (until the proxy stops). */
  | 'hang'
  /** Wait this long, then forward as 'pass' does. */
  | { delayMs: number }
  /** Answer this, without forwarding: a string body as it is, any other as application/problem+json. */
  | { status: number; headers?: Record<string, string>; body?: unknown };

/** An answer of the real server, as the proxy relays it. */
export interface Forwarded {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * Changes an answer of the real server before the proxy relays it (a server that breaks the
 * contract in one place); undefined relays it unchanged. Content-Length is set to the new body.
 */
export type Rewrite = (answer: Forwarded, request: SeenRequest) => Forwarded | undefined;

export class TestProxy {
  readonly requests: SeenRequest[] = [];
  readonly #rewrites: Rewrite[] = [];
  #script: Reply[] = [];
  readonly #scriptByPath = new Map<string, Reply[]>();
  #fallback: Reply = 'pass';
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  private constructor(readonly target: string, public port: number) {}

  /** Starts a proxy to `target` (a relay server's URL) on a free port. */
  static async start(target: string): Promise<TestProxy> {
    const proxy = new TestProxy(target, 0);
    await proxy.up();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next requests get these replies, in order; after them, `fallback` (default 'pass'). */
  script(...replies: Reply[]): this {
    this.#script.push(...replies);
    return this;
  }

  /** The next requests for `path` get these replies, in order, before any other script. */
  scriptFor(path: string, ...replies: Reply[]): this {
    this.#scriptByPath.set(path, [...(this.#scriptByPath.get(path) ?? []), ...replies]);
    return this;
  }

  /** What every request gets once the script is used up. */
  always(reply: Reply): this {
    this.#fallback = reply;
    return this;
  }

  /** Every answer relayed from now on passes through fn (after the rewrites added before it). */
  rewrite(fn: Rewrite): this {
    this.#rewrites.push(fn);
    return this;
  }

  /** The requests received for one path. */
  seen(path: string): SeenRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Stops listening and cuts every connection: new connections are refused. */
  async down(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
  }

  /** Listens again, on the same port once it has one. */
  async up(): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => void this.#handle(req, res));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  close(): Promise<void> {
    return this.down();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', this.url);
    const seen: SeenRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body: body.toString('utf8') };
    this.requests.push(seen);

    const reply = this.#scriptByPath.get(url.pathname)?.shift() ?? this.#script.shift() ?? this.#fallback;
    if (reply === 'hang') return;
    if (reply === 'drop') return void req.socket.destroy();
    if (typeof reply === 'object' && 'delayMs' in reply) await new Promise((r) => setTimeout(r, reply.delayMs));
    else if (typeof reply === 'object') {
      const headers: Record<string, string> = { ...reply.headers };
      let text = '';
      if (typeof reply.body === 'string') {
        text = reply.body;
      } else if (reply.body !== undefined) {
        text = JSON.stringify(reply.body);
        headers['content-type'] ??= 'application/problem+json';
      }
      res.writeHead(reply.status, headers).end(text);
      return;
    }
    // A client gone (a dropped connection, the proxy going down) ends the request upstream too,
    // as a real proxy does: a long poll left waiting there would take the next job to nobody.
    const gone = new AbortController();
    const onClose = () => gone.abort();
    req.socket.once('close', onClose);
    try {
      let answer = await this.#forward(req, body, gone.signal);
      if (reply === 'pass-then-drop') return void req.socket.destroy();
      for (const rewrite of this.#rewrites) {
        const changed = rewrite(answer, seen);
        if (changed) answer = { ...changed, headers: { ...changed.headers, 'content-length': String(changed.body.length) } };
      }
      res.writeHead(answer.status, answer.headers).end(answer.body);
    } catch {
      req.socket.destroy();
    } finally {
      req.socket.off('close', onClose);
    }
  }

  #forward(req: IncomingMessage, body: Buffer, signal: AbortSignal): Promise<Forwarded> {
    const target = new URL(req.url ?? '/', this.target);
    const headers = { ...req.headers, host: target.host };
    delete headers.connection;
    return new Promise((resolve, reject) => {
      const upstream = httpRequest(target, { method: req.method, headers, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding') out[k] = v;
          resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      });
      upstream.on('error', reject);
      upstream.end(body);
    });
  }
}
