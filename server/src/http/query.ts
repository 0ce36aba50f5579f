import express, { type Express } from 'express';

const parsed = Symbol('relay.query');

/**
 * Express 5 parses the query string again on each read of `req.query`, and the property has
 * no setter, so express-openapi-validator, which coerces the parsed values in place, defines
 * an own property on each request to keep its object. Here the app's requests parse it on the
 * first read and keep that object: the intake, the validator's compiled schemas and the
 * routes all read one parse, with no property defined per request. The parse is Express's own
 * getter; assigning `req.query` still fails as it does in Express.
 */
export function parseQueryOnce(app: Express): void {
  const getter = Object.getOwnPropertyDescriptor(express.request, 'query')?.get;
  if (!getter) throw new Error('express: req.query is no longer a getter of express.request');
  Object.defineProperty(app.request, 'query', {
    configurable: true,
    enumerable: true,
    get(this: { [parsed]?: unknown }) {
      return (this[parsed] ??= getter.call(this));
    },
  });
}
