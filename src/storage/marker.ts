/**
 * The marker that makes a directory this package's output (for one run): a directory without it is
 * adopted only when it holds none of the files the store writes, or when its owner names it.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { OUTPUT_FILES } from '../shared/constants';
import { ForbiddenDirectoryError, type ConfinedDirectory } from './confine';
import { LOCK_FILE } from './directory-lock';
import { createExclusive, readSmall } from './small-files';

/** Marks a directory as this package's output; a directory without it is never adopted. */
export const MARKER_FILE = '.consistent-chat';
const MARKER_FORMAT = 'consistent-chat-output/1';

interface Marker {
  format: typeof MARKER_FORMAT;
  runId?: string;
  createdAt: string;
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
export async function checkMarker(
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
export async function writeMarker(
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
