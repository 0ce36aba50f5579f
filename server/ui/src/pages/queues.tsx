import { Actions, LoadError, Loading } from '../components.js';
import { useDashboard } from '../context.js';
import { age, signed } from '../format.js';
import { pauseQueue, resumeQueue } from '../job-actions.js';
import { usePoll } from '../poll.js';
import { byConcern, problemsOf, STALE_SECONDS } from '../queue-health.js';
import { href } from '../route.js';

export function QueuesPage() {
  const d = useDashboard();
  const { data, error, refresh } = usePoll('queues', async (client) => {
    const queues = await client.queues();
    d.throughput.observe(queues, Date.now());
    return queues;
  });
  const queues = data ? [...data].sort(byConcern) : undefined;
  return (
    <section data-page="queues">
      <h1>Queues</h1>
      <LoadError error={error} />
      {!queues && !error && <Loading />}
      {queues && queues.length === 0 && <p class="note">No queue holds a job yet.</p>}
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
              <th class="num" title={d.throughput.label}>Waiting Δ/min</th>
              <th class="num" title={d.throughput.label}>In flight Δ/min</th>
              <th>State</th>
              {d.access.operate && <th />}
            </tr>
          </thead>
          <tbody>
            {queues.map((q) => {
              const problems = problemsOf(q);
              const rates = d.throughput.rates(q.queue);
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
                  <td class="num">{rates ? signed(rates.waitingPerMinute) : '…'}</td>
                  <td class="num">{rates ? signed(rates.inFlightPerMinute) : '…'}</td>
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
        Δ/min: {d.throughput.label} (over up to the last 5 minutes; “…” until 10 s are seen). Problem queues (failed jobs, paused, a job waiting over {STALE_SECONDS}s) come first.
      </p>
    </section>
  );
}
