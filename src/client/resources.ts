/**
 * The process runtime's teardown: what `generate` and `worker` acquire (the Temporal server, the codec
 * and model servers, connections, workers, stores) is registered as it is acquired and released in
 * the reverse order, once, however the command ends.
 */
export class Resources {
  private readonly releases: (() => unknown)[] = [];
  private released = false;

  /** Registers how to release what was just acquired. */
  defer(release: () => unknown): void {
    if (this.released) throw new Error('resources already released');
    this.releases.unshift(release);
  }

  /**
   * Releases everything, last acquired first. Every release runs even if an earlier one fails; the
   * first failure is thrown after all have run.
   */
  async releaseAll(): Promise<void> {
    if (this.released) return;
    this.released = true;
    let first: { error: unknown } | undefined;
    for (const release of this.releases) {
      try {
        await release();
      } catch (error) {
        first ??= { error };
      }
    }
    if (first) throw first.error;
  }
}
