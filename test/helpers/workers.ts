/** Workers of workflow tests: the workflows and LLM activities on a task queue, and storage where runs send it. */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { sharedStorageTaskQueue } from '../../src/shared/storage-queue';
import { workflowBundle } from '../../src/worker';
import type { fakeActivities } from './fake-activities';

/**
 * A worker on `taskQueue` plus one serving the same (fake) activities on the shared storage queue, where
 * a run without `storageTaskQueue` stores; `runUntil` runs both.
 */
export async function createTestWorker(options: {
  connection: NativeConnection;
  taskQueue: string;
  activities: ReturnType<typeof fakeActivities>['activities'];
}): Promise<{ runUntil<T>(until: Promise<T>): Promise<T> }> {
  const main = await Worker.create({
    connection: options.connection,
    taskQueue: options.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: options.activities,
  });
  const storage = await Worker.create({
    connection: options.connection,
    taskQueue: sharedStorageTaskQueue(options.taskQueue),
    activities: options.activities,
  });
  return { runUntil: (until) => main.runUntil(storage.runUntil(until)) };
}
