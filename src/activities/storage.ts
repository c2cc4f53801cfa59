/**
 * The storage activities, composed from one factory per concern: the run's records
 * (`store-dialogues.ts`), `judge DIR`'s pages and verdicts (`judge-pages.ts`), topic leaves
 * (`store-topics.ts`) and the run's directory and side files (`run-directory.ts`).
 */
import type { StoreRegistry } from '../storage/jsonl-store';
import { STORAGE_FAILURE_TYPES } from './errors';
import { createJudgeDirStorage } from './judge-pages';
import type { PackageMetrics } from './metrics';
import { createRunDirectoryStorage } from './run-directory';
import { createRecordStorage } from './store-dialogues';
import { storeOpener } from './store-open';
import { createTopicStorage } from './store-topics';

export { STORAGE_FAILURE_TYPES };
export type { ReadJudgePageInput, ReadJudgePageResult, StoreJudgmentsInput } from './judge-pages';
export type { StoreTopicsInput } from './store-topics';

/**
 * Persists finished dialogues and failure records exactly once: the store skips ids it already holds,
 * so a retried or repeated activity never duplicates a line. Every directory lies below the registry's
 * output root; one that does not, or is not ours, fails non-retryably as `Storage.ForbiddenDirectory`.
 */
export function createStorageActivities(storage: StoreRegistry, metrics?: PackageMetrics) {
  const open = storeOpener(storage);
  return {
    ...createRunDirectoryStorage(storage),
    ...createRecordStorage(storage, metrics),
    ...createTopicStorage(open),
    ...createJudgeDirStorage(open),
  };
}
