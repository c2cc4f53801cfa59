/**
 * The durable, exactly-once writer of a run's output directory. A storage activity may run twice for
 * the same dialogue (a worker can die after writing but before reporting), and any process may be
 * killed mid-write, so the store: keeps the ids each file already holds and skips repeats; appends
 * only whole lines, committing concurrent appends in one write and one fsync; cuts a torn last line on
 * open; and locks the directory against a second writer.
 */
import { constants as fsConstants, createReadStream } from 'node:fs';
import { access, open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { makeDirs } from './make-dirs';
import { OUTPUT_FILES } from '../shared/constants';
import type { DialogueRecord, FailureRecord, StoreResult } from '../shared/schemas';

export interface JsonlStoreOptions {
  /** fsync each commit; benchmarks of the orchestration alone may turn it off. @default true */
  fsync?: boolean;
}

export const DEFAULT_JSONL_STORE_OPTIONS: Required<JsonlStoreOptions> = { fsync: true };

interface Pending {
  line: Buffer;
  resolve: (r: StoreResult) => void;
  reject: (e: unknown) => void;
}

/** One append-only JSON Lines file with an id index and group commit. */
class JsonlFile {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Ids on disk or queued: a repeat resolves as a duplicate without touching the file. */
  private readonly ids = new Set<string>();
  private readonly waiting = new Map<string, Promise<StoreResult>>();
  flushCount = 0;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private size: number,
    private readonly fsync: boolean,
  ) {}

  static async open(path: string, fsync: boolean): Promise<{ file: JsonlFile; repairedBytes: number }> {
    const handle = await open(path, 'a+');
    try {
      const { size } = await handle.stat();
      const repairedBytes = await repairTail(handle, size);
      const file = new JsonlFile(path, handle, size - repairedBytes, fsync);
      await file.loadIds();
      return { file, repairedBytes };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  private async loadIds(): Promise<void> {
    if (this.size === 0) return;
    const lines = createInterface({
      input: createReadStream(this.path, { end: this.size - 1 }),
      crlfDelay: Infinity,
    });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line.length === 0) continue;
      let id: unknown;
      try {
        id = (JSON.parse(line) as { id?: unknown }).id;
      } catch {
        throw new Error(`${this.path}: line ${n} is not valid JSON; fix or move the file before resuming`);
      }
      if (typeof id !== 'string') throw new Error(`${this.path}: line ${n} has no string "id"`);
      this.ids.add(id);
    }
  }

  get count(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  append(id: string, record: unknown): Promise<StoreResult> {
    const inFlight = this.waiting.get(id);
    if (inFlight) return inFlight.then(() => ({ status: 'duplicate' as const }));
    if (this.ids.has(id)) return Promise.resolve({ status: 'duplicate' });
    const text = JSON.stringify(record);
    // JSON.stringify escapes newlines inside strings; this guards the one-record-per-line invariant.
    if (text.includes('\n')) return Promise.reject(new Error(`record ${id} would span lines`));
    const promise = new Promise<StoreResult>((resolvePromise, reject) => {
      this.queue.push({ line: Buffer.from(`${text}\n`), resolve: resolvePromise, reject });
    });
    this.ids.add(id);
    this.waiting.set(id, promise);
    const settle = () => this.waiting.delete(id);
    promise.then(settle, () => {
      settle();
      this.ids.delete(id);
    });
    this.kick();
    return promise;
  }

  private kick(): void {
    this.flushing ??= this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const buffer = Buffer.concat(batch.map((p) => p.line));
      const before = this.size;
      try {
        let written = 0;
        while (written < buffer.length) {
          const { bytesWritten } = await this.handle.write(buffer, written, buffer.length - written);
          written += bytesWritten;
        }
        if (this.fsync) await this.handle.datasync();
        this.size += buffer.length;
        this.flushCount++;
        for (const p of batch) p.resolve({ status: 'written' });
      } catch (error) {
        // No half batch stays behind: cut the file back to where the batch began.
        await this.handle.truncate(before).catch(() => undefined);
        for (const p of batch) p.reject(error);
      }
    }
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.handle.close();
  }
}

/** Cuts a last line that has no newline (a write cut by a crash); returns the bytes removed. */
async function repairTail(handle: FileHandle, size: number): Promise<number> {
  if (size === 0) return 0;
  const chunk = Buffer.alloc(Math.min(size, 64 * 1024));
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    if (end === size && chunk[bytesRead - 1] === 0x0a) return 0;
    const nl = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl !== -1) {
      await handle.truncate(start + nl + 1);
      return size - (start + nl + 1);
    }
    end = start;
  }
  await handle.truncate(0);
  return size;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class JsonlStore {
  /** Bytes cut from torn last lines when the store was opened. */
  readonly repairedBytes: number;

  private constructor(
    readonly dir: string,
    private readonly dialogues: JsonlFile,
    private readonly failures: JsonlFile,
    repairedBytes: number,
  ) {
    this.repairedBytes = repairedBytes;
  }

  static async open(dir: string, options: JsonlStoreOptions = {}): Promise<JsonlStore> {
    const { fsync } = { ...DEFAULT_JSONL_STORE_OPTIONS, ...options };
    const root = resolve(dir);
    try {
      await makeDirs(root);
      await access(root, fsConstants.W_OK);
    } catch (error) {
      throw new Error(
        `cannot write to output directory ${root}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    await takeLock(root);
    try {
      const d = await JsonlFile.open(join(root, OUTPUT_FILES.dialogues), fsync);
      const f = await JsonlFile.open(join(root, OUTPUT_FILES.failures), fsync).catch(
        async (error: unknown) => {
          await d.file.close();
          throw error;
        },
      );
      return new JsonlStore(root, d.file, f.file, d.repairedBytes + f.repairedBytes);
    } catch (error) {
      await rm(join(root, LOCK_FILE), { force: true });
      throw error;
    }
  }

  appendDialogue(record: DialogueRecord): Promise<StoreResult> {
    return this.dialogues.append(record.id, record);
  }

  appendFailure(failure: FailureRecord): Promise<StoreResult> {
    return this.failures.append(failure.id, failure);
  }

  has(id: string): boolean {
    return this.dialogues.has(id);
  }

  stats(): { dialogues: number; failures: number } {
    return { dialogues: this.dialogues.count, failures: this.failures.count };
  }

  /** Write batches so far (each one write and one fsync), across both files. */
  get flushCount(): number {
    return this.dialogues.flushCount + this.failures.flushCount;
  }

  async close(): Promise<void> {
    await this.dialogues.close();
    await this.failures.close();
    await rm(join(this.dir, LOCK_FILE), { force: true });
  }
}

const LOCK_FILE = '.lock';

/** One writer per directory: a live process holding the lock wins; a dead one's lock is taken over. */
async function takeLock(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const mine = JSON.stringify({
    pid: process.pid,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
  });
  try {
    await writeFile(path, mine, { flag: 'wx' });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  let holder: { pid?: number; hostname?: string } = {};
  try {
    holder = JSON.parse(await readFile(path, 'utf8')) as typeof holder;
  } catch {
    // An unreadable lock (cut by a crash) holds nothing.
  }
  const sameHost = !holder.hostname || holder.hostname === hostname();
  if (holder.pid && holder.pid !== process.pid && sameHost && pidAlive(holder.pid)) {
    throw new Error(
      `output directory ${dir} is in use by process ${holder.pid}; stop it or use another directory`,
    );
  }
  if (!sameHost && (await stat(path)).mtimeMs > Date.now() - 60_000) {
    throw new Error(`output directory ${dir} is locked by ${holder.hostname} (pid ${holder.pid})`);
  }
  await writeFile(path, mine);
}

/** One store per directory in this process; concurrent callers share one opening. */
export class StoreRegistry {
  private readonly stores = new Map<string, Promise<JsonlStore>>();

  constructor(private readonly options: JsonlStoreOptions = {}) {}

  get(dir: string): Promise<JsonlStore> {
    const key = resolve(dir);
    let store = this.stores.get(key);
    if (!store) {
      store = JsonlStore.open(key, this.options);
      this.stores.set(key, store);
      store.catch(() => this.stores.delete(key));
    }
    return store;
  }

  async closeAll(): Promise<void> {
    const stores = [...this.stores.values()];
    this.stores.clear();
    await Promise.all(stores.map(async (s) => (await s.catch(() => undefined))?.close()));
  }
}
