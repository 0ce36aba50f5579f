import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { UnauthorizedError, type RelayClient } from '@relay-ts/client';
import { ConfirmDialog, Toasts, type Toast } from './components.js';
import { accessOf, DashboardContext, type ActionSpec, type Dashboard, type Question, type Role } from './context.js';
import { readPageConfig } from './page-config.js';
import { FailedPage } from './pages/failed.js';
import { EnqueuePage } from './pages/enqueue.js';
import { JobPage } from './pages/job.js';
import { QueuePage } from './pages/queue.js';
import { QueuesPage } from './pages/queues.js';
import { TokenForm } from './pages/token.js';
import { REFRESH_MS } from './poll.js';
import { href, useRoute, type Route } from './route.js';
import { clientFor, describeError, forgetToken, isUnreachable, savedToken, saveToken } from './session.js';
import { ServerThroughput } from './throughput.js';

type Session =
  | { state: 'checking'; client: RelayClient }
  | { state: 'need-token'; why: string | undefined }
  | { state: 'ready'; client: RelayClient; role: Role };

const TOAST_MS = 8000;

export function App() {
  const config = useMemo(readPageConfig, []);
  const [token, setToken] = useState(savedToken);
  const [session, setSession] = useState<Session>(() =>
    config.tokens && token === undefined ? { state: 'need-token', why: undefined } : { state: 'checking', client: clientFor(token) },
  );
  const [reachable, setReachable] = useState(true);
  const [lastAnswer, setLastAnswer] = useState<Date | undefined>();
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [question, setQuestion] = useState<{ question: Question; resolve: (yes: boolean) => void } | undefined>();
  const throughput = useMemo(() => new ServerThroughput(), []);
  const toastId = useRef(0);
  const route = useRoute();

  // Who the token is: decides what the pages offer. Retried while the server is unreachable.
  useEffect(() => {
    if (session.state !== 'checking') return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const check = () =>
      session.client.whoami().then(
        ({ role }) => !stopped && (setReachable(true), setSession({ state: 'ready', client: session.client, role })),
        (err: unknown) => {
          if (stopped) return;
          if (err instanceof UnauthorizedError) {
            forgetToken();
            setSession({ state: 'need-token', why: token === undefined ? 'This server needs a token.' : 'The server did not accept that token.' });
          } else {
            if (isUnreachable(err)) setReachable(false);
            timer = setTimeout(check, REFRESH_MS);
          }
        },
      );
    void check();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [session, token]);

  const notify = useCallback((kind: Toast['kind'], message: string) => {
    const id = ++toastId.current;
    setToasts((list) => [...list.slice(-4), { id, kind, message }]);
    setTimeout(() => setToasts((list) => list.filter((t) => t.id !== id)), TOAST_MS);
  }, []);

  const ask = useCallback((q: Question) => new Promise<boolean>((resolve) => setQuestion({ question: q, resolve })), []);
  const answer = useCallback(
    (yes: boolean) => {
      question?.resolve(yes);
      setQuestion(undefined);
    },
    [question],
  );

  const acceptToken = (value: string) => {
    saveToken(value);
    setToken(value);
    setSession({ state: 'checking', client: clientFor(value) });
  };
  const signOut = () => {
    forgetToken();
    setToken(undefined);
    setSession({ state: 'need-token', why: undefined });
  };

  const dashboard = useMemo<Dashboard | undefined>(() => {
    if (session.state !== 'ready') return undefined;
    return {
      client: session.client,
      role: session.role,
      readOnly: config.readOnly,
      access: accessOf(session.role, config.readOnly),
      throughput,
      reachable: (yes: boolean) => {
        setReachable(yes);
        if (yes) setLastAnswer(new Date());
      },
      unauthorized: () => {
        forgetToken();
        setSession({ state: 'need-token', why: 'The server no longer accepts the token.' });
      },
      async act<T>(spec: ActionSpec<T>) {
        if (spec.ask && !(await ask(spec.ask))) return;
        try {
          const result = await spec.run();
          notify('ok', spec.done(result));
          spec.then?.();
        } catch (err) {
          if (isUnreachable(err)) setReachable(false);
          notify('error', `${spec.what} failed: ${describeError(err)}`);
        }
      },
    };
  }, [session, config.readOnly, throughput, ask, notify]);

  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/queues">relay</a>
        <nav>
          <NavLink route={route} to={{ page: 'queues' }} label="Queues" />
          <NavLink route={route} to={{ page: 'failed' }} label="Failed jobs" />
          {dashboard?.access.enqueue && <NavLink route={route} to={{ page: 'enqueue', queue: undefined }} label="Enqueue" />}
        </nav>
        <div class="who">
          {config.readOnly && <span class="badge badge-readonly" data-read-only>read-only</span>}
          {session.state === 'ready' && session.role !== null && <span class="badge" data-role={session.role}>{session.role}</span>}
          {token !== undefined && session.state !== 'need-token' && (
            <button type="button" class="link" data-forget-token onClick={signOut}>forget token</button>
          )}
        </div>
      </header>
      {!reachable && (
        <div class="banner banner-error" role="alert" data-banner="unreachable">
          The server is unreachable: retrying every {REFRESH_MS / 1000} s.
          {lastAnswer && ` What is shown is from ${lastAnswer.toLocaleTimeString(undefined, { hour12: false })}.`}
        </div>
      )}
      <main>
        {session.state === 'need-token' && <TokenForm why={session.why} onToken={acceptToken} />}
        {session.state === 'checking' && <p class="note">Connecting…</p>}
        {dashboard && (
          <DashboardContext.Provider value={dashboard}>
            <Page route={route} />
          </DashboardContext.Provider>
        )}
      </main>
      <Toasts toasts={toasts} dismiss={(id) => setToasts((list) => list.filter((t) => t.id !== id))} />
      {question && <ConfirmDialog question={question.question} answer={answer} />}
    </div>
  );
}

function NavLink({ route, to, label }: { route: Route; to: Route; label: string }) {
  const active = route.page === to.page || (to.page === 'queues' && (route.page === 'queue' || route.page === 'job'));
  return <a href={href(to)} class={active ? 'active' : undefined} aria-current={active ? 'page' : undefined}>{label}</a>;
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'queues':
      return <QueuesPage />;
    case 'queue':
      return <QueuePage key={route.queue} queue={route.queue} status={route.status} />;
    case 'job':
      return <JobPage key={`${route.queue}\u0000${route.id}`} queue={route.queue} id={route.id} />;
    case 'failed':
      return <FailedPage />;
    case 'enqueue':
      return <EnqueuePage queue={route.queue} />;
  }
}
