/** How the dashboard writes ages, times and JSON. */

export function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** "in 25s" or "3m 10s ago", from now. */
export function relative(iso: string | undefined, nowMs = Date.now()): string {
  if (iso === undefined) return '–';
  const delta = (Date.parse(iso) - nowMs) / 1000;
  return delta >= 0 ? `in ${age(delta)}` : `${age(-delta)} ago`;
}

/** A time as the page shows it: local, to the second, with how far from now. */
export function when(iso: string | undefined): string {
  if (iso === undefined) return '–';
  const date = new Date(iso);
  return `${date.toLocaleString(undefined, { hour12: false })} (${relative(iso)})`;
}

export function json(value: unknown): string {
  return value === undefined ? '(none)' : JSON.stringify(value, null, 2);
}
