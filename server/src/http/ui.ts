import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type Response } from 'express';
import { RouteNotFoundError, ServiceUnavailableError } from '../errors.js';

/**
 * The dashboard: a single-page application at /ui, built into server/ui-dist by
 * `npm run build:ui` (scripts/build-ui.ts) and shipped in the server package. It talks to the
 * server through the public API only, so the page and its assets are public and mounted
 * before the token check: the API calls the page makes carry the token.
 *
 * Served with a strict Content-Security-Policy: the bundle is the only script, the stylesheet
 * the only style, and the page may connect to this origin only. What the page must know
 * before its first call (read-only mode, whether tokens are on) travels in <meta> tags, which
 * the policy allows, rather than in an inline script, which it would refuse.
 */

export interface DashboardOptions {
  /** The dashboard shows no actions (--ui-read-only). */
  readOnly: boolean;
  /** Whether the server has tokens, so the page asks for one before its first call. */
  tokens: boolean;
  /** Where the built assets are; default server/ui-dist. */
  dist?: string;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The placeholder of index.html that the page's settings replace. */
const CONFIG_MARK = '<!-- relay-ui-config -->';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** server/ui-dist, from server/src/http (tsx) or server/dist/http (built) alike. */
export function defaultDist(): string {
  return fileURLToPath(new URL('../../ui-dist/', import.meta.url));
}

interface Asset {
  type: string;
  body: Buffer;
}

/** The built files, read once: a few small files, served from memory. */
function load(dist: string, options: DashboardOptions): { index: string; assets: Map<string, Asset> } | undefined {
  const indexPath = join(dist, 'index.html');
  if (!existsSync(indexPath)) return undefined;
  const meta = [
    `<meta name="relay-ui-read-only" content="${options.readOnly}">`,
    `<meta name="relay-ui-tokens" content="${options.tokens}">`,
  ].join('\n    ');
  const index = readFileSync(indexPath, 'utf8').replace(CONFIG_MARK, meta);
  const assets = new Map<string, Asset>();
  const dir = join(dist, 'assets');
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return { index, assets };
}

function secure(res: Response): Response {
  return res
    .set('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    .set('X-Content-Type-Options', 'nosniff')
    .set('Referrer-Policy', 'no-referrer')
    .set('Cross-Origin-Opener-Policy', 'same-origin');
}

export function dashboard(options: DashboardOptions): Router {
  const built = load(options.dist ?? defaultDist(), options);
  const router = Router({ caseSensitive: true, strict: true });
  const page = (_req: unknown, res: Response) => {
    if (!built) throw new ServiceUnavailableError('the dashboard is not built: run `npm run build` (or start the server with --no-ui)');
    // The page names the assets by their content hash: it must be fetched again, they need not.
    secure(res).set('Cache-Control', 'no-cache').type('text/html; charset=utf-8').send(built.index);
  };
  router.get('/ui', page);
  router.get('/ui/', page);
  router.get('/ui/assets/:name', (req, res) => {
    const asset = built?.assets.get(req.params.name);
    if (!asset) throw new RouteNotFoundError(`no such file of the dashboard: ${req.path}`);
    secure(res).set('Cache-Control', 'public, max-age=31536000, immutable').type(asset.type).send(asset.body);
  });
  return router;
}
