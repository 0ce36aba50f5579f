import { useState } from 'preact/hooks';
import type { JobDetails, JobStatus } from '@relay-ts/client';
import { Actions, LoadError, Loading, StatusBadge } from '../components.js';
import { useDashboard, type Dashboard } from '../context.js';
import { age, relative } from '../format.js';
import { cancelJob, pauseQueue, purgeAllFailed, purgeJob, resumeQueue, retryAllFailed, retryJob } from '../job-actions.js';
import { usePoll } from '../poll.js';
import { href, navigate, STATUSES } from '../route.js';

const PAGE_SIZE = 25;

/** One queue's jobs in one status, a keyset page at a time, with search by id. */
export function QueuePage({ queue, status }: { queue: string; status: JobStatus }) {
  const d = useDashboard();
  // The cursors of the pages before this one: "previous" pops, "next" pushes.
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const [pageOf, setPageOf] = useState(status);
  if (pageOf !== status) {
    setPageOf(status);
    setCursors([undefined]);
  }
  const cursor = cursors[cursors.length - 1];
  const { data, error, refresh } = usePoll(`queue\u0000${queue}\u0000${status}\u0000${cursor ?? ''}`, async (client) => {
    const [summary, page] = await Promise.all([client.queue(queue), client.listJobs(queue, status, { limit: PAGE_SIZE, cursor })]);
    return { summary, page };
  });
  const summary = data?.summary;

  return (
    <section data-page="queue">
      <p class="crumbs"><a href="#/queues">Queues</a> /</p>
      <h1>
        {queue} {summary?.paused && <span class="badge badge-paused">paused</span>}
      </h1>
      <div class="toolbar">
        <SearchById queue={queue} />
        {d.access.operate && summary && (
          <Actions>
            {summary.paused ? (
              <button type="button" data-action="resume" onClick={() => d.act(resumeQueue(d, queue, refresh))}>Resume queue</button>
            ) : (
              <button type="button" data-action="pause" onClick={() => d.act(pauseQueue(d, queue, refresh))}>Pause queue</button>
            )}
            {status === 'failed' && summary.failed > 0 && (
              <>
                <button type="button" data-action="retry-all" onClick={() => d.act(retryAllFailed(d, queue, summary.failed, refresh))}>Retry all failed</button>
                <button type="button" class="danger" data-action="purge-all" onClick={() => d.act(purgeAllFailed(d, queue, summary.failed, refresh))}>Purge all failed</button>
              </>
            )}
          </Actions>
        )}
        {d.access.enqueue && <a class="button" href={href({ page: 'enqueue', queue })}>Enqueue a job</a>}
      </div>
      <nav class="tabs" aria-label="status">
        {STATUSES.map((s) => (
          <a key={s} href={href({ page: 'queue', queue, status: s })} class={s === status ? 'active' : undefined} data-tab={s}>
            {s.replace('_', ' ')} {summary && <span class="count">{summary[s]}</span>}
          </a>
        ))}
      </nav>
      <LoadError error={error} />
      {!data && !error && <Loading />}
      {data && <JobTable d={d} jobs={data.page.jobs} status={status} refresh={refresh} />}
      <div class="pager">
        <button type="button" disabled={cursors.length < 2} data-page-prev onClick={() => setCursors((c) => c.slice(0, -1))}>← Previous</button>
        <span>page {cursors.length}</span>
        <button
          type="button"
          disabled={!data?.page.next_cursor}
          data-page-next
          onClick={() => data?.page.next_cursor && setCursors((c) => [...c, data.page.next_cursor])}
        >
          Next →
        </button>
      </div>
      {summary && <p class="hint">Oldest waiting: {age(summary.oldest_waiting_seconds)}. {PAGE_SIZE} jobs a page, in delivery order (failed: newest first).</p>}
    </section>
  );
}

function SearchById({ queue }: { queue: string }) {
  const { client } = useDashboard();
  const [id, setId] = useState('');
  const [missing, setMissing] = useState<string | undefined>();
  return (
    <form
      class="search"
      data-form="search"
      onSubmit={async (e) => {
        e.preventDefault();
        const wanted = id.trim();
        if (!wanted) return;
        setMissing(undefined);
        try {
          if (await client.jobExists(queue, wanted)) navigate({ page: 'job', queue, id: wanted });
          else setMissing(`No job “${wanted}” in this queue (a completed job is gone).`);
        } catch {
          setMissing('The search failed; try again.');
        }
      }}
    >
      <input type="search" name="id" placeholder="Find a job by id" value={id} onInput={(e) => setId(e.currentTarget.value)} />
      <button type="submit">Find</button>
      {missing && <span class="note note-error" data-search-missing>{missing}</span>}
    </form>
  );
}

function JobTable({ d, jobs, status, refresh }: { d: Dashboard; jobs: JobDetails[]; status: JobStatus; refresh: () => void }) {
  if (jobs.length === 0) return <p class="note" data-empty>No {status.replace('_', ' ')} jobs.</p>;
  return (
    <table class="grid" data-jobs={status}>
      <thead>
        <tr>
          <th>Id</th>
          <th>Status</th>
          <th class="num">Attempts</th>
          <th class="num">Retries</th>
          {status === 'in_flight' ? <th>Lease ends</th> : status === 'failed' ? <th>Failed</th> : <th>Runs</th>}
          {status === 'failed' && <th>Reason</th>}
          {d.access.operate && <th />}
        </tr>
      </thead>
      <tbody>
        {jobs.map((job) => (
          <tr key={`${job.id}\u0000${job.failed_at ?? ''}`} data-job={job.id}>
            <td><a href={href({ page: 'job', queue: job.queue, id: job.id })}>{job.id}</a></td>
            <td><StatusBadge status={job.status} /></td>
            <td class="num">{job.attempts}</td>
            <td class="num">{job.retries}/{job.max_retries < 0 ? '∞' : job.max_retries}</td>
            <td>{relative(status === 'in_flight' ? job.lease_expires_at : status === 'failed' ? job.failed_at : job.run_at)}</td>
            {status === 'failed' && <td class="reason">{job.reason}</td>}
            {d.access.operate && (
              <td>
                <Actions>
                  {job.status === 'failed' ? (
                    <>
                      <button type="button" data-action="retry" onClick={() => d.act(retryJob(d, job, refresh))}>Retry</button>
                      <button type="button" class="danger" data-action="purge" onClick={() => d.act(purgeJob(d, job, refresh))}>Purge</button>
                    </>
                  ) : (
                    <button type="button" class="danger" data-action="cancel" onClick={() => d.act(cancelJob(d, job, refresh))}>Cancel</button>
                  )}
                </Actions>
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
