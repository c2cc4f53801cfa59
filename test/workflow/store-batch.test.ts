/**
 * Storage batches at the limits, on a real dev server (which refuses payloads over 2 MB): dialogues of
 * 20 turns with the longest query and response the reply schemas allow, in 3-byte characters, all
 * finishing together.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_QUERY_CHARS, MAX_RESPONSE_CHARS } from '../../src/method/replies';
import { MAX_TURNS_PER_DIALOG, WORKFLOW_TYPES } from '../../src/shared/constants';
import type { Activities } from '../../src/activities';
import type { RunSummary } from '../../src/run/schemas';
import { STORE_BATCH_BYTES } from '../../src/workflows/budget';
import { fakeActivities, withResultHooks } from '../helpers/fake-activities';
import { Worker } from '@temporalio/worker';
import { sharedStorageTaskQueue } from '../../src/shared/storage-queue';
import { workflowBundle } from '../../src/worker';
import { unique, useTemporal } from '../helpers/temporal';
import { testRunInput } from '../helpers/run-input';
import { loadScaled, waitFor } from '../helpers/wait';
import { withTestWorker } from '../helpers/workers';

const temporal = useTemporal();

test('storage batches: the longest dialogues the schema allows go in batches well under 2 MB', async () => {
  const { activities, log } = fakeActivities();
  const payloads: number[] = [];
  let release!: () => void;
  const allFinished = new Promise<void>((r) => (release = r));
  let responded = 0;
  const dialogs = 5;
  const atTheLimit = withResultHooks(activities, {
    generateSkeleton: (result) => ({
      ...result,
      skeleton: {
        ...result.skeleton,
        queries: result.skeleton.queries.map(() => '問'.repeat(MAX_QUERY_CHARS)),
      },
    }),
    async generateResponses(result) {
      // Every dialogue finishes at once, so finished records queue up behind the first store call.
      if (++responded === dialogs) release();
      await allFinished;
      return { ...result, responses: result.responses.map(() => '答'.repeat(MAX_RESPONSE_CHARS)) };
    },
  });
  const storing = atTheLimit.storeDialogues;
  atTheLimit.storeDialogues = (input) => {
    payloads.push(Buffer.byteLength(JSON.stringify(input)));
    return storing(input);
  };
  const runId = unique('batch-run');
  const input = testRunInput(runId, {
    numDialogsPerIntent: dialogs,
    numTurnsPerDialog: MAX_TURNS_PER_DIALOG,
    concurrency: dialogs,
  });
  // A run without storageTaskQueue stores on the shared storage queue: the test worker serves both.
  const summary = (await withTestWorker(
    {
      connection: temporal.connection,
      activities: atTheLimit,
      prefix: 'batch',
      deadlineMs: 90_000,
      deadlineMessage: 'the run stalled (a payload over the limit?)',
    },
    (taskQueue) =>
      temporal.client.workflow.execute(WORKFLOW_TYPES.run, { workflowId: runId, taskQueue, args: [input] }),
  )) as RunSummary;
  assert.equal(summary.written, dialogs);
  assert.equal(log.dialogues.size, dialogs);
  const largest = Math.max(...payloads);
  assert.ok(largest > 500_000, `records are at the limit (${largest} bytes)`);
  assert.ok(largest <= STORE_BATCH_BYTES + 64 * 1024, `largest storage payload ${largest} bytes`);
  assert.ok(largest < 2 * 1024 * 1024);
});

test('storage batches: a dialogue finished in the activation that completes the previous batch is stored too', async () => {
  // One activation delivers, in this order, a storage batch's completion and the responses of another
  // dialogue: the second record is queued just as the batch's flush ends. Stopping the workflow worker
  // while both activities complete puts them in one workflow task for the next worker, every time.
  const { activities, log } = fakeActivities();
  const held = <T>() => {
    let release!: () => void;
    let started!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const began = new Promise<void>((r) => (started = r));
    return { release, began, hold: async (value: T) => (started(), await released, value) };
  };
  const firstStore = held<Awaited<ReturnType<Activities['storeDialogues']>>>();
  const lastResponses = held<Awaited<ReturnType<Activities['generateResponses']>>>();
  const gated = withResultHooks(activities, {
    generateResponses: (result, input) => (input.plan.index === 1 ? lastResponses.hold(result) : result),
    storeDialogues: (result) => (log.storeCalls === 1 ? firstStore.hold(result) : result),
  });
  const taskQueue = unique('store-race');
  const runId = unique('store-race-run');
  const input = testRunInput(runId, { numTurnsPerDialog: 2, concurrency: 2 });
  const workflowWorker = () =>
    workflowBundle().then((bundle) =>
      Worker.create({ connection: temporal.connection, taskQueue, workflowBundle: bundle }),
    );
  const activityWorkers = await Promise.all(
    [taskQueue, sharedStorageTaskQueue(taskQueue)].map((queue) =>
      Worker.create({ connection: temporal.connection, taskQueue: queue, activities: gated }),
    ),
  );
  const completed = async (type: string) => {
    const history = await temporal.client.workflow.getHandle(`${runId}.transaction`).fetchHistory();
    const scheduled = new Map<string, string>();
    let count = 0;
    for (const e of history.events ?? []) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
      const c = e.activityTaskCompletedEventAttributes;
      if (c && scheduled.get(String(c.scheduledEventId)) === type) count++;
    }
    return count;
  };
  const activitiesRunning = Promise.all(activityWorkers.map((w) => w.run()));
  try {
    const first = await workflowWorker();
    const firstRunning = first.run();
    const handle = await temporal.client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: runId,
      taskQueue,
      args: [input],
    });
    await Promise.all([firstStore.began, lastResponses.began]);
    first.shutdown();
    await firstRunning;
    firstStore.release();
    await waitFor(async () => (await completed('storeDialogues')) === 1, 60_000, 'the first batch completed');
    lastResponses.release();
    await waitFor(async () => (await completed('generateResponses')) === 2, 60_000, 'the last responses');
    const second = await workflowWorker();
    // Without a flush for the second record nothing is left to wake the intent: it would wait forever.
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the second dialogue was never stored')), loadScaled(60_000));
    });
    const summary = (await second
      .runUntil(Promise.race([handle.result(), stalled]))
      .finally(() => clearTimeout(timer))) as RunSummary;
    assert.equal(summary.written, 2);
    assert.equal(log.dialogues.size, 2);
  } finally {
    firstStore.release();
    lastResponses.release();
    for (const w of activityWorkers) w.shutdown();
    await activitiesRunning;
  }
});
