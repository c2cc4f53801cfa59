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
import { access, lstat, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { OUTPUT_FILES } from '../shared/constants';
import type { DialogueRecord, FailureRecord, StoreResult } from '../run/schemas';
import {
  ForbiddenDirectoryError,
  openConfinedDirectory,
  resolveOutputRoot,
  type ConfinedDirectory,
} from './confine';
import { DirectoryLock, LOCK_HEARTBEAT_MS } from './directory-lock';
import { mergeJudgments, readLinesPage, type DialoguesPage } from './judgments';
import { JsonlFile } from './jsonl-file';
import { checkMarker, writeMarker } from './marker';

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
