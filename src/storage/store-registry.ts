import { isAbsolute, resolve } from 'node:path';
import { ForbiddenDirectoryError } from './confine';
import { JsonlStore, type JsonlStoreOptions } from './run-store';

/** See `JsonlStoreOptions.idleCloseMs`: long enough that a paused run's store stays open for a while. */
export const STORE_IDLE_CLOSE_MS = 5 * 60_000;

/**
 * One store per directory in this process; concurrent callers share one opening. A store idle for
 * `idleCloseMs` (no `get`, no append, nothing being written) is closed, and opened again when asked for.
 */
export class StoreRegistry {
  private readonly stores = new Map<string, { store: Promise<JsonlStore>; usedAt: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly idleCloseMs: number;

  /** Every process that serves storage has an output root: `options.root` confines every directory. */
  constructor(private readonly options: JsonlStoreOptions & { root: string }) {
    this.idleCloseMs = options.idleCloseMs ?? STORE_IDLE_CLOSE_MS;
    this.sweeper = setInterval(
      () => void this.closeIdle(),
      Math.max(10, Math.min(this.idleCloseMs / 2, 60_000)),
    );
    this.sweeper.unref();
  }

  get root(): string {
    return this.options.root;
  }

  /** Directories with a store open (or opening). */
  get openDirs(): string[] {
    return [...this.stores.keys()];
  }

  /** The store of `dir`, for run `runId` when known; refuses a directory that moved or is another run's. */
  async get(dir: string, runId?: string): Promise<JsonlStore> {
    // Workflow input names the directory: relative to what would it be? Never this process's cwd.
    if (!isAbsolute(dir)) throw new ForbiddenDirectoryError(`${dir} is not an absolute path`);
    const key = resolve(dir);
    let entry = this.stores.get(key);
    if (!entry) {
      const store = JsonlStore.open(key, { ...this.options, runId });
      entry = { store, usedAt: Date.now() };
      this.stores.set(key, entry);
      store.catch(() => {
        if (this.stores.get(key)?.store === store) this.stores.delete(key);
      });
    }
    entry.usedAt = Date.now();
    const store = entry.store;
    const opened = await store;
    if (opened.lockLost) {
      // Taken over by another writer: open again, which refuses while that writer lives.
      if (this.stores.get(key)?.store === store) this.stores.delete(key);
      await opened.close().catch(() => undefined);
      return this.get(dir, runId);
    }
    try {
      await opened.checkStillAt();
    } catch (error) {
      if (this.stores.get(key)?.store === store) this.stores.delete(key);
      await opened.close().catch(() => undefined);
      throw error;
    }
    if (runId && opened.runId && opened.runId !== runId)
      throw new ForbiddenDirectoryError(`${key} holds the output of run ${opened.runId}, not ${runId}`);
    return opened;
  }

  /** Closes the stores idle for `idleCloseMs`; a store still writing is left for a later sweep. */
  async closeIdle(now = Date.now()): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, entry] of this.stores) {
      const store = await entry.store.catch(() => undefined);
      if (!store || this.stores.get(key) !== entry || store.busy) continue;
      if (now - Math.max(entry.usedAt, store.lastAppendAt) < this.idleCloseMs) continue;
      this.stores.delete(key);
      closing.push(store.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const stores = [...this.stores.values()];
    this.stores.clear();
    const results = await Promise.allSettled(
      stores.map(async (s) => (await s.store.catch(() => undefined))?.close()),
    );
    // Every store is closed even if one fails; the first failure is reported.
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
