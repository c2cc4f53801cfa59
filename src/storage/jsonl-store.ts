/**
 * The durable, exactly-once writer of a run's output directory. A storage activity may run twice for
 * the same dialogue (a worker can die after writing but before reporting), and any process may be
 * killed mid-write, so the store: keeps the ids each file already holds (in a bitset per intent, see
 * `IdIndex`) and skips repeats; appends only whole lines, committing concurrent appends in one write
 * and one fsync; cuts a torn last line on open, reading backwards from the end only; and locks the
 * directory against a second writer. It writes only inside its output root (see `confine.ts`) and
 * only to directories it created or marked.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import {
  access,
  link,
  lstat,
  mkdir,
  open,
  readFile,
  rename,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { OUTPUT_FILES } from '../shared/constants';
import { alive } from '../shared/process';
import type { DialogueRecord, FailureRecord, StoreResult } from '../run/schemas';
import {
  ForbiddenDirectoryError,
  openConfinedDirectory,
  resolveOutputRoot,
  type ConfinedDirectory,
} from './confine';
import { IdIndex, type IdIndexSnapshot } from './id-index';
import { mergeJudgments, readLinesPage, type DialoguesPage } from './judgments';

export { ForbiddenDirectoryError };

/**
 * This process no longer holds the output directory's lock: another one took it over (it judged this
 * holder dead, e.g. after a long pause), so this one must not write there again.
 */
export class LockLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockLostError';
  }
}

export interface JsonlStoreOptions {
  /** fsync each commit; benchmarks of the orchestration alone may turn it off. @default true */
  fsync?: boolean;
  /**
   * Every output directory must lie below this one, on real paths.
   * @default the output directory itself (for a store opened directly)
   */
  root?: string;
  /** The run whose output the directory holds: a directory marked for another run is refused. */
  runId?: string;
  /**
   * The one directory whose output files may be adopted without the marker (written before the
   * marker existed, and named by its owner on the command line). @default none
   */
  adopt?: string;
  /** How often the directory lock's mtime is refreshed. @default LOCK_HEARTBEAT_MS */
  lockHeartbeatMs?: number;
  /**
   * A `StoreRegistry` closes a store nobody asked for or wrote to for this long (its handles, timers,
   * id indexes and lock), so a long-lived worker does not keep every finished run open; the next write
   * opens it again. @default STORE_IDLE_CLOSE_MS
   */
  idleCloseMs?: number;
}

export const DEFAULT_JSONL_STORE_OPTIONS = { fsync: true } as const;

/** Bytes read at a time when indexing a file on open. */
const SCAN_CHUNK = 4 * 1024 * 1024;
/** See `JsonlStoreOptions.idleCloseMs`: long enough that a paused run's store stays open for a while. */
export const STORE_IDLE_CLOSE_MS = 5 * 60_000;

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
class JsonlFile {
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

/** A file `JsonlStore.writeSideFiles` writes: its path inside the run's directory and its text. */
export interface SideFile {
  name: string;
  text: string;
  ifAbsent?: boolean;
}

export class JsonlStore {
  /** Bytes cut from torn last lines when the store was opened. */
  readonly repairedBytes: number;
  private closed = false;

  private constructor(
    private readonly directory: ConfinedDirectory,
    private readonly lock: DirectoryLock,
    private dialogues: JsonlFile,
    private failures: JsonlFile,
    repairedBytes: number,
    /** The run the directory's marker names. */
    readonly runId: string | undefined,
    private readonly fsync: boolean = DEFAULT_JSONL_STORE_OPTIONS.fsync,
  ) {
    this.repairedBytes = repairedBytes;
  }

  get dir(): string {
    return this.directory.path;
  }

  /**
   * Opens `dir` for writing: below `options.root` (the directory itself by default), created if
   * missing, locked against other writers, and only if it is empty or carries this package's marker.
   */
  static async open(dir: string, options: JsonlStoreOptions = {}): Promise<JsonlStore> {
    const { fsync } = { ...DEFAULT_JSONL_STORE_OPTIONS, ...options };
    const absolute = resolve(dir);
    let directory: ConfinedDirectory;
    try {
      const root = await resolveOutputRoot(options.root ?? absolute);
      directory = await openConfinedDirectory(root, absolute);
    } catch (error) {
      if (error instanceof ForbiddenDirectoryError) throw error;
      throw new Error(
        `cannot write to output directory ${absolute}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    try {
      await access(directory.child('.'), fsConstants.W_OK).catch((error: NodeJS.ErrnoException) => {
        throw new Error(`cannot write to output directory ${absolute}: ${error.code ?? String(error)}`);
      });
      // Read-only check first, so a directory that is not ours gets no lock file either.
      const adopt = options.adopt !== undefined && resolve(options.adopt) === absolute;
      await checkMarker(directory, options.runId, adopt);
      const lock = await DirectoryLock.take(directory, options.lockHeartbeatMs ?? LOCK_HEARTBEAT_MS);
      try {
        const runId = await writeMarker(directory, options.runId, adopt);
        const d = await JsonlFile.open(directory, OUTPUT_FILES.dialogues, fsync);
        const f = await JsonlFile.open(directory, OUTPUT_FILES.failures, fsync).catch(
          async (error: unknown) => {
            await d.file.close();
            throw error;
          },
        );
        // Every write first checks that the lock is still ours (one lstat), so a holder that was taken
        // over stops instead of writing beside the new one.
        d.file.fence = f.file.fence = () => lock.check();
        return new JsonlStore(
          directory,
          lock,
          d.file,
          f.file,
          d.repairedBytes + f.repairedBytes,
          runId,
          fsync,
        );
      } catch (error) {
        await lock.release();
        throw error;
      }
    } catch (error) {
      await directory.close().catch(() => undefined);
      throw error;
    }
  }

  /** Refuses once the path no longer names the directory this store holds (swapped for a symlink, moved). */
  async checkStillAt(): Promise<void> {
    if (!(await this.directory.stillAt())) {
      throw new ForbiddenDirectoryError(
        `${this.dir} no longer names the directory this worker opened (replaced or moved); refusing to write`,
      );
    }
  }

  /** True once another process took this store's directory lock over; every append then fails. */
  get lockLost(): boolean {
    return this.lock.lost;
  }

  /** When this store last took an append, in ms since the epoch. */
  lastAppendAt = Date.now();

  /** Appends queued or being written. */
  get busy(): boolean {
    return this.dialogues.busy || this.failures.busy;
  }

  appendDialogue(record: DialogueRecord): Promise<StoreResult> {
    return this.appendTo(this.dialogues, record.id, record);
  }

  appendFailure(failure: FailureRecord): Promise<StoreResult> {
    return this.appendTo(this.failures, failure.id, failure);
  }

  private topics: Promise<JsonlFile> | undefined;

  /** A leaf of the run's topic tree, in `topics.jsonl`: opened on first use (most runs expand nothing). */
  async appendTopic(
    id: string,
    leaf: { intent: string; topic: string; path: string[] },
  ): Promise<StoreResult> {
    this.topics ??= JsonlFile.open(this.directory, OUTPUT_FILES.topics, this.fsync).then(({ file }) => {
      file.fence = () => this.lock.check();
      return file;
    });
    return this.appendTo(await this.topics, id, leaf);
  }

  private appendTo(file: JsonlFile, id: string, record: unknown): Promise<StoreResult> {
    if (this.closed) return Promise.reject(new Error(`the store of ${this.dir} is closed`));
    this.lastAppendAt = Date.now();
    return file.append(id, record);
  }

  has(id: string): boolean {
    return this.dialogues.has(id);
  }

  /**
   * A retry's outcome (`generate --retry-failed`): failures.jsonl without the records of `retried`,
   * then `failedAgain`. Written beside the file and renamed over it, so a crash leaves the old file or
   * the new one, and the same call again gives the same file. Returns the failures left.
   */
  async replaceFailures(retried: ReadonlySet<string>, failedAgain: FailureRecord[]): Promise<number> {
    if (this.closed) throw new Error(`the store of ${this.dir} is closed`);
    await this.failures.drained();
    await this.lock.check();
    const name = OUTPUT_FILES.failures;
    const kept = (await readFile(this.directory.child(name), 'utf8'))
      .split('\n')
      .filter((line) => line.length > 0 && !retried.has((JSON.parse(line) as { id: string }).id));
    const added = failedAgain.map((f) => JSON.stringify({ ...f }));
    const temp = `${name}.${randomBytes(6).toString('hex')}.tmp`;
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
    const out = await open(this.directory.child(temp), flags, 0o644);
    try {
      await out.writeFile([...kept, ...added].map((line) => `${line}\n`).join(''));
      await out.datasync();
    } finally {
      await out.close();
    }
    await rename(this.directory.child(temp), this.directory.child(name));
    // The open file is the old one now: index the new one and append to it from here on.
    const previous = this.failures;
    const { file } = await JsonlFile.open(this.directory, name, previous.fsync);
    file.fence = () => this.lock.check();
    this.failures = file;
    await previous.close();
    return kept.length + added.length;
  }

  /**
   * Writes files beside the records (summary.json, run.json, the method copies), each atomically and
   * only while this store holds the directory's lock; an `ifAbsent` file already there is left as it is.
   * Returns the names written.
   */
  async writeSideFiles(files: readonly SideFile[]): Promise<string[]> {
    if (this.closed) throw new Error(`the store of ${this.dir} is closed`);
    const written: string[] = [];
    for (const { name, text, ifAbsent } of files) {
      if (name.split('/').some((part) => part === '..' || part === '') || isAbsolute(name))
        throw new Error(`${name}: not a file name inside the run's directory`);
      const path = this.directory.child(name);
      if (
        ifAbsent &&
        (await lstat(path).then(
          () => true,
          () => false,
        ))
      )
        continue;
      await mkdir(dirname(path), { recursive: true });
      await this.lock.check();
      const temp = this.directory.child(`${name}.${randomBytes(6).toString('hex')}.tmp`);
      const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
      const out = await open(temp, flags, 0o644);
      try {
        await out.writeFile(text);
      } finally {
        await out.close();
      }
      await rename(temp, path);
      written.push(name);
    }
    return written;
  }

  private judgments: Promise<JsonlFile> | undefined;

  /** `judge DIR`'s verdicts, `judgments.jsonl`: opened on first use, exactly once per dialogue id. */
  private judgmentsFile(): Promise<JsonlFile> {
    this.judgments ??= JsonlFile.open(this.directory, OUTPUT_FILES.judgments, this.fsync).then(({ file }) => {
      file.fence = () => this.lock.check();
      return file;
    });
    return this.judgments;
  }

  async hasJudgment(id: string): Promise<boolean> {
    return (await this.judgmentsFile()).has(id);
  }

  /** A verdict for the record on `line` of dialogs.jsonl; a second one for the same id is skipped. */
  async appendJudgment(id: string, line: number, judge: unknown): Promise<StoreResult> {
    return this.appendTo(await this.judgmentsFile(), id, { id, line, judge });
  }

  /** Whole lines of dialogs.jsonl from `from` (a line start, e.g. a page's `next`). */
  async readDialoguesPage(from: { line: number; byte: number }, maxLines: number): Promise<DialoguesPage> {
    if (this.closed) throw new Error(`the store of ${this.dir} is closed`);
    await this.dialogues.drained();
    const handle = await open(
      this.directory.child(OUTPUT_FILES.dialogues),
      fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW,
    );
    try {
      return await readLinesPage(handle, from, maxLines);
    } finally {
      await handle.close();
    }
  }

  /**
   * Merges judgments.jsonl into dialogs.jsonl (see `mergeJudgments`) and removes it and its index;
   * without a judgments.jsonl (merged before) nothing changes. Returns the records given a verdict.
   */
  async applyJudgments(): Promise<number> {
    if (this.closed) throw new Error(`the store of ${this.dir} is closed`);
    const judgments = await this.judgmentsFile();
    await judgments.drained();
    await this.dialogues.drained();
    await this.lock.check();
    const names = { dialogues: OUTPUT_FILES.dialogues, judgments: OUTPUT_FILES.judgments };
    // Nothing to merge (all merged before, or nothing judged): dialogs.jsonl is not copied for nothing.
    const merged = judgments.count === 0 ? 0 : await mergeJudgments(this.directory, names);
    if (merged > 0) {
      // The open file is the old one now: index the new one and append to it from here on.
      const previous = this.dialogues;
      const { file } = await JsonlFile.open(this.directory, OUTPUT_FILES.dialogues, previous.fsync);
      file.fence = () => this.lock.check();
      this.dialogues = file;
      await previous.close();
    }
    this.judgments = undefined;
    await judgments.close();
    for (const name of [OUTPUT_FILES.judgments, `.${OUTPUT_FILES.judgments}.index`])
      await unlink(this.directory.child(name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    return merged;
  }

  stats(): { dialogues: number; failures: number } {
    return { dialogues: this.dialogues.count, failures: this.failures.count };
  }

  /** Bytes the open read to index the files: only what came after their saved index, if it was valid. */
  get scannedBytes(): number {
    return this.dialogues.scannedBytes + this.failures.scannedBytes;
  }

  /** Bytes the id indexes of both files hold. */
  indexBytes(): number {
    return this.dialogues.indexBytes() + this.failures.indexBytes();
  }

  /** Write batches so far (each one write and one fsync), across both files. */
  get flushCount(): number {
    return this.dialogues.flushCount + this.failures.flushCount;
  }

  /** Releases everything it holds, each step even when an earlier one threw; throws the first error. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const errors: unknown[] = [];
    for (const step of [
      () => this.dialogues.close(),
      () => this.failures.close(),
      async () => (this.topics ? (await this.topics).close() : undefined),
      async () => (this.judgments ? (await this.judgments).close() : undefined),
      () => this.lock.release(),
      () => this.directory.close(),
    ])
      await step().catch((error: unknown) => errors.push(error));
    if (errors.length > 0) throw errors[0];
  }
}

/** Marks a directory as this package's output; a directory without it is never adopted. */
export const MARKER_FILE = '.consistent-chat';
const MARKER_FORMAT = 'consistent-chat-output/1';

interface Marker {
  format: typeof MARKER_FORMAT;
  runId?: string;
  createdAt: string;
}

async function readSmall(dir: ConfinedDirectory, name: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(dir.child(name), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new ForbiddenDirectoryError(`${join(dir.path, name)} is a symlink`);
    throw error;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > 64 * 1024)
      throw new ForbiddenDirectoryError(`${join(dir.path, name)} is not a file this package writes`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function nonEmpty(dir: ConfinedDirectory, name: string): Promise<boolean> {
  try {
    const info = await lstat(dir.child(name));
    return info.size > 0 || info.isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * A directory is ours when it carries our marker (for the same run, when the run is known), or when
 * it holds none of the files this store writes. `adopt` accepts unmarked files (directories written
 * before the marker existed, named by their owner on the command line).
 */
async function checkMarker(
  dir: ConfinedDirectory,
  runId: string | undefined,
  adopt: boolean,
  lockHeld = false,
): Promise<void> {
  const text = await readSmall(dir, MARKER_FILE);
  if (text !== undefined) {
    let marker: Partial<Marker>;
    try {
      marker = JSON.parse(text) as Partial<Marker>;
    } catch {
      marker = {};
    }
    if (marker.format !== MARKER_FORMAT)
      throw new ForbiddenDirectoryError(`${join(dir.path, MARKER_FILE)} was not written by this package`);
    if (runId && marker.runId && marker.runId !== runId)
      throw new ForbiddenDirectoryError(
        `${dir.path} holds the output of run ${marker.runId}, not ${runId}; use another directory`,
      );
    return;
  }
  if (adopt) return;
  const names = [OUTPUT_FILES.dialogues, OUTPUT_FILES.failures, ...(lockHeld ? [] : [LOCK_FILE])];
  for (const name of names) {
    if (await nonEmpty(dir, name)) {
      throw new ForbiddenDirectoryError(
        `${join(dir.path, name)} was not written by this package (no ${MARKER_FILE} marker); refusing to adopt it`,
      );
    }
  }
}

/** Writes the marker if it is missing (atomically: a reader sees no file or a whole one). */
async function writeMarker(
  dir: ConfinedDirectory,
  runId: string | undefined,
  adopt: boolean,
): Promise<string | undefined> {
  await checkMarker(dir, runId, adopt, true); // again, now that we hold the lock
  const text = await readSmall(dir, MARKER_FILE);
  if (text !== undefined) return (JSON.parse(text) as Marker).runId ?? runId;
  const marker: Marker = { format: MARKER_FORMAT, runId, createdAt: new Date().toISOString() };
  if (!(await createExclusive(dir, MARKER_FILE, JSON.stringify(marker)))) {
    // Lost a race with another creator: theirs must be ours too.
    await checkMarker(dir, runId, false, true);
  }
  return runId;
}

/**
 * Creates `name` with `content` atomically: the content is written and synced to a private temporary
 * file, which is then hard-linked to `name` (link fails if `name` exists, like O_EXCL, but the file
 * appears with its content already in place). False when `name` already exists.
 */
async function createExclusive(dir: ConfinedDirectory, name: string, content: string): Promise<boolean> {
  const temp = `${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(
    dir.child(temp),
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
    0o644,
  );
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(dir.child(temp), dir.child(name));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(dir.child(temp)).catch(() => undefined);
  }
}

const LOCK_FILE = '.lock';
/** How often a holder touches its lock; a lock from another host untouched for `LOCK_STALE_MS` is dead. */
export const LOCK_HEARTBEAT_MS = 10_000;
export const LOCK_STALE_MS = 60_000;

interface LockContent {
  pid: number;
  hostname: string;
  token: string;
  startedAt: string;
}

/**
 * One writer per directory. The lock is created atomically with its content (see `createExclusive`);
 * a live holder on this host (its pid answers) or on another host (it refreshes the lock's mtime every
 * `LOCK_HEARTBEAT_MS`) wins; a dead holder's lock is taken over; a lock this package cannot read is
 * never overwritten.
 */
class DirectoryLock {
  private heartbeat: NodeJS.Timeout | undefined;
  lost = false;

  private constructor(
    private readonly dir: ConfinedDirectory,
    private readonly content: string,
    /**
     * Kept open while held: it pins the lock file's inode, so no new file can get its number and
     * (dev, ino) of the path tell our lock from a new holder's with one lstat; the heartbeat touches
     * this inode, never whatever the path names now.
     */
    private readonly handle: FileHandle,
    private readonly dev: number,
    private readonly ino: number,
  ) {}

  static async take(dir: ConfinedDirectory, heartbeatMs: number): Promise<DirectoryLock> {
    const mine: LockContent = {
      pid: process.pid,
      hostname: hostname(),
      token: randomBytes(8).toString('hex'),
      startedAt: new Date().toISOString(),
    };
    const content = JSON.stringify(mine);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await createExclusive(dir, LOCK_FILE, content)) {
        const lock = await DirectoryLock.hold(dir, content);
        if (!lock) continue; // taken over between creating and opening it: try again
        lock.startHeartbeat(heartbeatMs);
        return lock;
      }
      const text = await readSmall(dir, LOCK_FILE);
      if (text === undefined) continue; // released meanwhile
      let holder: Partial<LockContent>;
      try {
        holder = JSON.parse(text) as Partial<LockContent>;
      } catch {
        holder = {};
      }
      if (typeof holder.pid !== 'number') {
        throw new ForbiddenDirectoryError(
          `${join(dir.path, LOCK_FILE)} is not a lock this package wrote; remove it if nothing else writes to ${dir.path}`,
        );
      }
      const sameHost = !holder.hostname || holder.hostname === hostname();
      if (sameHost && holder.pid !== process.pid && alive(holder.pid)) {
        throw new Error(
          `output directory ${dir.path} is in use by process ${holder.pid}; stop it or use another directory`,
        );
      }
      if (!sameHost) {
        const age = Date.now() - (await lstat(dir.child(LOCK_FILE))).mtimeMs;
        if (age < LOCK_STALE_MS)
          throw new Error(`output directory ${dir.path} is locked by ${holder.hostname} (pid ${holder.pid})`);
      }
      await takeOver(dir, text);
    }
    throw new Error(`output directory ${dir.path}: could not take its lock (contended)`);
  }

  /** Opens the lock file just created, if it still holds `content`. */
  private static async hold(dir: ConfinedDirectory, content: string): Promise<DirectoryLock | undefined> {
    const handle = await open(dir.child(LOCK_FILE), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const info = await handle.stat();
      if ((await handle.readFile('utf8')) === content)
        return new DirectoryLock(dir, content, handle, info.dev, info.ino);
    } catch (error) {
      await handle.close();
      throw error;
    }
    await handle.close();
    return undefined;
  }

  /** Throws `LockLostError` once the lock path names another file than ours (taken over, or removed). */
  async check(): Promise<void> {
    if (!this.lost) {
      const info = await lstat(this.dir.child(LOCK_FILE)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (info && info.dev === this.dev && info.ino === this.ino) return;
      this.lost = true;
      clearInterval(this.heartbeat);
    }
    throw new LockLostError(
      `output directory ${this.dir.path}: this process (pid ${process.pid} on ${hostname()}) lost its lock (another writer took it over, judging this one dead after ${LOCK_STALE_MS / 1000} s without a heartbeat, or the lock file was removed); stopped writing there`,
    );
  }

  private startHeartbeat(heartbeatMs: number): void {
    // Refreshing the mtime keeps the lock alive for processes on other hosts, which cannot see our pid.
    // Only while the path still names our lock, and through our own descriptor.
    this.heartbeat = setInterval(() => {
      const now = new Date();
      void this.check()
        .then(() => this.handle.utimes(now, now))
        .catch(() => undefined);
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  async release(): Promise<void> {
    clearInterval(this.heartbeat);
    try {
      // Only our own lock is removed: a lock taken over meanwhile (we looked dead) belongs to its new holder.
      if (!this.lost && (await readSmall(this.dir, LOCK_FILE).catch(() => undefined)) === this.content)
        await unlink(this.dir.child(LOCK_FILE)).catch(() => undefined);
    } finally {
      await this.handle.close().catch(() => undefined);
    }
  }
}

/**
 * Removes a dead holder's lock, but only the very lock judged dead: it is first renamed aside (atomic,
 * so of two processes taking over at once only one moves it), then compared; a lock that changed in
 * between (a live taker's) is put back with `link`, which never replaces a newer one.
 */
async function takeOver(dir: ConfinedDirectory, judged: string): Promise<void> {
  const aside = `${LOCK_FILE}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    await rename(dir.child(LOCK_FILE), dir.child(aside));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await readSmall(dir, aside).catch(() => undefined);
  if (moved !== judged) await link(dir.child(aside), dir.child(LOCK_FILE)).catch(() => undefined);
  await unlink(dir.child(aside)).catch(() => undefined);
}

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
