/**
 * One append-only JSON Lines file of a run's directory: the ids it holds (an `IdIndex`, saved beside
 * it as a checkpoint so an open reads only what came after), group commit of concurrent appends (one
 * write and one fsync per batch), and the repair of a torn last line on open.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreResult } from '../run/schemas';
import { ForbiddenDirectoryError, type ConfinedDirectory } from './confine';
import { IdIndex, type IdIndexSnapshot } from './id-index';

/** Bytes read at a time when indexing a file on open. */
const SCAN_CHUNK = 4 * 1024 * 1024;

/** How often the id index is saved beside its file while appending; an open reads only what came after. */
const CHECKPOINT_INTERVAL_MS = 30_000;
/** An open that had to read more than this saves the index at once. */
const CHECKPOINT_AFTER_SCAN_BYTES = 64 * 1024 * 1024;
const MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024;
/** How every line this store writes begins. */
const ID_HEAD = Buffer.from('{"id":"');

interface Pending {
  id: string;
  line: Buffer;
  resolve: (r: StoreResult) => void;
  reject: (e: unknown) => void;
}

/** One append-only JSON Lines file with an id index and group commit. */
export class JsonlFile {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Ids on disk or queued: a repeat resolves as a duplicate without touching the file. */
  private ids = new IdIndex();
  private readonly waiting = new Map<string, Promise<StoreResult>>();
  flushCount = 0;
  /** Bytes the last open read to index the file (all of it without a valid checkpoint). */
  scannedBytes = 0;
  private lastCheckpoint = Date.now();
  private checkpointing: Promise<void> | undefined;
  private ino = 0;
  /** Checked before each write: throws once this process no longer holds the directory's lock. */
  fence: () => Promise<void> = () => Promise.resolve();
  /** Where line numbers in messages count from, when an open resumed from a checkpoint. */
  private lineBase = '';

  private constructor(
    readonly path: string,
    private readonly dir: ConfinedDirectory,
    private readonly name: string,
    private readonly handle: FileHandle,
    private size: number,
    readonly fsync: boolean,
  ) {}

  /** Opens `name` inside `dir`, through the directory's descriptor and never through a symlink. */
  static async open(
    dir: ConfinedDirectory,
    name: string,
    fsync: boolean,
  ): Promise<{ file: JsonlFile; repairedBytes: number }> {
    const flags = fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW;
    let handle: FileHandle;
    try {
      handle = await open(dir.child(name), flags, 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP')
        throw new ForbiddenDirectoryError(
          `${join(dir.path, name)} is a symlink; refusing to write through it`,
        );
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new ForbiddenDirectoryError(`${join(dir.path, name)} is not a regular file`);
      const repairedBytes = await repairTail(handle, info.size);
      const file = new JsonlFile(join(dir.path, name), dir, name, handle, info.size - repairedBytes, fsync);
      file.ino = info.ino;
      const from = await file.loadCheckpoint();
      file.lineBase = from > 0 ? ` after byte ${from}` : '';
      await file.loadIds(from);
      file.scannedBytes = file.size - from;
      // A long scan is not repeated at the next open.
      if (file.scannedBytes > CHECKPOINT_AFTER_SCAN_BYTES) await file.checkpoint();
      return { file, repairedBytes };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Streams the file once, in large chunks, taking each line's id from its head: every line this store
   * writes starts with `{"id":"`, so the rest of a line is skipped at memchr speed instead of parsed.
   * A line of any other shape is parsed in full.
   */
  private async loadIds(from: number): Promise<void> {
    const chunk = Buffer.allocUnsafe(SCAN_CHUNK);
    let carry: Buffer | undefined;
    let line = 0;
    for (let offset = from; offset < this.size;) {
      const { bytesRead } = await this.handle.read(
        chunk,
        0,
        Math.min(chunk.length, this.size - offset),
        offset,
      );
      if (bytesRead === 0) break;
      offset += bytesRead;
      let start = 0;
      const data = chunk.subarray(0, bytesRead);
      if (carry) {
        const nl = data.indexOf(0x0a);
        if (nl === -1) {
          carry = Buffer.concat([carry, data]);
          continue;
        }
        this.indexLine(Buffer.concat([carry, data.subarray(0, nl)]), ++line);
        carry = undefined;
        start = nl + 1;
      }
      for (;;) {
        const nl = data.indexOf(0x0a, start);
        if (nl === -1) break;
        this.indexLine(data.subarray(start, nl), ++line);
        start = nl + 1;
      }
      if (start < data.length) carry = Buffer.from(data.subarray(start));
    }
    // The tail was repaired before: a remainder without newline cannot happen, but never drop it silently.
    if (carry) this.indexLine(carry, ++line);
  }

  /** The checkpoint file: the index as of some byte offset, so an open reads only what came after. */
  private get checkpointName(): string {
    return `.${this.name}.index`;
  }

  /**
   * Loads the saved index if it still describes this file (same inode, at most as long, and the bytes
   * just before its offset unchanged); returns the offset from which the file must still be read.
   */
  private async loadCheckpoint(): Promise<number> {
    let saved: Checkpoint;
    try {
      const handle = await open(
        this.dir.child(this.checkpointName),
        fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW,
      );
      try {
        if ((await handle.stat()).size > MAX_CHECKPOINT_BYTES) return 0;
        saved = JSON.parse(await handle.readFile('utf8')) as Checkpoint;
      } finally {
        await handle.close();
      }
    } catch {
      return 0; // none, unreadable or cut: read the whole file instead
    }
    if (saved.version !== 1 || saved.ino !== this.ino || !(saved.size <= this.size)) return 0;
    const tail = Buffer.from(saved.tail, 'base64');
    const actual = Buffer.alloc(tail.length);
    await this.handle.read(actual, 0, tail.length, saved.size - tail.length);
    if (!actual.equals(tail)) return 0;
    this.ids = IdIndex.restore(saved.index);
    return saved.size;
  }

  /**
   * Saves the index as of the bytes on disk now. Called between two batch writes only, so the ids on
   * disk are exactly the index minus those still queued.
   */
  private checkpoint(): Promise<void> {
    if (this.checkpointing) return this.checkpointing;
    this.lastCheckpoint = Date.now();
    const size = this.size;
    const index = this.ids.snapshot(this.queue.map((p) => p.id));
    const write = async () => {
      // A holder that lost its lock leaves the index to the new one (it would only be older).
      await this.fence();
      const tail = Buffer.alloc(Math.min(64, size));
      await this.handle.read(tail, 0, tail.length, size - tail.length);
      const saved: Checkpoint = { version: 1, ino: this.ino, size, tail: tail.toString('base64'), index };
      const temp = `${this.checkpointName}.${randomBytes(6).toString('hex')}.tmp`;
      const out = await open(
        this.dir.child(temp),
        fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
        0o644,
      );
      try {
        await out.writeFile(JSON.stringify(saved));
      } finally {
        await out.close();
      }
      // A checkpoint that is cut or stale is detected on load and ignored: no fsync needed for safety.
      await rename(this.dir.child(temp), this.dir.child(this.checkpointName)).catch(
        async (error: unknown) => {
          await unlink(this.dir.child(temp)).catch(() => undefined);
          throw error;
        },
      );
    };
    this.checkpointing = write()
      .catch(() => undefined) // only a speed-up: the file itself stays the truth
      .finally(() => (this.checkpointing = undefined));
    return this.checkpointing;
  }

  private indexLine(line: Buffer, n: number): void {
    if (line.length === 0) return;
    let id: unknown;
    if (line.subarray(0, ID_HEAD.length).equals(ID_HEAD)) {
      const end = line.indexOf(0x22, ID_HEAD.length);
      // No escape before the closing quote, and the field really ends there: the head alone is enough.
      if (
        end !== -1 &&
        !line.subarray(ID_HEAD.length, end).includes(0x5c) &&
        (line[end + 1] === 0x2c || line[end + 1] === 0x7d)
      )
        id = line.toString('utf8', ID_HEAD.length, end);
    }
    if (id === undefined) {
      try {
        id = (JSON.parse(line.toString('utf8')) as { id?: unknown }).id;
      } catch {
        throw new Error(
          `${this.path}: line ${n}${this.lineBase} is not valid JSON; fix or move the file before resuming`,
        );
      }
      if (typeof id !== 'string')
        throw new Error(`${this.path}: line ${n}${this.lineBase} has no string "id"`);
    }
    this.ids.add(id as string);
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
    // The id goes first, so that opening the file reads each line's head only (see `loadIds`).
    const text = JSON.stringify({ id, ...(record as object) });
    // JSON.stringify escapes newlines inside strings; this guards the one-record-per-line invariant.
    if (text.includes('\n')) return Promise.reject(new Error(`record ${id} would span lines`));
    const promise = new Promise<StoreResult>((resolvePromise, reject) => {
      this.queue.push({ id, line: Buffer.from(`${text}\n`), resolve: resolvePromise, reject });
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

  /** Bytes the id index holds. */
  indexBytes(): number {
    return this.ids.approximateBytes();
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
        await this.fence();
      } catch (error) {
        // Nothing written, and nothing cut: the file is another writer's now.
        for (const p of batch) p.reject(error);
        continue;
      }
      try {
        let written = 0;
        while (written < buffer.length) {
          const { bytesWritten } = await this.handle.write(buffer, written, buffer.length - written);
          written += bytesWritten;
        }
        if (this.fsync) await this.handle.datasync();
        this.size += buffer.length;
        this.flushCount++;
        for (const p of batch) p.resolve({ status: 'written', bytes: p.line.length });
        if (Date.now() - this.lastCheckpoint >= CHECKPOINT_INTERVAL_MS) void this.checkpoint();
      } catch (error) {
        // No half batch stays behind: cut the file back to where the batch began.
        await this.handle.truncate(before).catch(() => undefined);
        for (const p of batch) p.reject(error);
      }
    }
  }

  /** Writes queued or in progress. */
  get busy(): boolean {
    return this.queue.length > 0 || this.flushing !== undefined;
  }

  /** Resolves once every queued write is on disk. */
  async drained(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    try {
      while (this.flushing) await this.flushing;
      await this.checkpointing;
      await this.checkpoint();
    } finally {
      await this.handle.close();
    }
  }
}

interface Checkpoint {
  version: 1;
  ino: number;
  /** Bytes of the file the index covers. */
  size: number;
  /** The last bytes before `size`, to tell the same file from one rewritten since. */
  tail: string;
  index: IdIndexSnapshot;
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
