/** The results as figures (median, min, max, ratio) and as a markdown report. */
import { summarize, type Summary } from './stats.js';

export interface Figure {
  label: string;
  unit: string;
  /** Which direction is better, to read the ratio. */
  better: 'higher' | 'lower';
  baseline?: Summary;
  relay?: Summary;
  /** relay median / baseline median. */
  ratio?: number;
  note?: string;
}

export function figure(label: string, unit: string, better: 'higher' | 'lower', baseline: number[] | undefined, relay: number[] | undefined, note?: string): Figure {
  const b = baseline ? summarize(baseline) : undefined;
  const r = relay ? summarize(relay) : undefined;
  const ratio = b && r && b.median !== 0 ? r.median / b.median : undefined;
  return { label, unit, better, baseline: b, relay: r, ratio, note };
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (unit === 'jobs/s') return Math.round(v).toLocaleString('en-US').replaceAll(',', ' ');
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return v.toFixed(digits);
}

function cell(s: Summary | undefined, unit: string): string {
  if (!s) return '—';
  if (s.runs.length === 1) return `**${num(s.median, unit)}**`;
  return `**${num(s.median, unit)}** (${num(s.min, unit)} – ${num(s.max, unit)})`;
}

function ratioCell(f: Figure): string {
  if (f.ratio === undefined || !Number.isFinite(f.ratio)) return '—';
  return `${f.ratio.toFixed(2)}×`;
}

export function table(figures: Figure[]): string {
  const lines = [
    '| figure | unit | raw SQL baseline | relay-ts | relay / baseline |',
    '|---|---|---|---|---|',
  ];
  for (const f of figures) {
    lines.push(`| ${f.label}${f.note ? ` ${f.note}` : ''} | ${f.unit} | ${cell(f.baseline, f.unit)} | ${cell(f.relay, f.unit)} | ${ratioCell(f)} |`);
  }
  return lines.join('\n');
}
