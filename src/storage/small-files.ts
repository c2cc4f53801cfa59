/**
 * The small files that guard a run's directory (its marker, its lock): read with a size bound and never
 * through a symlink, created atomically with their content.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ForbiddenDirectoryError, type ConfinedDirectory } from './confine';

/** A file of at most 64 KiB, or undefined when there is none; a symlink or anything else is refused. */
export async function readSmall(dir: ConfinedDirectory, name: string): Promise<string | undefined> {
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

/**
 * Creates `name` with `content` atomically: the content is written and synced to a private temporary
 * file, which is then hard-linked to `name` (link fails if `name` exists, like O_EXCL, but the file
 * appears with its content already in place). False when `name` already exists.
 */
export async function createExclusive(
  dir: ConfinedDirectory,
  name: string,
  content: string,
): Promise<boolean> {
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
