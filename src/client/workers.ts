/**
 * Creating a process's workers as one resource: either all of them exist, or none is left holding a
 * native worker on the connection.
 */

/** What a created worker must offer to be released without having served (`Worker.runUntil`). */
export interface Releasable {
  runUntil(until: Promise<unknown>): Promise<unknown>;
}

/**
 * Awaits workers created side by side. If one creation fails, the workers already created are run
 * down (a created worker holds a native worker on the connection, and the SDK releases it only at the
 * end of a run) before the first failure is thrown.
 */
export async function createWorkers<W extends Releasable>(creations: Promise<W>[]): Promise<W[]> {
  const settled = await Promise.allSettled(creations);
  const created = settled.flatMap((c) => (c.status === 'fulfilled' ? [c.value] : []));
  const failed = settled.find((c) => c.status === 'rejected');
  if (failed) {
    await Promise.allSettled(created.map((w) => w.runUntil(Promise.resolve())));
    throw failed.reason;
  }
  return created;
}
