import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { ROLES, type Contract, type Role } from './contract.js';

/**
 * Tokens with roles. When the server has tokens, every request but those of open operations
 * (`security: []` in openapi.yaml: /health) must carry `Authorization: Bearer <token>` of a role
 * the operation's `security` names (admin: any). What each operation takes is read from the
 * contract, so an operation added to openapi.yaml is guarded without code here.
 *
 * Mounted before the body is read: a caller without a valid token costs no body parsing and
 * learns nothing from a 400 or 413. A path the API does not have is a 401 too, not a 404, so
 * that the API's shape cannot be probed without a token.
 */

export interface AuthToken {
  role: Role;
  token: string;
}

// RFC 6750's b64token: what a Bearer credential may hold. Anything else could not be sent.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Parses `role:token` entries (a comma-separated list, or the lines of a file with `#` comments
 * and blank lines). Errors name the entry by its position, never by the token.
 */
export function parseTokens(text: string, form: 'list' | 'lines', source: string): AuthToken[] {
  const entries = form === 'list'
    ? text.split(',').map((e, i) => ({ at: `entry ${i + 1}`, entry: e.trim() }))
    : text.split(/\r?\n/).map((e, i) => ({ at: `line ${i + 1}`, entry: e.trim() })).filter(({ entry }) => !entry.startsWith('#'));
  const tokens: AuthToken[] = [];
  for (const { at, entry } of entries) {
    if (entry === '') continue;
    const colon = entry.indexOf(':');
    const role = (colon < 0 ? entry : entry.slice(0, colon)).trim();
    const token = colon < 0 ? '' : entry.slice(colon + 1).trim();
    if (colon < 0) throw new Error(`${source}: ${at} is not role:token`);
    if (!(ROLES as readonly string[]).includes(role)) throw new Error(`${source}: ${at} has an unknown role ${JSON.stringify(role.slice(0, 40))} (one of ${ROLES.join(', ')})`);
    if (token === '') throw new Error(`${source}: ${at} has an empty token`);
    if (!B64TOKEN.test(token)) throw new Error(`${source}: ${at} has a token with characters a Bearer token cannot hold (letters, digits and - . _ ~ + / then = only)`);
    tokens.push({ role: role as Role, token });
  }
  return tokens;
}

/** Throws when two entries share a token: which role it has would be ambiguous. */
export function checkDistinct(tokens: readonly AuthToken[]): void {
  const seen = new Set<string>();
  for (const [i, { token }] of tokens.entries()) {
    if (seen.has(token)) throw new Error(`auth tokens: token ${i + 1} repeats an earlier one (each token has one role)`);
    seen.add(token);
  }
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * The role of a presented token, or undefined. Both sides are hashed to the same length and
 * every token is compared, so the time taken says nothing about how much of a token matched,
 * nor which one.
 */
function roleOf(known: ReadonlyArray<{ role: Role; hash: Buffer }>, presented: string): Role | undefined {
  const hash = digest(presented);
  let role: Role | undefined;
  for (const entry of known) {
    if (timingSafeEqual(entry.hash, hash)) role = entry.role;
  }
  return role;
}

/**
 * Names a token where it is stored (an Idempotency-Key's scope) without storing the token: a
 * digest, salted so that it matches no plain hash of the token, the same on every server.
 */
function principalOf(token: string): string {
  return createHash('sha256').update('relay-ts idempotency scope\u0000', 'utf8').update(token, 'utf8').digest('base64url').slice(0, 22);
}

/** The token of `Authorization: Bearer <token>`; undefined without one, null when the header is not of that form. */
function bearer(header: string | undefined): string | undefined | null {
  if (header === undefined) return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  return m ? m[1]! : null;
}

/** Whether the request came with a body, which a refusal does not read. */
function hasBody(headers: Record<string, unknown>): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

export function auth(options: { tokens: readonly AuthToken[]; contract: Contract }): RequestHandler {
  const { contract } = options;
  const known = options.tokens.map(({ role, token }) => ({ role, hash: digest(token) }));
  return (req, res, next) => {
    const path = req.url.startsWith('/') ? req.path : undefined;
    const facts = path === undefined ? undefined : contract.operation(req.method, path);
    if (facts?.access === 'open' || (!facts && path !== undefined && contract.openPath(path))) return next();
    // The body of a refused request is not read: the connection closes after the answer instead.
    const refuse = (err: Error) => {
      if (hasBody(req.headers)) res.set('Connection', 'close');
      return next(err);
    };
    const token = bearer(req.headers.authorization);
    if (token === undefined) return refuse(new UnauthorizedError('this request needs a token: Authorization: Bearer <token>', false));
    if (token === null) return refuse(new UnauthorizedError('the Authorization header must be Bearer <token>', false));
    const role = roleOf(known, token);
    if (role === undefined) return refuse(new UnauthorizedError('the token is not valid', true));
    // For GET /v1/whoami, which answers it.
    res.locals.role = role;
    // Idempotency-Keys are the caller's own: one token's keys never meet another's.
    res.locals.principal = principalOf(token);
    // No such operation: answered as without tokens (404 or 405), now that the caller is known.
    if (!facts || facts.access === 'any-role' || role === 'admin' || facts.access.has(role)) return next();
    const allowed = [...facts.access].filter((r) => r !== 'admin');
    return refuse(new ForbiddenError(`this operation takes a token of role ${[...allowed, 'admin'].join(' or ')}, not ${role}`));
  };
}
