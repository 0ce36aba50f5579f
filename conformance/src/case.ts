import type { Session } from './http.js';

/** Optional parts of the contract: a server may leave them out, and the kit finds out which it has. */
export const FEATURES = ['auth', 'operations', 'idempotency', 'metrics'] as const;
export type Feature = (typeof FEATURES)[number];

export interface Settings {
  /** How long an expired lease may take to come back: its timeout plus the server's reap interval, and some. */
  redeliveryTimeoutMs: number;
}

/** What a case gets: a session, queue names of its own, what the server offers. */
export interface CaseContext {
  api: Session;
  /** A queue name no other case and no other run uses: the run's prefix, the case's name, and `suffix`. */
  queue(suffix?: string): string;
  features: ReadonlySet<Feature>;
  /** The role of the kit's token (null without tokens, undefined when the server did not say). */
  role: string | null | undefined;
  settings: Settings;
}

export interface Case {
  /** Short and stable, for `--only` and the report: `enqueue-duplicate`. */
  name: string;
  /** What it checks, for `--list`. */
  description: string;
  /** Features without which it is skipped. */
  needs?: Feature[];
  run(ctx: CaseContext): Promise<void>;
}

