import pg from 'pg';
import { preload, truncate } from './db.js';
import { Relay } from './relay.js';
import { ServerProcess } from './server.js';
const url = 'postgres://root@127.0.0.1:5432/relay_bench';
const conc = Number(process.argv[2] ?? 50); const n = Number(process.argv[3] ?? 20000); const win = Number(process.argv[4] ?? 0); const rounds = Number(process.argv[5] ?? 4);
const envA = JSON.parse(process.argv[6] ?? '{}'); const envB = JSON.parse(process.argv[7] ?? '{}');
const ctl = new pg.Client(url); await ctl.connect();
const server = await ServerProcess.start({ databaseUrl: url, maxConnections: 10 });
const relay = new Relay(server.url);
await truncate(ctl); await preload(ctl, 'bench', 2000);
await relay.process('bench', 2000, { concurrency: conc, completionWindowMs: win });
const res: Record<string, number[]> = { A: [], B: [] };
for (let r = 0; r < rounds; r++) for (const [k, env] of [['A', envA], ['B', envB]] as const) {
  for (const key of Object.keys({ ...envA, ...envB })) delete process.env[key];
  Object.assign(process.env, env);
  await truncate(ctl); await preload(ctl, 'bench', n);
  const { seconds } = await relay.process('bench', n, { concurrency: conc, completionWindowMs: win });
  res[k]!.push(Math.round(n / seconds));
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`c${conc} win${win}: A ${JSON.stringify(envA)} median ${med(res.A!)} ${JSON.stringify(res.A)} | B ${JSON.stringify(envB)} median ${med(res.B!)} ${JSON.stringify(res.B)}`);
await truncate(ctl); await server.stop(); await ctl.end(); process.exit(0);
