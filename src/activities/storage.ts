import { resolve, sep } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  dialogueRecordSchema,
  type DialogueRecord,
  type StoreDialoguesInput,
  type StoreDialoguesResult,
  type StoreFailuresInput,
  type StoreFailuresResult,
} from '../shared/schemas';
import { describeIssues } from '../method/replies';
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
    /** Appends a batch of finished dialogues; a malformed record is reported back, never written. */
    async storeDialogues(input: StoreDialoguesInput): Promise<StoreDialoguesResult> {
      const store = await open(input.outDir);
      const invalid: StoreDialoguesResult['invalid'] = [];
      const valid: DialogueRecord[] = [];
      for (const record of input.records) {
        const parsed = dialogueRecordSchema.safeParse(record);
        if (parsed.success) valid.push(parsed.data);
        else invalid.push({ id: record.id, reason: describeIssues(parsed.error) });
      }
      // Concurrent appends share one write and one fsync in the store.
      const results = await Promise.all(valid.map((record) => store.appendDialogue(record)));
      const written = results.filter((r) => r.status === 'written').length;
      const duplicates = results.length - written;
      // On a retry, a record found present was most likely written by the earlier attempt: only what
      // the first attempt finds was stored before this activity, and counts as a duplicate.
      const firstAttempt = !Context.current().info.attempt || Context.current().info.attempt === 1;
      const duplicateIds = firstAttempt
        ? valid.filter((_, i) => results[i]!.status === 'duplicate').map((r) => r.id)
        : [];
      return { written, duplicates, invalid, duplicateIds };
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
