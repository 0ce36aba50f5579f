import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { UnauthorizedError, type RelayClient } from '@relay-ts/client';
import { useDashboard } from './context.js';
import { isUnreachable } from './session.js';

/** How often a page reloads what it shows. */
export const REFRESH_MS = 2000;

export interface Polled<T> {
  /** The latest answer; kept while the next is on its way and when it fails (no flicker). */
  data: T | undefined;
  /** The latest failure other than an unreachable server (that is the banner's). */
  error: unknown;
  /** Loads again now (after an action). */
  refresh: () => void;
}

/**
 * Loads on mount and every intervalMs after the previous load ended (never two at once).
 * `key` names what is loaded: when it changes (another queue, another page of jobs) the old
 * data is not shown for the new key.
 */
export function usePoll<T>(key: string, load: (client: RelayClient) => Promise<T>, intervalMs = REFRESH_MS): Polled<T> {
  const { client, reachable, unauthorized } = useDashboard();
  const [state, setState] = useState<{ key: string; data?: T; error?: unknown }>({ key });
  const [round, setRound] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const data = await loadRef.current(client);
        if (stopped) return;
        reachable(true);
        setState({ key, data });
      } catch (err) {
        if (stopped) return;
        if (isUnreachable(err)) reachable(false);
        else {
          reachable(true);
          if (err instanceof UnauthorizedError) unauthorized();
          setState((s) => (s.key === key ? { ...s, error: err } : { key, error: err }));
        }
      }
      if (!stopped) timer = setTimeout(run, intervalMs);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [key, client, round, intervalMs]);

  const refresh = useCallback(() => setRound((r) => r + 1), []);
  const current = state.key === key;
  return { data: current ? state.data : undefined, error: current ? state.error : undefined, refresh };
}
