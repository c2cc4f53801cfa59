/**
 * The run's first step: ask the storage queue whether the output directory is one its worker writes
 * to, so a refused directory fails the run before any LLM call is paid for, naming the directory, the
 * worker's root and `Storage.ForbiddenDirectory`.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createStorageActivities } from '../activities/storage';
import { STORAGE_FAILURE_TYPES } from '../shared/failure-types';
import type { RunConfig } from '../run/schemas';
import { storageTaskQueueFor } from '../shared/storage-queue';
import { storageActivityOptions } from './intent/options';

export async function checkOutputDirectory(config: RunConfig): Promise<void> {
  const { checkOutputDirectory: check } = proxyActivities<ReturnType<typeof createStorageActivities>>({
    ...storageActivityOptions(storageTaskQueueFor(config, workflowInfo().taskQueue)),
    summary: `check output directory ${config.outDir}`,
  });
  try {
    await check({ outDir: config.outDir, runId: config.runId });
  } catch (error) {
    const cause = error instanceof ActivityFailure ? error.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === STORAGE_FAILURE_TYPES.forbiddenDir)
      throw ApplicationFailure.nonRetryable(
        `output directory ${config.outDir} refused by the storage worker: ${cause.message}`,
        STORAGE_FAILURE_TYPES.forbiddenDir,
      );
    throw error;
  }
}
