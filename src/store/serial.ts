/** Runs tasks one at a time, in the order they were given; a failed task does not stop the next. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every task given so far has settled. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
