import type { IncomingHttpHeaders } from 'node:http';

/*
 * The W3C trace context (https://www.w3.org/TR/trace-context/) a producer sends with an
 * enqueue. relay does not trace itself: it keeps the producer's context with each job and
 * hands it to the worker, whose span then joins the producer's trace.
 */

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZEROS = /^0+$/;

/**
 * The request's `traceparent` in version-00 form, or undefined when it has none or an invalid
 * one: the recommendation asks a receiver to ignore such a header, not to refuse the request.
 * A later version is read for the fields version 00 defines; anything it adds is dropped.
 */
export function traceparentOf(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.traceparent;
  if (typeof value !== 'string' || value.length > 512) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (ZEROS.test(traceId!) || ZEROS.test(parentId!)) return undefined;
  return `00-${traceId}-${parentId}-${flags}`;
}
