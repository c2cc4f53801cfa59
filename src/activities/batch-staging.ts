/**
 * The batch files of an intent, under `<outDir>/.batch/<intent>/` (confined to the worker's output
 * root like the store): request files before upload, and the usable replies each batch brought, one
 * file per batch, rewritten whole by a retried activity. Workflows only ever see these files' names.
 */
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { openConfinedDirectory } from '../storage/confine';
import type { BatchStage } from '../run/batch';
import { BATCH_FAILURE_TYPES } from './errors';

export const STAGING_DIR = '.batch';

/** A reply kept for a later stage: the skeleton, or the responses, of one dialogue. */
export interface StagedReply<T> {
  index: number;
  value: T;
}

export interface Staging {
  write(name: string, text: string): Promise<void>;
  read(name: string): Promise<string>;
  /** Every staged reply of a stage, by dialogue index (a later file wins). */
  replies<T>(stage: BatchStage): Promise<Map<number, T>>;
  /** The replies one batch brought. */
  repliesOf<T>(stage: BatchStage, batchId: string): Promise<StagedReply<T>[]>;
  keep<T>(stage: BatchStage, batchId: string, replies: StagedReply<T>[]): Promise<void>;
  /** Removes a file; one already gone is no error (a retried activity removes it again). */
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

export const repliesFile = (stage: BatchStage, batchId: string) => `${stage}-${batchId}.jsonl`;

const parseLines = <T>(text: string): T[] =>
  text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);

/** Opens (creating) the intent's staging directory below `root`. */
export async function openStaging(
  root: string | undefined,
  outDir: string,
  intent: string,
): Promise<Staging> {
  if (!root)
    throw ApplicationFailure.nonRetryable(
      'batch mode needs the generation worker to hold the output root (run `consistent-chat worker` with storage)',
      BATCH_FAILURE_TYPES.noOutputRoot,
    );
  const dir = await openConfinedDirectory(root, join(outDir, STAGING_DIR, intent));
  const path = (name: string) => dir.child(name);
  const write = async (name: string, text: string) => {
    // Written aside and renamed: a crash mid-write never leaves half a file under the real name.
    await writeFile(path(`${name}.tmp`), text);
    await rename(path(`${name}.tmp`), path(name));
  };
  const read = (name: string) => readFile(path(name), 'utf8');
  const repliesOf = async <T>(stage: BatchStage, batchId: string) =>
    parseLines<StagedReply<T>>(await read(repliesFile(stage, batchId)));
  return {
    write,
    read,
    repliesOf,
    async replies<T>(stage: BatchStage) {
      const names = (await readdir(dir.child('.'))).filter(
        (n) => n.startsWith(`${stage}-`) && n.endsWith('.jsonl'),
      );
      const all = new Map<number, T>();
      for (const name of names.sort())
        for (const r of parseLines<StagedReply<T>>(await read(name))) all.set(r.index, r.value);
      return all;
    },
    keep: (stage, batchId, replies) =>
      write(repliesFile(stage, batchId), replies.map((r) => `${JSON.stringify(r)}\n`).join('')),
    remove: (name) => rm(path(name), { force: true }),
    // Paths are fd-relative: the directory stays open while they are used.
    close: () => dir.close(),
  };
}

/** Runs `use` with the intent's staging directory open. */
export async function withStaging<R>(
  root: string | undefined,
  outDir: string,
  intent: string,
  use: (staging: Staging) => Promise<R>,
): Promise<R> {
  const staging = await openStaging(root, outDir, intent);
  try {
    return await use(staging);
  } finally {
    await staging.close();
  }
}
