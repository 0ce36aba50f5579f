/**
 * The handler's span: a child of the trace context the job was enqueued with (its
 * `traceparent`), so that a trace runs from the producer, through the queue, into `process`.
 * Only @opentelemetry/api is used: without an SDK registered by the application every call
 * here is a no-op. The job's traceparent is read here, not through a registered propagator,
 * so that the link holds whichever propagators the application set up (W3C is simple).
 */
import { context, SpanKind, SpanStatusCode, trace, type Context, type SpanContext } from '@opentelemetry/api';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The span context a version-00 traceparent names, or undefined for anything else. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  const m = value === undefined ? null : TRACEPARENT.exec(value);
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16) & 1, isRemote: true };
}

function parentOf(traceparent: string | undefined): Context {
  const remote = parseTraceparent(traceparent);
  return remote ? trace.setSpanContext(context.active(), remote) : context.active();
}

export interface TracedJob {
  id: string;
  queue: string;
  attempt: number;
  run_id: string;
  traceparent?: string | undefined;
}

/**
 * Runs fn in the span "process <queue>" (a consumer span, as OpenTelemetry's messaging
 * conventions name it), active while it runs: spans the handler starts, and the traceparent
 * its client calls carry where a propagator is registered, belong to it. A rejection is recorded
 * on the span and passed on.
 */
export function inHandlerSpan<T>(job: TracedJob, fn: () => Promise<T>): Promise<T> {
  const tracer = trace.getTracer('@relay-ts/worker');
  const attributes = {
    'messaging.system': 'relay',
    'messaging.operation.type': 'process',
    'messaging.destination.name': job.queue,
    'messaging.message.id': job.id,
    'relay.job.attempt': job.attempt,
    'relay.job.run_id': job.run_id,
  };
  return tracer.startActiveSpan(`process ${job.queue}`, { kind: SpanKind.CONSUMER, attributes }, parentOf(job.traceparent), async (span) => {
    try {
      return await fn();
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}
