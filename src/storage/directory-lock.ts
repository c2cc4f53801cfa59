/**
 * One writer per output directory: the lock file, its heartbeat, the take-over of a dead holder's
 * lock, and the fence every write passes (`check`) once another process may have taken it over.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { alive } from '../shared/process';
import { ForbiddenDirectoryError, type ConfinedDirectory } from './confine';
import { createExclusive, readSmall } from './small-files';

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

/**
 * The directory's lock is held by a live process on this host. Its `name` stays `Error`, so the failure
 * type an activity reports for it is the one it always was.
 */
export class DirectoryInUseError extends Error {}

export const LOCK_FILE = '.lock';
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
export class DirectoryLock {
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
        throw new DirectoryInUseError(
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
