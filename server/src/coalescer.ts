/**
 * Runs the operations that arrive while earlier ones are still running as one statement: the
 * application-level counterpart of PostgreSQL's group commit. A lone request runs at once, so
 * nothing waits on a timer; under load, each statement (and each commit, and its WAL flush)
 * serves many requests.
 *
 * runBatch gets the items in arrival order and answers each one: a value, or the Error that
 * request alone should see. If runBatch itself throws, every request of the batch sees it.
 */
export class Coalescer<I, O> {
  private readonly waiting: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private running = 0;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<Array<O | Error>>,
    private readonly options: { maxBatch: number; maxConcurrent: number },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.running < this.options.maxConcurrent && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxBatch);
      this.running++;
      this.runBatch(batch.map((b) => b.item))
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
