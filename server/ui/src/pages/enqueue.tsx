import { useState } from 'preact/hooks';
import newJobSchema from 'relay:schema/NewJob';
import type { NewJob } from '@relay-ts/client';
import { useDashboard } from '../context.js';
import { href } from '../route.js';
import { checkSchema, type SchemaProblem } from '../schema-check.js';

interface Fields {
  id: string;
  queue: string;
  timeout: string;
  max_retries: string;
  payload: string;
  run_at: string;
}

/** A number field as typed: an integer stays one; anything else goes to the schema check as text. */
function number(text: string): unknown {
  return /^\s*-?\d+\s*$/.test(text) ? Number(text) : text;
}

/** The job the fields describe, or what is wrong with them (checked against openapi.yaml's NewJob). */
export function jobOf(f: Fields): { job: NewJob } | { problems: SchemaProblem[] } {
  const job: Record<string, unknown> = { id: f.id, queue: f.queue, timeout: number(f.timeout) };
  if (f.max_retries.trim() !== '') job.max_retries = number(f.max_retries);
  if (f.run_at.trim() !== '') job.run_at = f.run_at.trim();
  const problems: SchemaProblem[] = [];
  if (f.payload.trim() !== '') {
    try {
      job.payload = JSON.parse(f.payload);
    } catch (err) {
      problems.push({ field: 'payload', message: `is not JSON: ${(err as Error).message}` });
    }
  }
  problems.push(...checkSchema(newJobSchema, job));
  return problems.length ? { problems } : { job: job as unknown as NewJob };
}

const LABELS: Record<keyof Fields, string> = {
  id: 'Id',
  queue: 'Queue',
  timeout: 'Timeout (seconds a lease lasts)',
  max_retries: 'Max retries (negative: forever)',
  payload: 'Payload (JSON)',
  run_at: 'Run at (RFC 3339; empty: now)',
};

export function EnqueuePage({ queue }: { queue: string | undefined }) {
  const d = useDashboard();
  const [fields, setFields] = useState<Fields>({ id: '', queue: queue ?? '', timeout: '30', max_retries: '0', payload: '{}', run_at: '' });
  const [problems, setProblems] = useState<SchemaProblem[]>([]);
  const [sending, setSending] = useState(false);
  if (!d.access.enqueue) return <p class="note">This token may not enqueue jobs{d.readOnly ? ' (the dashboard is read-only)' : ''}.</p>;

  const field = (name: keyof Fields, multiline = false) => {
    const problem = problems.filter((p) => p.field === name).map((p) => p.message).join('; ');
    const onInput = (e: { currentTarget: HTMLInputElement | HTMLTextAreaElement }) => setFields({ ...fields, [name]: e.currentTarget.value });
    return (
      <label class={problem ? 'invalid' : undefined}>
        {LABELS[name]}
        {multiline ? (
          <textarea name={name} rows={8} spellcheck={false} value={fields[name]} onInput={onInput} aria-invalid={problem ? true : undefined} />
        ) : (
          <input name={name} value={fields[name]} onInput={onInput} aria-invalid={problem ? true : undefined} />
        )}
        {problem && <span class="field-error" data-field-error={name}>{LABELS[name].split(' (')[0]} {problem}</span>}
      </label>
    );
  };

  return (
    <section data-page="enqueue">
      <h1>Enqueue a job</h1>
      <form
        class="card enqueue"
        data-form="enqueue"
        onSubmit={async (e) => {
          e.preventDefault();
          const checked = jobOf(fields);
          if ('problems' in checked) return setProblems(checked.problems);
          setProblems([]);
          setSending(true);
          const { job } = checked;
          await d.act({
            what: `Enqueue “${job.id}”`,
            run: () => d.client.enqueue(job),
            done: () => `Enqueued “${job.id}” in “${job.queue}”.`,
            then: () => setFields({ ...fields, id: '' }),
          });
          setSending(false);
        }}
      >
        <div class="form-row">
          {field('queue')}
          {field('id')}
        </div>
        <div class="form-row">
          {field('timeout')}
          {field('max_retries')}
          {field('run_at')}
        </div>
        {field('payload', true)}
        {problems.filter((p) => !(p.field in LABELS)).map((p) => (
          <p key={p.field + p.message} class="field-error" data-field-error="other">{p.field || 'the job'} {p.message}</p>
        ))}
        <div class="actions">
          <button type="submit" disabled={sending} data-action="enqueue">Enqueue</button>
          {fields.queue && <a href={href({ page: 'queue', queue: fields.queue, status: 'waiting' })}>Go to “{fields.queue}”</a>}
        </div>
      </form>
    </section>
  );
}
