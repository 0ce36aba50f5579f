import type { QueueThroughput } from '@relay-ts/client';
import { Actions, LoadError, Loading, Sparkline } from '../components.js';
import { useDashboard } from '../context.js';
import { age } from '../format.js';
import { pauseQueue, resumeQueue } from '../job-actions.js';
import { usePoll } from '../poll.js';
import { byConcern, problemsOf, STALE_SECONDS } from '../queue-health.js';
import { href } from '../route.js';
import { overviewQueues } from '../throughput.js';

/** A queue's completed or failed jobs of each minute, as bars, with their total. */
function ThroughputCell({ throughput, kind, minutes }: { throughput: QueueThroughput | undefined; kind: 'completed' | 'failed'; minutes: number }) {
  const values = throughput?.per_minute.map((m) => m[kind]) ?? Array.from({ length: minutes }, () => 0);
  const label = `${kind} per minute, oldest first: ${values.join(', ')}`;
  return <td class="num"><Sparkline values={values} kind={kind} total={throughput?.[kind] ?? 0} label={label} /></td>;
}

export function QueuesPage() {
  const d = useDashboard();
  const { data, error, refresh } = usePoll('queues', async (client) => {
    const [queues, throughput] = await Promise.all([client.queues(), d.throughput.read(client)]);
    return { queues: overviewQueues(queues, throughput), throughput };
  });
  const queues = data ? [...data.queues].sort(byConcern) : undefined;
  const minutes = d.throughput.minutes;
  return (
    <section data-page="queues">
      <h1>Queues</h1>
      <LoadError error={error} />
      {!queues && !error && <Loading />}
      {queues && queues.length === 0 && <p class="note">No queue holds a job, nor had one in the last {minutes} minutes.</p>}
      {queues && queues.length > 0 && (
        <table class="grid">
          <thead>
            <tr>
              <th>Queue</th>
              <th class="num">Waiting</th>
              <th class="num">Scheduled</th>
              <th class="num">In flight</th>
              <th class="num">Failed</th>
              <th class="num">Oldest waiting</th>
              <th class="num" title={d.throughput.label}>Completed · {minutes} min</th>
              <th class="num" title={d.throughput.label}>Failed · {minutes} min</th>
              <th>State</th>
              {d.access.operate && <th />}
            </tr>
          </thead>
          <tbody>
            {queues.map((q) => {
              const problems = problemsOf(q);
              const throughput = data?.throughput.get(q.queue);
              return (
                <tr key={q.queue} class={problems.length ? 'problem' : undefined} data-queue={q.queue}>
                  <td><a href={href({ page: 'queue', queue: q.queue, status: 'waiting' })}>{q.queue}</a></td>
                  <td class="num" data-count="waiting">{q.waiting}</td>
                  <td class="num" data-count="scheduled">{q.scheduled}</td>
                  <td class="num" data-count="in_flight">{q.in_flight}</td>
                  <td class="num" data-count="failed">
                    {q.failed > 0 ? <a href={href({ page: 'queue', queue: q.queue, status: 'failed' })}>{q.failed}</a> : 0}
                  </td>
                  <td class="num">{age(q.oldest_waiting_seconds)}</td>
                  <ThroughputCell throughput={throughput} kind="completed" minutes={minutes} />
                  <ThroughputCell throughput={throughput} kind="failed" minutes={minutes} />
                  <td data-state>
                    {q.paused && <span class="badge badge-paused">paused</span>}
                    {problems.filter((p) => p !== 'paused').map((p) => <span key={p} class="badge badge-problem">{p}</span>)}
                    {problems.length === 0 && <span class="badge badge-ok">ok</span>}
                  </td>
                  {d.access.operate && (
                    <td>
                      <Actions>
                        {q.paused ? (
                          <button type="button" data-action="resume" onClick={() => d.act(resumeQueue(d, q.queue, refresh))}>Resume</button>
                        ) : (
                          <button type="button" data-action="pause" onClick={() => d.act(pauseQueue(d, q.queue, refresh))}>Pause</button>
                        )}
                      </Actions>
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <p class="hint">
        Completed and failed: {d.throughput.label}. Failed counts jobs whose retries ran out. Problem queues (failed jobs, paused, a job waiting over {STALE_SECONDS}s) come first.
      </p>
    </section>
  );
}
