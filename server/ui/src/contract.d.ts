/**
 * A schema of openapi.yaml, inlined into the bundle at build time (scripts/build-ui.ts), so
 * that the enqueue form checks a job against the contract itself, not a copy of its rules.
 */
declare module 'relay:schema/NewJob' {
  import type { JsonSchema } from './schema-check.js';
  const schema: JsonSchema;
  export default schema;
}

/** The stylesheet, which esbuild emits beside the bundle. */
declare module '*.css';
