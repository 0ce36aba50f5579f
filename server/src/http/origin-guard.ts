import { isIP } from 'node:net';
import type { Request, RequestHandler, Response } from 'express';
import { ForbiddenHostError, ForbiddenOriginError } from '../errors.js';

/*
 * Keeps browsers from using a relay server on the user's behalf. Any web page can make a
 * browser send GET /v1/next to a server on localhost (leasing a queue's jobs to nobody) and,
 * with DNS rebinding (its own name resolving to 127.0.0.1), read the answer. Two checks, on
 * every request, /health included, before anything else runs:
 *
 * - Host: while the server listens on a loopback address, only loopback names reach it, plus
 *   --allowed-hosts. A rebinding page's requests carry the page's own name. On any other
 *   address every Host passes unless --allowed-hosts is set, so that a server behind a reverse
 *   proxy keeps working.
 * - Origin: a request carrying one must come from the server's own origin or from
 *   --allowed-origins (none by default), and only those get CORS headers. A request without
 *   Origin that a browser marks as coming from another site (Sec-Fetch-Site, e.g. an <img> or
 *   a link to /v1/next: browsers send no Origin on such GETs) is refused too.
 *
 * Requests without a Host header pass the Host check: browsers always send one, so only
 * other clients (HTTP/1.0 probes) leave it out.
 */

export interface OriginGuardOptions {
  /** The address the server listens on (--host): a loopback one turns the Host check on. */
  listenHost: string;
  /** --allowed-hosts entries, as parseHostPattern() accepts them. */
  allowedHosts: string[];
  /** --allowed-origins entries, as parseOriginPattern() accepts them. */
  allowedOrigins: string[];
}

const ALLOW_METHODS = 'GET, POST, PATCH, DELETE';
const ALLOW_HEADERS = 'Content-Type, Authorization, Idempotency-Key, traceparent, X-Request-Id';
const EXPOSE_HEADERS = 'Retry-After, X-Request-Id';
// Preflights are cheap but cost a round trip before every non-simple request.
const PREFLIGHT_MAX_AGE_SECONDS = '600';

interface HostPort {
  /** Lowercase, without a trailing dot; an IPv6 address in brackets, as URL writes it. */
  hostname: string;
  /** undefined when the value names none. */
  port: string | undefined;
}

/**
 * A Host header value (host[:port]) taken apart the way a browser writes it, or undefined when
 * it is not one. The URL parser normalises names and addresses (case, 127.1, IDN); the pattern
 * first keeps out anything it would read differently ("evil.com@127.0.0.1", paths).
 */
function parseHost(value: string): HostPort | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^\s@/\\?#[\]:]+)(?::(\d{1,5}))?$/i.exec(value);
  if (!m) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${value}`);
  } catch {
    return undefined;
  }
  return { hostname: url.hostname.replace(/\.$/, ''), port: m[2] === undefined ? undefined : url.port || '80' };
}

function isLoopbackName(hostname: string): boolean {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  if (isIP(hostname) === 4) return hostname.startsWith('127.');
  return hostname === '[::1]';
}

/** Whether the listen address (--host: a name, an IPv4 or a bare IPv6 address) is a loopback one. */
export function isLoopbackAddress(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  const parsed = parseHost(isIP(bare) === 6 ? `[${bare}]` : bare);
  return parsed !== undefined && isLoopbackName(parsed.hostname);
}

type HostPattern = { any: true } | { hostname: string; subdomains: boolean; port: string | undefined };

/** One --allowed-hosts entry: a name or address, with an optional port, "*.name" for its subdomains, or "*". */
export function parseHostPattern(entry: string): HostPattern {
  if (entry === '*') return { any: true };
  const subdomains = entry.startsWith('*.');
  const parsed = parseHost(subdomains ? entry.slice(2) : entry);
  if (!parsed || (subdomains && isIP(parsed.hostname.replace(/^\[(.*)\]$/, '$1')) !== 0)) {
    throw new Error(`${JSON.stringify(entry)} is not a host name (e.g. relay.example.com, relay.internal:8080, *.example.com, or *)`);
  }
  return { hostname: parsed.hostname, subdomains, port: parsed.port };
}

/** One --allowed-origins entry, normalised (scheme://host[:port], no path), or "*". */
export function parseOriginPattern(entry: string): string {
  if (entry === '*') return '*';
  let url: URL | undefined;
  try {
    url = new URL(entry);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.href !== `${url.origin}/`) {
    throw new Error(`${JSON.stringify(entry)} is not an origin (scheme://host[:port], e.g. https://app.example.com, or *)`);
  }
  return url.origin;
}

function matchesHost(pattern: HostPattern, host: HostPort): boolean {
  if ('any' in pattern) return true;
  if (pattern.port !== undefined && pattern.port !== (host.port ?? '80')) return false;
  return pattern.subdomains ? host.hostname.endsWith(`.${pattern.hostname}`) : host.hostname === pattern.hostname;
}

/** The origin a header names, normalised, or undefined for "null" and anything that is not one. */
function normaliseOrigin(value: string): string | undefined {
  try {
    const origin = new URL(value).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/** A value from the request as the detail quotes it: short, so a huge header makes no huge body. */
function quote(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

export function originGuard(options: OriginGuardOptions): RequestHandler {
  const loopback = isLoopbackAddress(options.listenHost);
  const hostPatterns = options.allowedHosts.map(parseHostPattern);
  const checkHost = loopback || hostPatterns.length > 0;
  const anyOrigin = options.allowedOrigins.includes('*');
  const allowedOrigins = new Set(options.allowedOrigins.map(parseOriginPattern));

  function hostAllowed(host: HostPort): boolean {
    return isLoopbackName(host.hostname) || hostPatterns.some((p) => matchesHost(p, host));
  }

  function refuseHost(value: string): ForbiddenHostError {
    const rule = loopback
      ? 'a server listening on a loopback address answers only loopback names (localhost, 127.0.0.1, [::1]) and --allowed-hosts'
      : 'this server answers only the names in --allowed-hosts';
    return new ForbiddenHostError(
      `the Host ${quote(value)} is not a name of this server: ${rule}; to reach it by this name, add it to --allowed-hosts (RELAY_ALLOWED_HOSTS)`,
    );
  }

  function originAllowed(origin: string, req: Request): boolean {
    if (anyOrigin || allowedOrigins.has(origin)) return true;
    // The server speaks plain HTTP: its own origin is http:// and the Host the request names.
    const own = req.headers.host === undefined ? undefined : normaliseOrigin(`http://${req.headers.host}`);
    return own !== undefined && own === origin;
  }

  function allowCors(res: Response, origin: string): void {
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
  }

  return (req, res, next) => {
    // What this middleware answers depends on the Origin: no cache may serve it for another.
    res.vary('Origin');

    const hostHeader = req.headers.host;
    if (checkHost && hostHeader !== undefined) {
      const host = parseHost(hostHeader);
      if (!host || !hostAllowed(host)) return next(refuseHost(hostHeader));
    }

    const originHeader = req.headers.origin;
    if (originHeader === undefined) {
      const site = req.headers['sec-fetch-site'];
      if (site === 'cross-site' || site === 'same-site') {
        return next(
          new ForbiddenOriginError(
            'a browser request from another site without an Origin header is refused; a page must call this server with CORS (fetch) from an origin in --allowed-origins (RELAY_ALLOWED_ORIGINS)',
          ),
        );
      }
      return next();
    }

    const origin = normaliseOrigin(originHeader);
    if (origin === undefined || !originAllowed(origin, req)) {
      return next(
        new ForbiddenOriginError(
          `requests from the origin ${quote(originHeader)} are refused; to let pages from it call this server, add it to --allowed-origins (RELAY_ALLOWED_ORIGINS)`,
        ),
      );
    }
    allowCors(res, originHeader);

    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.vary('Access-Control-Request-Method');
      res.vary('Access-Control-Request-Headers');
      res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
      res.setHeader('Access-Control-Allow-Headers', ALLOW_HEADERS);
      res.setHeader('Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SECONDS);
      return void res.status(204).end();
    }
    next();
  };
}
