import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { ForbiddenError } from '@relay-ts/client';
import type { Question } from './context.js';
import { json } from './format.js';
import { describeError } from './session.js';

/** Small pieces the pages share. */

export interface Toast {
  id: number;
  kind: 'ok' | 'error';
  message: string;
}

export function Toasts({ toasts, dismiss }: { toasts: Toast[]; dismiss: (id: number) => void }) {
  return (
    <div class="toasts" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'} data-toast={t.kind}>
          <span>{t.message}</span>
          <button type="button" class="link" aria-label="dismiss" onClick={() => dismiss(t.id)}>×</button>
        </div>
      ))}
    </div>
  );
}

/** An in-page dialog (window.confirm would block the page and its refreshes). */
export function ConfirmDialog({ question, answer }: { question: Question; answer: (yes: boolean) => void }) {
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    confirmRef.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && answer(false);
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [answer]);
  return (
    <div class="backdrop">
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title" data-dialog="confirm">
        <h2 id="dialog-title">{question.title}</h2>
        <p>{question.body}</p>
        <div class="dialog-buttons">
          <button type="button" data-dialog-cancel onClick={() => answer(false)}>Cancel</button>
          <button type="button" class="danger" ref={confirmRef} data-dialog-confirm onClick={() => answer(true)}>{question.confirm}</button>
        </div>
      </div>
    </div>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`}>{status.replace('_', ' ')}</span>;
}

/** A failed load, in place of what it would have shown. */
export function LoadError({ error }: { error: unknown }) {
  if (error === undefined) return null;
  const message = error instanceof ForbiddenError ? "this token's role may not read this (a reader or admin token can)" : describeError(error);
  return <p class="note note-error" data-load-error>Could not load: {message}</p>;
}

export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  return (
    <figure class="json">
      <figcaption>{label}</figcaption>
      <pre data-json={label}>{json(value)}</pre>
    </figure>
  );
}

export function Loading() {
  return <p class="note">Loading…</p>;
}

export function Actions({ children }: { children: ComponentChildren }) {
  return <div class="actions">{children}</div>;
}

const SPARK_HEIGHT = 16;
const SPARK_STEP = 4;

/**
 * Per-minute counts as a row of bars, oldest first, scaled to the largest; with the total.
 * Drawn with attributes and classes only: the page's Content-Security-Policy allows no inline style.
 */
export function Sparkline({ values, kind, total, label }: { values: readonly number[]; kind: 'completed' | 'failed'; total: number; label: string }) {
  const max = Math.max(1, ...values);
  const width = values.length * SPARK_STEP;
  return (
    <span class="spark-cell">
      <svg class={`spark spark-${kind}`} viewBox={`0 0 ${width} ${SPARK_HEIGHT}`} width={width} height={SPARK_HEIGHT} role="img" aria-label={label}>
        <title>{label}</title>
        <rect class="spark-base" x={0} y={SPARK_HEIGHT - 1} width={width} height={1} />
        {values.map((v, i) => {
          const h = v === 0 ? 0 : Math.max(1, (v / max) * SPARK_HEIGHT);
          return <rect key={i} x={i * SPARK_STEP} y={SPARK_HEIGHT - h} width={SPARK_STEP - 1} height={h} />;
        })}
      </svg>
      <span data-throughput={kind}>{total}</span>
    </span>
  );
}
