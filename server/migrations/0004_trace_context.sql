-- The W3C trace context (traceparent, https://www.w3.org/TR/trace-context/) of the request
-- that enqueued a job, so that the span of the worker that runs it joins the producer's trace.
-- NULL: the producer sent none (or an invalid one). Kept with a failure, so that a replay
-- continues the same trace.
ALTER TABLE relay_jobs ADD COLUMN traceparent text;
ALTER TABLE relay_failed_jobs ADD COLUMN traceparent text;
