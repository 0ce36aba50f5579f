import net from 'node:net';

/**
 * A TCP proxy between a relay server and its PostgreSQL, to take the database away and give
 * it back mid-run:
 * - cut('refuse'): every open connection is reset and new ones are refused (the database
 *   host is down, or PostgreSQL was stopped);
 * - cut('blackhole'): open connections stay open but nothing passes either way, and new ones
 *   are accepted and never answered (a network partition: nothing tells the client);
 * - restore(): new connections reach the database again; those held by a blackhole are reset.
 * It also stands in front of a relay server that is restarted on another port (retarget()),
 * so that its clients keep one address.
 */
export interface TcpProxy {
  readonly port: number;
  /** Connections currently passing through (client side). */
  readonly connections: number;
  /** How many connections the proxy has accepted since it started. */
  readonly accepted: number;
  /** url with its host and port replaced by the proxy's. */
  proxiedUrl(url: string): string;
  cut(mode?: 'refuse' | 'blackhole'): Promise<void>;
  restore(): Promise<void>;
  /** New connections go to this target from now on; open ones stay where they are. */
  retarget(target: { host: string; port: number }): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream?: net.Socket }>();
  let current = target;
  let state: 'open' | 'refuse' | 'blackhole' = 'open';
  let accepted = 0;

  const server = net.createServer((client) => {
    accepted++;
    const pair: { client: net.Socket; upstream?: net.Socket } = { client };
    pairs.add(pair);
    const drop = () => {
      pair.client.destroy();
      pair.upstream?.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    if (state === 'blackhole') {
      client.pause();
      return;
    }
    const upstream = net.connect(current.port, current.host);
    pair.upstream = upstream;
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;

  const resetAll = () => {
    for (const pair of [...pairs]) {
      pair.client.resetAndDestroy();
      pair.upstream?.destroy();
      pairs.delete(pair);
    }
  };
  const stopListening = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));

  return {
    port,
    get connections() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    proxiedUrl(url: string) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    async cut(mode: 'refuse' | 'blackhole' = 'refuse') {
      if (mode === 'refuse') {
        state = 'refuse';
        const closed = stopListening();
        resetAll();
        await closed;
      } else {
        state = 'blackhole';
        for (const pair of pairs) {
          pair.client.unpipe();
          pair.upstream?.unpipe();
          pair.client.pause();
          pair.upstream?.pause();
        }
      }
    },
    async restore() {
      if (state === 'blackhole') resetAll();
      if (!server.listening) await listen(port);
      state = 'open';
    },
    retarget(next: { host: string; port: number }) {
      current = next;
    },
    async close() {
      state = 'refuse';
      const closed = stopListening();
      resetAll();
      await closed;
    },
  };
}
