/**
 * The intent's storage: finished dialogues go to the store by group commit, failures in batches, both
 * on the storage queue.
 */
import { condition, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { DialogueRecord, FailureRecord, RunConfig } from '../../run/schemas';
import { STORE_BATCH_BYTES, STORE_GROUP_MS, storeBatchLength, utf8Bytes } from '../budget';
import { PATCHES } from '../patches';
import { storageActivityOptions, storageQueueOf, storageSummary } from './options';

/** Most finished dialogues one storage activity carries; `STORE_BATCH_BYTES` bounds their bytes. */
export const STORE_BATCH = 50;

/** A refused record's reason, or whether the store already held it. */
export interface StoreOutcome {
  problem?: string;
  duplicate: boolean;
}

interface Queued {
  record: DialogueRecord;
  bytes: number;
  done: (outcome: StoreOutcome) => void;
  fail: (e: unknown) => void;
}

export interface IntentStorage {
  /** Resolves once the record's batch is stored, with a reason if the store refused the record. */
  store: (record: DialogueRecord) => Promise<StoreOutcome>;
  recordFailures: (failures: FailureRecord[]) => Promise<unknown>;
}

/**
 * Group commit of finished dialogues: while one storage activity runs, the dialogues finishing meanwhile
 * queue up and go together in the next one. At low throughput that is one record per activity and no
 * delay; at high throughput it saves most storage activities. With `groupCommit` (`store-group-window`),
 * a batch also waits up to `STORE_GROUP_MS` for more records while LLM calls are still finishing.
 */
export function intentStorage(
  config: RunConfig,
  groupCommit: boolean,
  llmCallsInFlight: () => number,
): IntentStorage {
  const options = storageActivityOptions(storageQueueOf(config));
  const storage = proxyActivities<Activities>(options);
  const queue: Queued[] = [];
  let storing = false;

  async function flush(): Promise<void> {
    storing = true;
    // One function, so `storing` turns false in the same microtask as the last look at the queue: a
    // record queued between the two (a dialogue stored in the activation that completed the previous
    // batch) would otherwise wait for a flush that never comes, and the intent would hang.
    try {
      while (queue.length > 0) {
        // While LLM calls are still finishing, let more records join this batch (a full one goes at once).
        if (groupCommit && queue.length < STORE_BATCH && llmCallsInFlight() > 0)
          await condition(() => queue.length >= STORE_BATCH || llmCallsInFlight() === 0, STORE_GROUP_MS);
        const byCount = Math.min(STORE_BATCH, queue.length);
        const byBytes = storeBatchLength(
          queue.map((q) => q.bytes),
          STORE_BATCH,
          STORE_BATCH_BYTES,
        );
        // Histories whose batches were cut by count only keep that path.
        const batch = queue.splice(
          0,
          byBytes < byCount && patched(PATCHES.storeBatchBytes) ? byBytes : byCount,
        );
        try {
          const records = batch.map((b) => b.record);
          const result = await storage.storeDialogues.executeWithOptions(
            storageSummary(
              options,
              'store',
              'dialogue',
              records.map((r) => r.id),
            ),
            [{ outDir: config.outDir, records }],
          );
          const invalid = new Map(result.invalid.map((i) => [i.id, i.reason]));
          const duplicates = new Set(result.duplicateIds ?? []);
          for (const b of batch)
            b.done({ problem: invalid.get(b.record.id), duplicate: duplicates.has(b.record.id) });
        } catch (error) {
          for (const b of batch) b.fail(error);
        }
      }
    } catch (error) {
      // Only a cancelled wait gets here: the records queued fail with it, so their dialogues end
      // (an unhandled rejection would fail every workflow task of a cancelled intent).
      for (const b of queue.splice(0)) b.fail(error);
    } finally {
      storing = false;
    }
  }

  return {
    store: (record) =>
      new Promise((done, fail) => {
        queue.push({ record, bytes: utf8Bytes(JSON.stringify(record)), done, fail });
        if (!storing) void flush();
      }),
    recordFailures: (failures) =>
      storage.storeFailures.executeWithOptions(
        storageSummary(
          options,
          'record',
          'failure',
          failures.map((f) => f.id),
        ),
        [{ outDir: config.outDir, failures }],
      ),
  };
}
