/**
 * The run's last step: the storage queue writes the files a finished run leaves (summary.json, and
 * run.json and the method copies when no client wrote them), so a run started with `temporal workflow
 * start` or by any client leaves what `generate` leaves.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createStorageActivities } from '../activities/storage';
import type { RunConfig, RunSummary } from '../run/schemas';
import { storageTaskQueueFor } from '../shared/storage-queue';
import { storageActivityOptions } from './intent/options';

export async function writeRunFiles(config: RunConfig, summary: RunSummary): Promise<void> {
  const { writeRunFiles: write } = proxyActivities<ReturnType<typeof createStorageActivities>>({
    ...storageActivityOptions(storageTaskQueueFor(config, workflowInfo().taskQueue)),
    summary: `write summary.json in ${config.outDir}`,
  });
  await write({ config, summary, startedAt: workflowInfo().runStartTime.toISOString() });
}
