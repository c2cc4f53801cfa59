/** Workers of workflow tests: the workflows and LLM activities on a task queue, and storage where runs send it. */
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { sharedStorageTaskQueue } from '../../src/shared/storage-queue';
import { workflowBundle } from '../../src/worker';
import { fakeActivities } from './fake-activities';
import { unique } from './temporal';
import { sleep, type callGate } from './wait';

/**
 * A worker on `taskQueue` plus one serving the same (fake) activities on the shared storage queue, where
 * a run without `storageTaskQueue` stores; `runUntil` runs both.
 */
export async function createTestWorker(options: {
  connection: NativeConnection;
  taskQueue: string;
  activities: ReturnType<typeof fakeActivities>['activities'];
  /** More options of the worker on `taskQueue`. */
  workerOptions?: Partial<WorkerOptions>;
}): Promise<{ runUntil<T>(until: Promise<T>): Promise<T> }> {
  const main = await Worker.create({
    ...options.workerOptions,
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

/**
 * Runs `fn` with a test worker on a task queue of its own (named after `prefix`), so tests in one file
 * never take each other's tasks. With `deadlineMs`, a run that stalls fails the test with
 * `deadlineMessage` instead of hanging it.
 */
export async function withTestWorker<T>(
  options: {
    connection: NativeConnection;
    activities: ReturnType<typeof fakeActivities>['activities'];
    prefix: string;
    deadlineMs?: number;
    deadlineMessage?: string;
    workerOptions?: Partial<WorkerOptions>;
  },
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = unique(options.prefix);
  const worker = await createTestWorker({
    connection: options.connection,
    taskQueue,
    activities: options.activities,
    workerOptions: options.workerOptions,
  });
  const { deadlineMs } = options;
  if (deadlineMs === undefined) return worker.runUntil(fn(taskQueue));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const message = options.deadlineMessage ?? `the run did not finish within ${deadlineMs / 1000} s`;
    timer = setTimeout(() => reject(new Error(message)), deadlineMs);
  });
  try {
    return await worker.runUntil(Promise.race([fn(taskQueue), deadline]));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `withTestWorker` with fake activities whose LLM calls pass `gate` (none: they run at once) and then
 * wait `delayMs`. Held calls are let go however `fn` ends, or the worker could not shut down.
 */
export async function withGatedWorker<T>(
  options: {
    connection: NativeConnection;
    prefix: string;
    gate?: ReturnType<typeof callGate>;
    delayMs?: number;
    deadlineMs?: number;
  },
  fn: (taskQueue: string, log: ReturnType<typeof fakeActivities>['log']) => Promise<T>,
): Promise<T> {
  const { gate, delayMs } = options;
  const pass = async () => {
    await gate?.pass();
    if (delayMs) await sleep(delayMs);
  };
  const { activities, log } = fakeActivities({ beforeSkeleton: pass, beforeResponses: pass });
  return withTestWorker({ ...options, activities }, (taskQueue) =>
    fn(taskQueue, log).finally(() => gate?.release()),
  );
}
