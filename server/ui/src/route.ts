import { useEffect, useState } from 'preact/hooks';
import type { JobStatus } from '@relay-ts/client';

/**
 * Hash routes, so that the server serves one page (/ui) and the browser keeps the place:
 * #/queues, #/queues/{queue}?status=…, #/queues/{queue}/jobs/{id}, #/failed, #/enqueue.
 */
export type Route =
  | { page: 'queues' }
  | { page: 'queue'; queue: string; status: JobStatus }
  | { page: 'job'; queue: string; id: string }
  | { page: 'failed' }
  | { page: 'enqueue'; queue: string | undefined };

export const STATUSES: readonly JobStatus[] = ['waiting', 'scheduled', 'in_flight', 'failed'];

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#/, '').split('?', 2);
  const query = new URLSearchParams(search);
  const parts = path.split('/').filter((p) => p !== '').map(decode);
  if (parts.some((p) => p === undefined)) return { page: 'queues' };
  const [first, queue, third, id] = parts as string[];
  if (first === 'failed' && parts.length === 1) return { page: 'failed' };
  if (first === 'enqueue' && parts.length === 1) return { page: 'enqueue', queue: query.get('queue') ?? undefined };
  if (first === 'queues' && queue !== undefined && parts.length === 2) {
    const status = query.get('status') as JobStatus | null;
    return { page: 'queue', queue, status: status && STATUSES.includes(status) ? status : 'waiting' };
  }
  if (first === 'queues' && queue !== undefined && third === 'jobs' && id !== undefined && parts.length === 4) return { page: 'job', queue, id };
  return { page: 'queues' };
}

export function href(route: Route): string {
  switch (route.page) {
    case 'queues':
      return '#/queues';
    case 'failed':
      return '#/failed';
    case 'enqueue':
      return route.queue === undefined ? '#/enqueue' : `#/enqueue?queue=${encodeURIComponent(route.queue)}`;
    case 'queue':
      return `#/queues/${encodeURIComponent(route.queue)}?status=${route.status}`;
    case 'job':
      return `#/queues/${encodeURIComponent(route.queue)}/jobs/${encodeURIComponent(route.id)}`;
  }
}

export function navigate(route: Route): void {
  location.hash = href(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
