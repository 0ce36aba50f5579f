import type { JobDetails, QueueSummary } from '@relay-ts/client';
import { Actions, LoadError, Loading } from '../components.js';
import { useDashboard } from '../context.js';
import { relative } from '../format.js';
import { purgeAllFailed, purgeJob, retryAllFailed, retryJob } from '../job-actions.js';
import { usePoll } from '../poll.js';
import { href } from '../route.js';

/** Per queue on this page; the queue's own page lists the rest. */
const PER_QUEUE = 10;
/** Queues shown, the most failures first. */
const QUEUES = 20;

/** The failed jobs of every queue that has some. */
export function FailedPage() {
  const d = useDashboard();
  const { data, error, refresh } = usePoll('failed', async (client) => {
    const queues = (await client.queues()).filter((q) => q.failed > 0).sort((a, b) => b.failed - a.failed).slice(0, QUEUES);
    const pages = await Promise.all(queues.map((q) => client.listJobs(q.queue, 'failed', { limit: PER_QUEUE })));
    return queues.map((summary, i) => ({ summary, jobs: pages[i]!.jobs }));
  });
  return (
    <section data-page="failed">
      <h1>Failed jobs</h1>
      <LoadError error={error} />
      {!data && !error && <Loading />}
      {data && data.length === 0 && <p class="note" data-empty>No failed jobs. </p>}
      {data?.map(({ summary, jobs }) => (
        <QueueFailures key={summary.queue} summary={summary} jobs={jobs} refresh={refresh} operate={d.access.operate} />
      ))}
    </section>
  );
}

function QueueFailures({ summary, jobs, refresh, operate }: { summary: QueueSummary; jobs: JobDetails[]; refresh: () => void; operate: boolean }) {
  const d = useDashboard();
  const { queue, failed } = summary;
  return (
    <article class="card" data-failed-queue={queue}>
      <header class="card-head">
        <h2>
          <a href={href({ page: 'queue', queue, status: 'failed' })}>{queue}</a> <span class="count">{failed} failed</span>
        </h2>
        {operate && (
          <Actions>
            <button type="button" data-action="retry-all" onClick={() => d.act(retryAllFailed(d, queue, failed, refresh))}>Retry all</button>
            <button type="button" class="danger" data-action="purge-all" onClick={() => d.act(purgeAllFailed(d, queue, failed, refresh))}>Purge all</button>
          </Actions>
        )}
      </header>
      <table class="grid">
        <thead>
          <tr>
            <th>Id</th>
            <th>Failed</th>
            <th class="num">Attempts</th>
            <th>Reason</th>
            {operate && <th />}
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={`${job.id}\u0000${job.failed_at ?? ''}`} data-job={job.id}>
              <td><a href={href({ page: 'job', queue, id: job.id })}>{job.id}</a></td>
              <td>{relative(job.failed_at)}</td>
              <td class="num">{job.attempts}</td>
              <td class="reason">{job.reason}</td>
              {operate && (
                <td>
                  <Actions>
                    <button type="button" data-action="retry" onClick={() => d.act(retryJob(d, job, refresh))}>Retry</button>
                    <button type="button" class="danger" data-action="purge" onClick={() => d.act(purgeJob(d, job, refresh))}>Purge</button>
                  </Actions>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {failed > jobs.length && <p class="hint">The newest {jobs.length} of {failed}; <a href={href({ page: 'queue', queue, status: 'failed' })}>all of them</a>.</p>}
    </article>
  );
}
