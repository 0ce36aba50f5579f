/**
 * Runs the operations that arrive while earlier ones are still running as one statement: the
 * application-level counterpart of PostgreSQL's group commit. A lone request runs at once, so
 * nothing waits on a timer; under load, each statement (and each commit, and its WAL flush)
 * serves many requests.
 *
 * runBatch gets the items in arrival order and answers each one: a value, or the Error that
 * request alone should see. When runBatch throws for a batch of several, each item is run
 * again on its own: one request's bad value must never fail the requests that happened to
 * share its statement (unless isolateOn says the error is not the items' doing). A lone
 * item's error is its own.
 */
export class Coalescer<I, O> {
  private readonly waiting: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private running = 0;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<Array<O | Error>>,
    private readonly options: { maxBatch: number; maxConcurrent: number; isolateOn?: (err: unknown) => boolean },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.drain();
    });
  }

  private async run(items: I[]): Promise<Array<O | Error>> {
    try {
      return await this.runBatch(items);
    } catch (err) {
      if (items.length === 1 || !(this.options.isolateOn?.(err) ?? true)) throw err;
      return Promise.all(
        items.map((item) =>
          this.runBatch([item]).then(
            ([result]) => result as O | Error,
            (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
          ),
        ),
      );
    }
  }

  private drain(): void {
    while (this.running < this.options.maxConcurrent && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxBatch);
      this.running++;
      this.run(batch.map((b) => b.item))
        .then(
          (results) =>
            batch.forEach((b, i) => {
              const r = results[i];
              if (r instanceof Error) b.reject(r);
              else b.resolve(r as O);
            }),
          (err) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          this.running--;
          this.drain();
        });
    }
  }
}
