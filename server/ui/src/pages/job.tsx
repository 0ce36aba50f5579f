import type { JobDetails, RelayClient } from '@relay-ts/client';
import { Actions, JsonBlock, LoadError, Loading, StatusBadge } from '../components.js';
import { useDashboard } from '../context.js';
import { when } from '../format.js';
import { cancelJob, purgeJob, retryJob } from '../job-actions.js';
import { usePoll } from '../poll.js';
import { href, navigate } from '../route.js';

/** How far back the failures of one id are looked for: the newest of the queue's failed jobs. */
const HISTORY_PAGES = 3;
const HISTORY_PAGE_SIZE = 1000;
/** The history costs pages of failed jobs: reloaded less often than the job itself. */
const HISTORY_REFRESH_MS = 10_000;

/** The kept failures of one id, newest first, from the queue's failed jobs. */
async function failuresOf(client: RelayClient, queue: string, id: string): Promise<{ failures: JobDetails[]; complete: boolean }> {
  const failures: JobDetails[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < HISTORY_PAGES; page++) {
    const { jobs, next_cursor } = await client.listJobs(queue, 'failed', { limit: HISTORY_PAGE_SIZE, cursor });
    failures.push(...jobs.filter((j) => j.id === id));
    if (next_cursor === undefined) return { failures, complete: true };
    cursor = next_cursor;
  }
  return { failures, complete: false };
}

export function JobPage({ queue, id }: { queue: string; id: string }) {
  const d = useDashboard();
  const job = usePoll(`job\u0000${queue}\u0000${id}`, async (client) => ({ job: await client.getJob(queue, id) }));
  const history = usePoll(`history\u0000${queue}\u0000${id}`, (client) => failuresOf(client, queue, id), HISTORY_REFRESH_MS);
  const refresh = () => {
    job.refresh();
    history.refresh();
  };
  const details = job.data?.job;
  const live = details !== undefined && details.status !== 'failed';

  return (
    <section data-page="job">
      <p class="crumbs">
        <a href="#/queues">Queues</a> / <a href={href({ page: 'queue', queue, status: details?.status ?? 'waiting' })}>{queue}</a> /
      </p>
      <h1>
        {id} {details && <StatusBadge status={details.status} />}
      </h1>
      <LoadError error={job.error} />
      {!job.data && !job.error && <Loading />}
      {job.data && !details && <p class="note" data-gone>No such job: it completed, was cancelled or purged, or never existed.</p>}
      {details && (
        <>
          {d.access.operate && (
            <Actions>
              {live && (
                <button type="button" class="danger" data-action="cancel" onClick={() => d.act(cancelJob(d, details, refresh))}>Cancel job</button>
              )}
              {details.status === 'failed' && (
                <>
                  <button type="button" data-action="retry" onClick={() => d.act(retryJob(d, details, refresh))}>Retry</button>
                  <button
                    type="button"
                    class="danger"
                    data-action="purge"
                    onClick={() => d.act(purgeJob(d, details, () => navigate({ page: 'queue', queue, status: 'failed' })))}
                  >
                    Purge
                  </button>
                </>
              )}
            </Actions>
          )}
          <dl class="facts" data-facts>
            <dt>Status</dt><dd data-fact="status">{details.status.replace('_', ' ')}</dd>
            <dt>Attempts</dt><dd data-fact="attempts">{details.attempts} (deliveries so far)</dd>
            <dt>Retries</dt><dd>{details.retries} of {details.max_retries < 0 ? 'unlimited' : details.max_retries}</dd>
            <dt>Timeout</dt><dd>{details.timeout}s per lease</dd>
            <dt>Enqueued</dt><dd>{when(details.enqueued_at)}</dd>
            <dt>Runs at</dt><dd>{when(details.run_at)}</dd>
            {details.run_id !== undefined && (<><dt>Run id</dt><dd>{details.run_id}</dd></>)}
            {details.lease_expires_at !== undefined && (<><dt>Lease ends</dt><dd data-fact="lease">{when(details.lease_expires_at)}</dd></>)}
            {details.failed_at !== undefined && (<><dt>Failed</dt><dd>{when(details.failed_at)}</dd></>)}
            {details.reason !== undefined && (<><dt>Reason</dt><dd class="reason" data-fact="reason">{details.reason}</dd></>)}
          </dl>
          <div class="json-pair">
            <JsonBlock label="payload" value={details.payload} />
            <JsonBlock label="state" value={details.state} />
          </div>
        </>
      )}
      <h2>History</h2>
      <p class="hint">
        What the server keeps: the live job (above) and its failures still in the failed jobs (until purged or past the retention).
        {history.data && !history.data.complete && ` Only the newest ${HISTORY_PAGES * HISTORY_PAGE_SIZE} failures of the queue were searched.`}
      </p>
      <LoadError error={history.error} />
      {history.data && (
        <ol class="history" data-history>
          {details && details.status !== 'failed' && (
            <li>
              <strong>{details.status.replace('_', ' ')}</strong> now: enqueued {when(details.enqueued_at)}, {details.attempts} deliveries,{' '}
              {details.retries} retries used
            </li>
          )}
          {history.data.failures.map((f) => (
            <li key={f.failed_at} data-failure>
              <strong>failed</strong> {when(f.failed_at)} after {f.attempts} deliveries: <span class="reason">{f.reason}</span>
            </li>
          ))}
          {history.data.failures.length === 0 && (!details || details.status !== 'failed') && <li>No failures kept.</li>}
        </ol>
      )}
    </section>
  );
}
