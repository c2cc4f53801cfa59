/**
 * What the storage activities share: opening a run's store (its refusals mapped to `Storage.*`
 * failures) and counting what a batch of appends wrote.
 */
import type { StoreResult } from '../run/schemas';
import type { JsonlStore, StoreRegistry } from '../storage/jsonl-store';
import { toStorageFailure } from './errors';

/** The run of a batch, from its ids (`<runId>.<intent>.<index>`), so a directory holds one run only. */
export function runOf(ids: string[]): string | undefined {
  const first = ids[0];
  if (first === undefined) return undefined;
  const parts = first.split('.');
  if (parts.length < 3) return undefined;
  const runId = parts.slice(0, -2).join('.');
  return ids.every((id) => id.startsWith(`${runId}.`)) ? runId : undefined;
}

export type OpenStore = (outDir: string, ids: string[]) => Promise<JsonlStore>;

/** Opens the store of `outDir` for the run the ids name; a refusal is a `Storage.*` failure. */
export function storeOpener(storage: StoreRegistry): OpenStore {
  return async (outDir, ids) => {
    try {
      return await storage.get(outDir, runOf(ids));
    } catch (error) {
      throw toStorageFailure(error);
    }
  };
}

/** Records newly written, by intent id (from `<runId>.<intent>.<index>`: a bounded label, unlike the id). */
export function writtenByIntent(
  records: readonly { id: string }[],
  results: readonly StoreResult[],
): Map<string, number> {
  const counts = new Map<string, number>();
  records.forEach((r, i) => {
    const intent = r.id.split('.').at(-2) ?? '';
    if (results[i]?.status === 'written') counts.set(intent, (counts.get(intent) ?? 0) + 1);
  });
  return counts;
}

export const bytesOf = (results: readonly StoreResult[]) =>
  results.reduce((sum, r) => sum + (r.bytes ?? 0), 0);

/** Appends all, mapping a store error to its `Storage.*` failure. */
export function appendAll(appends: Promise<StoreResult>[]): Promise<StoreResult[]> {
  return Promise.all(appends).catch((error: unknown) => {
    throw toStorageFailure(error);
  });
}
