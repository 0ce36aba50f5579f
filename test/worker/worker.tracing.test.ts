import { expect } from 'chai';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { RelayClient } from '@relay-ts/client';
import { call, eventually, next, relay, uniqueQueue } from '../helpers/relay.js';
import { Worker } from '../../worker/src/index.js';

/*
 * A trace from producer to worker (issue 13): the client sends the active context as
 * traceparent, the server keeps it with the job, and the worker starts the handler's span as
 * its child. With an SDK registered in memory, as an application would register its own.
 */

/** Runs a worker on queue until it has handled count jobs, calling inHandler in each, then stops it. */
async function handle(queue: string, count: number, inHandler: () => void = () => undefined): Promise<void> {
  let handled = 0;
  const worker = new Worker({
    logger: {},
    baseUrl: relay().url,
    queue,
    waitSeconds: 1,
    process: async () => {
      handled++;
      inHandler();
    },
  });
  await worker.start();
  try {
    await eventually(async () => handled >= count);
  } finally {
    await worker.stop();
  }
}

describe('tracing without an SDK', () => {
  it('sends no traceparent and runs handlers as usual', async () => {
    const queue = uniqueQueue('notrace');
    const client = new RelayClient({ baseUrl: relay().url });
    await trace.getTracer('test').startActiveSpan('produce', async (span) => {
      await client.enqueue({ id: 'x', queue, timeout: 30 });
      span.end();
    });
    const [job] = (await next(queue, 1)).body;
    expect(job).to.not.have.property('traceparent');
  });
});

describe('tracing from producer to worker', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = () => trace.getTracer('producer');

  before(() => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  after(async () => {
    trace.disable();
    context.disable();
    propagation.disable();
    await provider.shutdown();
  });

  const handlerSpan = (queue: string): ReadableSpan | undefined => exporter.getFinishedSpans().find((s) => s.name === `process ${queue}`);

  it("the handler's span is a child of the span that enqueued the job", async () => {
    const queue = uniqueQueue('trace');
    const client = new RelayClient({ baseUrl: relay().url });
    let producer!: { traceId: string; spanId: string };
    await tracer().startActiveSpan('produce', async (span) => {
      producer = span.spanContext();
      await client.enqueue({ id: 'x', queue, timeout: 30 });
      span.end();
    });
    let inner: { traceId: string; spanId: string } | undefined;
    await handle(queue, 1, () => {
      // What the handler traces belongs to the handler's span.
      const span = tracer().startSpan('inner');
      inner = span.spanContext();
      span.end();
    });
    const span = await eventually(async () => handlerSpan(queue));
    expect(span.spanContext().traceId).to.equal(producer.traceId);
    expect(span.parentSpanContext?.spanId).to.equal(producer.spanId);
    expect(span.parentSpanContext?.isRemote).to.equal(true);
    expect(span.kind).to.equal(4); // SpanKind.CONSUMER
    expect(span.attributes).to.include({ 'messaging.system': 'relay', 'messaging.destination.name': queue, 'messaging.message.id': 'x', 'relay.job.attempt': 1 });
    const innerSpan = exporter.getFinishedSpans().find((s) => s.name === 'inner' && s.spanContext().spanId === inner?.spanId)!;
    expect(innerSpan.parentSpanContext?.spanId).to.equal(span.spanContext().spanId);
  });

  it('any HTTP producer that sends traceparent gets the link; a failing handler marks its span', async () => {
    const queue = uniqueQueue('trace');
    const traceId = 'fedcba98765432100123456789abcdef';
    const parent = '1234567890abcdef';
    const res = await call('POST', '/enqueue', { json: { id: 'raw', queue, timeout: 30 }, headers: { traceparent: `00-${traceId}-${parent}-01` } });
    expect(res.status).to.equal(202);
    await handle(queue, 1, () => {
      throw new Error('handler broke');
    });
    const span = await eventually(async () => handlerSpan(queue));
    expect(span.spanContext().traceId).to.equal(traceId);
    expect(span.parentSpanContext?.spanId).to.equal(parent);
    expect(span.status.code).to.equal(2); // SpanStatusCode.ERROR
    expect(span.events.map((e) => e.name)).to.include('exception');
  });
});
