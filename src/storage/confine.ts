/**
 * Keeps a storage worker's writes inside its output root, whatever a workflow's `outDir` says.
 *
 * Why this is sound against symlinks, including one swapped in after a check: the root is resolved
 * once with `realpath`, then the output directory is reached one component at a time, each opened
 * *relative to the directory already open* (`/proc/self/fd/N/name`, Linux's equivalent of `openat`)
 * with `O_NOFOLLOW | O_DIRECTORY`, so no path is ever resolved twice and a symlink anywhere below the
 * root is refused rather than followed. The files of the run are then opened relative to the final
 * directory's descriptor too: renaming or replacing any path component later cannot redirect a write,
 * because nothing is looked up by its full path again. A store also checks, on every use, that the
 * path still names the directory it holds, and refuses once it does not.
 *
 * Where `/proc/self/fd` does not exist (macOS), the same walk runs on full paths with `lstat` before
 * and a device/inode comparison after each open: a race there is detected after the fact, not
 * prevented, which is why the cluster's storage worker is meant to run on Linux.
 */
import { constants as fsConstants, existsSync } from 'node:fs';
import { lstat, mkdir, open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { makeDirs } from './make-dirs';

/** An output directory a worker must not write to: outside its root, through a symlink, or not ours. */
export class ForbiddenDirectoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForbiddenDirectoryError';
  }
}

const FD_DIR = '/proc/self/fd';
const FD_RELATIVE = process.platform === 'linux' && existsSync(FD_DIR);
const DIR_FLAGS = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW;

/** An open output directory: files are named through its descriptor, never through its path. */
export interface ConfinedDirectory {
  /** The directory as the caller named it (resolved lexically). */
  readonly path: string;
  /** Its real path when it was opened. */
  readonly realPath: string;
  readonly handle: FileHandle;
  /** A path that names `name` inside this very directory (fd-relative where the platform allows). */
  child(name: string): string;
  /** True while `path` still names this directory (same device and inode, no symlink on the way). */
  stillAt(): Promise<boolean>;
  close(): Promise<void>;
}

/** Resolves an output root once: it must exist (it is created if missing) and be a directory. */
export async function resolveOutputRoot(root: string): Promise<string> {
  const dir = resolve(root);
  // Not mkdir's recursive mode: it loops forever under /proc (see make-dirs.ts).
  await makeDirs(dir);
  const real = await realpath(dir);
  if (!(await stat(real)).isDirectory()) throw new Error(`output root ${dir} is not a directory`);
  return real;
}

/**
 * True when a path relative to a root leaves it: absolute, or starting with a `..` segment. A name
 * that merely starts with two dots (`..x`) is a child like any other.
 */
function leaves(rel: string): boolean {
  return isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`);
}

/** True when `path` is `root` or below it, on resolved paths. */
export function isWithin(root: string, path: string): boolean {
  return !leaves(relative(root, path));
}

/**
 * Opens (creating as needed) `dir` below `root`, refusing a relative path, one outside the root and
 * any symlink below the root. `root` must already be a real path (see `resolveOutputRoot`).
 */
export async function openConfinedDirectory(root: string, dir: string): Promise<ConfinedDirectory> {
  if (!isAbsolute(dir)) throw new ForbiddenDirectoryError(`${dir} is not an absolute path`);
  const lexical = resolve(dir);
  // The caller may name the root through a symlink to it (e.g. /data → /mnt/data): compare both spellings.
  let rel = relative(root, lexical);
  if (leaves(rel)) {
    const parent = await realpathOfExistingPrefix(lexical);
    rel = relative(root, parent.real);
    rel = parent.rest ? join(rel, parent.rest) : rel;
  }
  if (leaves(rel)) {
    throw new ForbiddenDirectoryError(`${lexical} is outside the worker's output root ${root}`);
  }
  const parts = rel === '' ? [] : rel.split(sep);
  let handle = await open(root, DIR_FLAGS);
  let at = root;
  try {
    for (const part of parts) {
      at = join(at, part);
      const next = FD_RELATIVE ? `${FD_DIR}/${handle.fd}/${part}` : at;
      await mkdir(next).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      if (!FD_RELATIVE && (await lstat(at)).isSymbolicLink()) throw symlinkRefused(at, root);
      let opened: FileHandle;
      try {
        opened = await open(next, DIR_FLAGS);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // O_NOFOLLOW | O_DIRECTORY on a symlink fails with ELOOP or ENOTDIR, depending on the kernel.
        if (code === 'ELOOP' || code === 'ENOTDIR') throw symlinkRefused(at, root);
        throw error;
      }
      await handle.close();
      handle = opened;
    }
    const realPath = FD_RELATIVE ? await realpath(`${FD_DIR}/${handle.fd}`) : await realpath(at);
    if (!isWithin(root, realPath)) {
      throw new ForbiddenDirectoryError(
        `${lexical} resolves to ${realPath}, outside the output root ${root}`,
      );
    }
    const opened = handle;
    const own = await opened.stat();
    if (!FD_RELATIVE) {
      const named = await stat(realPath);
      if (named.dev !== own.dev || named.ino !== own.ino) throw symlinkRefused(at, root);
    }
    return {
      path: lexical,
      realPath,
      handle: opened,
      child: (name) => (FD_RELATIVE ? `${FD_DIR}/${opened.fd}/${name}` : join(realPath, name)),
      async stillAt() {
        try {
          const now = await stat(lexical);
          const real = await realpath(lexical);
          return now.dev === own.dev && now.ino === own.ino && isWithin(root, real);
        } catch {
          return false;
        }
      },
      close: () => opened.close(),
    };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

function symlinkRefused(at: string, root: string): ForbiddenDirectoryError {
  return new ForbiddenDirectoryError(
    `${at} is a symlink or not a directory; output directories below ${root} must be plain directories`,
  );
}

/** The real path of the longest existing prefix of `path`, and the part that does not exist yet. */
async function realpathOfExistingPrefix(path: string): Promise<{ real: string; rest: string }> {
  let existing = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return { real: await realpath(existing), rest: rest.reverse().join(sep) };
    } catch {
      const up = resolve(existing, '..');
      if (up === existing) return { real: existing, rest: rest.reverse().join(sep) };
      rest.push(existing.slice(up.length).replace(/^\//, ''));
      existing = up;
    }
  }
}
