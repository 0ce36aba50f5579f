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
