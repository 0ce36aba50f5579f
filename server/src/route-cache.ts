import { createRequire } from 'node:module';

/**
 * express-openapi-validator 5.6 finds the operation of a request by compiling the
 * path-to-regexp matcher of every route it scans, on every request (lookupRoute in
 * openapi.metadata.js): under load a large share of the server's CPU. Upstream has the fix
 * open (cdimascio/express-openapi-validator#1217, "perf: cache route matchers"); until it
 * ships, the server memoizes `pathToRegexp` in the copy of path-to-regexp the validator loads.
 *
 * Safe because a matcher is a pure function of its arguments (the route and two booleans from
 * the Express settings) and its RegExp has no `g` or `y` flag, so sharing one keeps no state
 * between requests. Only string routes with plain options are cached; anything else, or a
 * path-to-regexp without `pathToRegexp`, is left as it is.
 */
export function cacheValidatorRouteMatchers(): void {
  let mod: { pathToRegexp?: unknown };
  try {
    const validator = createRequire(import.meta.url).resolve('express-openapi-validator');
    mod = createRequire(validator)('path-to-regexp') as typeof mod;
  } catch {
    return;
  }
  const original = mod.pathToRegexp;
  if (typeof original !== 'function' || (original as { cached?: boolean }).cached) return;
  const cache = new Map<string, unknown>();
  // Called for every route scanned on every request: no allocation on the way to a hit.
  const plainOptions = (options: Record<string, unknown> | undefined) => {
    for (const k in options) if (k !== 'sensitive' && k !== 'strict') return false;
    return true;
  };
  const cached = function (this: unknown, path: unknown, options?: Record<string, unknown>, ...rest: unknown[]): unknown {
    const plain = typeof path === 'string' && rest.length === 0 && plainOptions(options);
    if (!plain) return Reflect.apply(original, this, [path, options, ...rest]);
    const key = `${options?.sensitive ? 1 : 0}${options?.strict ? 1 : 0}${path}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = Reflect.apply(original, this, [path, options]);
      // Routes come from openapi.yaml, a fixed few; the bound only guards against a caller
      // that compiles paths taken from requests.
      if (cache.size < 1_000) cache.set(key, hit);
    }
    return hit;
  };
  cached.cached = true;
  mod.pathToRegexp = cached;
}
