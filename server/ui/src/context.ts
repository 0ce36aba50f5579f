import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { RelayClient, Whoami } from '@relay-ts/client';
import type { ThroughputSource } from './throughput.js';

export type Role = Whoami['role'];

/** What the page offers: by the token's role, and nothing but reading in read-only mode. */
export interface Access {
  read: boolean;
  /** Pause, resume, cancel, retry, purge: admin operations. */
  operate: boolean;
  enqueue: boolean;
}

/** role null: the server has no tokens, every operation is open. */
export function accessOf(role: Role, readOnly: boolean): Access {
  const admin = role === null || role === 'admin';
  const read = admin || role === 'reader';
  if (readOnly) return { read, operate: false, enqueue: false };
  return { read, operate: admin, enqueue: admin || role === 'producer' };
}

export interface Question {
  title: string;
  body: string;
  /** The label of the button that goes ahead. */
  confirm: string;
}

export interface ActionSpec<T> {
  /** What the action is, for the outcome: "Pause mail". */
  what: string;
  /** Destructive actions ask first. */
  ask?: Question;
  run: () => Promise<T>;
  /** The outcome, said when it succeeded. */
  done: (result: T) => string;
  /** After success (a refresh, a navigation). */
  then?: () => void;
}

export interface Dashboard {
  client: RelayClient;
  role: Role;
  readOnly: boolean;
  access: Access;
  throughput: ThroughputSource;
  /** A call answered or failed to arrive: the unreachable banner follows it. */
  reachable(yes: boolean): void;
  /** A call was answered 401: ask for a token again. */
  unauthorized(): void;
  act<T>(spec: ActionSpec<T>): Promise<void>;
}

export const DashboardContext = createContext<Dashboard | undefined>(undefined);

export function useDashboard(): Dashboard {
  const dashboard = useContext(DashboardContext);
  if (!dashboard) throw new Error('useDashboard outside the dashboard');
  return dashboard;
}
