/**
 * A transport for RelayClient on Node: plain `node:http` with a keep-alive agent, in the
 * shape openapi-fetch expects (a `Request` class and a `fetch`). Node's built-in fetch
 * (undici) builds streams, clones and abort plumbing for every request, which a worker
 * polling and completing many small jobs pays for in CPU; this sends only what relay needs.
 * It is what the Worker uses when it makes its own client from `baseUrl`:
 *
 *   new RelayClient({ baseUrl, ...nodeTransport() })
 */
import http from 'node:http';
import https from 'node:https';

/** What openapi-fetch builds a request into: no streams, no cloning, only what we send. */
class NodeRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
  readonly body: string | undefined;
  readonly signal: AbortSignal | undefined;

  constructor(input: string | URL, init: RequestInit = {}) {
    if (init.body != null && typeof init.body !== 'string') throw new TypeError('nodeTransport sends string bodies only');
    this.url = String(input);
    this.method = (init.method ?? 'GET').toUpperCase();
    this.headers = new Headers(init.headers);
    this.body = init.body ?? undefined;
    this.signal = init.signal ?? undefined;
  }
}

/** The parts of a Response that openapi-fetch and RelayClient read. */
class NodeResponse {
  readonly headers: { get(name: string): string | null };

  constructor(
    readonly status: number,
    raw: http.IncomingHttpHeaders,
    private readonly data: string,
  ) {
    this.headers = {
      get: (name) => {
        const value = raw[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    };
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  async text(): Promise<string> {
    return this.data;
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.data);
  }
}

export interface NodeTransport {
  fetch: (input: Request) => Promise<Response>;
  Request: typeof Request;
}

/** A fetch and Request pair for RelayClient's options, sharing keep-alive connections. */
export function nodeTransport(): NodeTransport {
  const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };
  const send = (request: NodeRequest) =>
    new Promise<NodeResponse>((resolve, reject) => {
      const url = new URL(request.url);
      const headers: Record<string, string> = {};
      request.headers.forEach((value, name) => (headers[name] = value));
      if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
      const agent = url.protocol === 'https:' ? agents['https:'] : agents['http:'];
      const module = url.protocol === 'https:' ? https : http;
      const req = module.request(url, { method: request.method, headers, agent, signal: request.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve(new NodeResponse(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8'))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(request.body);
    });
  return {
    fetch: send as unknown as NodeTransport['fetch'],
    Request: NodeRequest as unknown as typeof Request,
  };
}
