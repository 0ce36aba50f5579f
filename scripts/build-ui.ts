/**
 * Builds the dashboard (server/ui/src) into server/ui-dist, which the server serves at /ui and
 * its package ships: a user runs no second build. One hashed JavaScript bundle (Preact and
 * @relay-ts/client included) and one stylesheet, named in index.html. Fails when the
 * gzipped JavaScript is over the budget.
 *
 *   tsx scripts/build-ui.ts        (npm run build:ui; npm run build and prepare run it)
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import yaml from 'js-yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = join(ROOT, 'server/ui');
export const DIST = join(ROOT, 'server/ui-dist');
/** The most gzipped JavaScript the dashboard may ship (issue 14). */
export const JS_BUDGET_GZIP_BYTES = 150 * 1024;

type Node = Record<string, unknown>;

/** A schema of openapi.yaml with its local $refs replaced by what they point at. */
function inlineSchema(doc: Node, name: string): unknown {
  const resolve = (value: unknown, depth: number): unknown => {
    if (depth > 32) throw new Error(`openapi.yaml: ${name} nests too deep`);
    if (Array.isArray(value)) return value.map((v) => resolve(v, depth + 1));
    if (typeof value !== 'object' || value === null) return value;
    const node = value as Node;
    if (typeof node.$ref === 'string') {
      const target = node.$ref.replace(/^#\//, '').split('/').reduce<unknown>((at, key) => (at as Node | undefined)?.[key], doc);
      if (target === undefined) throw new Error(`openapi.yaml: ${node.$ref} not found`);
      return resolve(target, depth + 1);
    }
    // Prose and examples do not check anything: left out of the bundle.
    return Object.fromEntries(Object.entries(node).filter(([k]) => k !== 'description' && k !== 'example').map(([k, v]) => [k, resolve(v, depth + 1)]));
  };
  const schemas = ((doc.components as Node).schemas as Node) ?? {};
  if (!(name in schemas)) throw new Error(`openapi.yaml has no schema ${name}`);
  return resolve(schemas[name], 0);
}

/** `import schema from 'relay:schema/NewJob'`: the contract's schema, at build time. */
function contractSchemas(): Plugin {
  return {
    name: 'relay-contract',
    setup(b) {
      b.onResolve({ filter: /^relay:schema\// }, (args) => ({ path: args.path.slice('relay:schema/'.length), namespace: 'relay-contract' }));
      b.onLoad({ filter: /.*/, namespace: 'relay-contract' }, (args) => {
        const doc = yaml.load(readFileSync(join(ROOT, 'openapi.yaml'), 'utf8')) as Node;
        return { contents: JSON.stringify(inlineSchema(doc, args.path)), loader: 'json', watchFiles: [join(ROOT, 'openapi.yaml')] };
      });
    },
  };
}

export interface BuiltUi {
  js: { name: string; bytes: number; gzipBytes: number };
  css: { name: string; bytes: number; gzipBytes: number };
}

export async function buildUi(): Promise<BuiltUi> {
  rmSync(DIST, { recursive: true, force: true });
  const assets = join(DIST, 'assets');
  mkdirSync(assets, { recursive: true });
  const result = await build({
    entryPoints: { app: join(SOURCE, 'src/main.tsx') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: assets,
    entryNames: '[name]-[hash]',
    metafile: true,
    legalComments: 'eof',
    logLevel: 'warning',
    plugins: [contractSchemas()],
  });
  const outputs = Object.keys(result.metafile.outputs);
  const js = outputs.find((p) => p.endsWith('.js'));
  const css = outputs.find((p) => p.endsWith('.css'));
  if (!js || !css) throw new Error(`the build made no bundle and stylesheet: ${outputs.join(', ')}`);
  const sized = (path: string) => {
    const bytes = readFileSync(join(ROOT, path));
    return { name: basename(path), bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
  };
  const built = { js: sized(js), css: sized(css) };
  const index = readFileSync(join(SOURCE, 'index.html'), 'utf8').replace('%APP_JS%', built.js.name).replace('%APP_CSS%', built.css.name);
  writeFileSync(join(DIST, 'index.html'), index);
  if (built.js.gzipBytes > JS_BUDGET_GZIP_BYTES) {
    throw new Error(`the dashboard's JavaScript is ${built.js.gzipBytes} bytes gzipped, over the budget of ${JS_BUDGET_GZIP_BYTES}`);
  }
  return built;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { js, css } = await buildUi();
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`dashboard: ${js.name} ${kb(js.bytes)} (${kb(js.gzipBytes)} gzipped), ${css.name} ${kb(css.bytes)} (${kb(css.gzipBytes)} gzipped) in server/ui-dist`);
}
