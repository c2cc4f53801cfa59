/**
 * The one definition of where a run's storage activities run. Storage must run where the output
 * directory is, so it has task queues of its own, apart from the workflows and LLM calls:
 * - `<task-queue>.storage`: served by `worker` (and `worker --storage-only --out-root R`); a run
 *   whose input names no `storageTaskQueue` (one started with `temporal workflow start`) stores here;
 * - `<task-queue>.storage.<runId>`: served only by the `generate` process that owns that run's
 *   directory, which puts it in the run's input.
 */

/** The shared storage task queue of the workers on `taskQueue`. */
export function sharedStorageTaskQueue(taskQueue: string): string {
  return `${taskQueue}.storage`;
}

/** The storage task queue of one run, served by the `generate` process that owns its directory. */
export function runStorageTaskQueue(taskQueue: string, runId: string): string {
  return `${taskQueue}.storage.${runId}`;
}

/** Where the storage activities of a run go: its input's `storageTaskQueue`, else the shared queue. */
export function storageTaskQueueFor(
  config: { storageTaskQueue?: string },
  workflowTaskQueue: string,
): string {
  return config.storageTaskQueue ?? sharedStorageTaskQueue(workflowTaskQueue);
}
