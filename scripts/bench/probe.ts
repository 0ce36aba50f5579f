/**
 * How quickly this machine passes a message from one idle process to another: the floor under
 * every latency figure, since a job crosses four processes (producer, server, PostgreSQL,
 * worker). On a virtual machine a sleeping process's CPU must be woken by the host; the same
 * VM measured a loopback round trip p99 of 1 ms on one day and 2.6 ms on another, and the
 * bench's latency figures (baseline included) moved with it.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { sleep } from './phases.js';
import { percentile } from './stats.js';

export interface RoundTrip {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

// An echo server in a child process, printing its port.
const ECHO = `require('node:net').createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); })
  .listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;

/** `samples` one-byte round trips over loopback TCP to another process, `gapMs` apart (ms). */
export async function loopbackRoundTrip(samples: number, gapMs = 2): Promise<RoundTrip> {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', (line) => resolve(Number(line)));
      child.once('exit', (code) => reject(new Error(`echo process exited with ${code}`)));
    });
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const start = performance.now();
      const echoed = new Promise((resolve) => socket.once('data', resolve));
      socket.write('x');
      await echoed;
      times.push(performance.now() - start);
      // Idle between pings, as the processes of the latency phase are between jobs.
      await sleep(gapMs);
    }
    socket.destroy();
    times.sort((a, b) => a - b);
    return { samples, p50: percentile(times, 50), p99: percentile(times, 99), max: times[times.length - 1]! };
  } finally {
    child.kill();
  }
}
