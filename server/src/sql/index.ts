/** The statements of the request path and the reaper, for tools that show their plans (scripts/explain.ts). */
import { COMPLETE } from './complete.js';
import { enqueueStatements } from './enqueue.js';
import { HEARTBEAT } from './heartbeat.js';
import { NEXT } from './next.js';
import { REAP } from './reap.js';

export const hotStatements = { next: NEXT, reap: REAP, heartbeat: HEARTBEAT, complete: COMPLETE, enqueue: enqueueStatements.ENQUEUE_EACH } as const;
