import { resolve, sep } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import {
  dialogueRecordSchema,
  type StoreDialogueInput,
  type StoreFailuresInput,
  type StoreFailuresResult,
  type StoreResult,
} from '../shared/schemas';
import type { StoreRegistry } from '../storage/jsonl-store';

export const STORAGE_FAILURE_TYPES = {
  invalidRecord: 'Storage.InvalidRecord',
  forbiddenDir: 'Storage.ForbiddenDirectory',
} as const;

export interface StorageActivityOptions {
  /** When set, output directories must lie below it: workflow input cannot make a worker write elsewhere. */
  root?: string;
}

/**
 * Persists finished dialogues and failure records exactly once: the store skips ids it already holds,
 * so a retried or repeated activity never duplicates a line.
 */
export function createStorageActivities(storage: StoreRegistry, options: StorageActivityOptions = {}) {
  const open = (outDir: string) => {
    const dir = resolve(outDir);
    if (options.root && dir !== options.root && !dir.startsWith(options.root + sep)) {
      throw ApplicationFailure.nonRetryable(
        `${dir} is outside the worker's output root ${options.root}`,
        STORAGE_FAILURE_TYPES.forbiddenDir,
      );
    }
    return storage.get(dir);
  };
  return {
    async storeDialogue(input: StoreDialogueInput): Promise<StoreResult> {
      const parsed = dialogueRecordSchema.safeParse(input.record);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(
          `dialogue ${input.record.id} is malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
          STORAGE_FAILURE_TYPES.invalidRecord,
        );
      }
      const store = await open(input.outDir);
      return store.appendDialogue(parsed.data);
    },
    async storeFailures(input: StoreFailuresInput): Promise<StoreFailuresResult> {
      const store = await open(input.outDir);
      // The store commits concurrent appends in one write, so a batch costs one fsync.
      const results = await Promise.all(input.failures.map((failure) => store.appendFailure(failure)));
      const written = results.filter((r) => r.status === 'written').length;
      return { written, duplicates: results.length - written };
    },
  };
}
