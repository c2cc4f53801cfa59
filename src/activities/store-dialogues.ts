/**
 * The run's records: finished dialogues (from the workflow, or built here from a batch's staged
 * replies) and failure records, each written exactly once; and failures.jsonl rewritten after a retry.
 */
import { Context } from '@temporalio/activity';
import type { StoredDialogueRecord } from '../export/records';
import { toDialogueRecord } from '../method/dialogue';
import { dialogueMetrics } from '../method/metrics';
import { describeIssues } from '../method/replies';
import type { DialogueRecord, Skeleton } from '../method/types';
import type { StoreBatchDialoguesInput } from '../run/batch';
import {
  dialogueRecordSchema,
  type SettleRetryInput,
  type StoreDialoguesInput,
  type StoreDialoguesResult,
  type StoreFailuresInput,
  type StoreFailuresResult,
} from '../run/schemas';
import type { StoreRegistry } from '../storage/jsonl-store';
import { planOf } from './batch-lines';
import { withStaging } from './batch-staging';
import { toStorageFailure } from './errors';
import type { PackageMetrics } from './metrics';
import { appendAll, bytesOf, runOf, storeOpener, writtenByIntent, type OpenStore } from './store-open';

/** Dialogues and failures, stored exactly once: the store skips ids it already holds. */
export function createRecordStorage(storage: StoreRegistry, metrics?: PackageMetrics) {
  const open = storeOpener(storage);
  const storeDialogues = dialogueStorer(open, metrics);
  return {
    storeDialogues: (input: StoreDialoguesInput) => storeDialogues(input),
    storeBatchDialogues: batchDialogueStorer(storage.root, storeDialogues),
    storeFailures: failureStorer(open, metrics),
    settleRetry: retrySettler(open),
  };
}

/**
 * Appends a batch of finished dialogues, each with its `metrics` computed here (pure and cheap, so
 * a retry writes the same line, and the workflow's payloads and history do not grow); a malformed
 * record is reported back, never written.
 */
function dialogueStorer(open: OpenStore, metrics: PackageMetrics | undefined) {
  return async function storeDialogues(input: StoreDialoguesInput): Promise<StoreDialoguesResult> {
    const store = await open(
      input.outDir,
      input.records.map((r) => r.id),
    );
    const invalid: StoreDialoguesResult['invalid'] = [];
    const valid: StoredDialogueRecord[] = [];
    for (const record of input.records) {
      const parsed = dialogueRecordSchema.safeParse(record);
      if (parsed.success) valid.push({ ...parsed.data, metrics: dialogueMetrics(parsed.data.conversation) });
      else invalid.push({ id: record.id, reason: describeIssues(parsed.error) });
    }
    // Concurrent appends share one write and one fsync in the store.
    const results = await appendAll(valid.map((record) => store.appendDialogue(record)));
    metrics?.stored(
      'dialogues',
      runOf(valid.map((r) => r.id)) ?? '',
      writtenByIntent(valid, results),
      bytesOf(results),
    );
    const written = results.filter((r) => r.status === 'written').length;
    const duplicates = results.length - written;
    // On a retry, a record found present was most likely written by the earlier attempt: only what
    // the first attempt finds was stored before this activity, and counts as a duplicate.
    const firstAttempt = !Context.current().info.attempt || Context.current().info.attempt === 1;
    const duplicateIds = firstAttempt
      ? valid.filter((_, i) => results[i]!.status === 'duplicate').map((r) => r.id)
      : [];
    return { written, duplicates, invalid, duplicateIds };
  };
}

/**
 * Stores the dialogues whose responses one batch brought: their records are built here from the
 * staged skeletons and responses (src/activities/batch-staging.ts), so no payload passes through
 * the workflow; the store skips ids it holds, so a retry or a resumed run writes each line once.
 */
function batchDialogueStorer(root: string, storeDialogues: ReturnType<typeof dialogueStorer>) {
  return async function storeBatchDialogues(input: StoreBatchDialoguesInput): Promise<StoreDialoguesResult> {
    const records = await batchRecords(root, input).catch((error: unknown) => {
      throw toStorageFailure(error);
    });
    return storeDialogues({ outDir: input.outDir, records });
  };
}

/** The records of the dialogues whose responses one batch brought, from the staged files. */
function batchRecords(root: string, input: StoreBatchDialoguesInput): Promise<DialogueRecord[]> {
  return withStaging(root, input.outDir, input.intent, async (staging) => {
    const skeletons = await staging.replies<Skeleton>('skeleton');
    const replies = await staging.repliesOf<{ responses: string[] }>('responses', input.batchId);
    return replies.flatMap(({ index, value }) => {
      const skeleton = skeletons.get(index);
      if (!skeleton) return [];
      const plan = planOf(input, index);
      const {
        model,
        plan: { taxonomy },
      } = input;
      return [toDialogueRecord({ plan, skeleton, responses: value.responses, model, taxonomy })];
    });
  });
}

function failureStorer(open: OpenStore, metrics: PackageMetrics | undefined) {
  return async function storeFailures(input: StoreFailuresInput): Promise<StoreFailuresResult> {
    const store = await open(
      input.outDir,
      input.failures.map((f) => f.id),
    );
    // The store commits concurrent appends in one write, so a batch costs one fsync.
    const results = await appendAll(input.failures.map((failure) => store.appendFailure(failure)));
    metrics?.stored(
      'failures',
      runOf(input.failures.map((f) => f.id)) ?? '',
      writtenByIntent(input.failures, results),
      bytesOf(results),
    );
    const duplicateIds = input.failures.filter((_, i) => results[i]!.status === 'duplicate').map((f) => f.id);
    return { written: results.length - duplicateIds.length, duplicates: duplicateIds.length, duplicateIds };
  };
}

/** Rewrites failures.jsonl after a retry: see `JsonlStore.replaceFailures`. */
function retrySettler(open: OpenStore) {
  return async function settleRetry(input: SettleRetryInput): Promise<{ failures: number }> {
    const store = await open(input.outDir, input.retried);
    try {
      return { failures: await store.replaceFailures(new Set(input.retried), input.failedAgain) };
    } catch (error) {
      throw toStorageFailure(error);
    }
  };
}
