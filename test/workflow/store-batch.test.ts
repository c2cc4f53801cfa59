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
import type { RunInput, RunSummary } from '../../src/run/schemas';
import { STORE_BATCH_BYTES } from '../../src/workflows/budget';
import { fakeActivities } from '../helpers/fake-activities';
import { unique, useTemporal } from '../helpers/temporal';
import { withTestWorker } from '../helpers/workers';

const temporal = useTemporal();

test('storage batches: the longest dialogues the schema allows go in batches well under 2 MB', async () => {
  const { activities, log } = fakeActivities();
  const payloads: number[] = [];
  let release!: () => void;
  const allFinished = new Promise<void>((r) => (release = r));
  let responded = 0;
  const dialogs = 5;
  const atTheLimit: Activities = {
    ...activities,
    async generateSkeleton(input) {
      const result = await activities.generateSkeleton(input);
      return {
        ...result,
        skeleton: {
          ...result.skeleton,
          queries: result.skeleton.queries.map(() => '問'.repeat(MAX_QUERY_CHARS)),
        },
      };
    },
    async generateResponses(input) {
      const result = await activities.generateResponses(input);
      // Every dialogue finishes at once, so finished records queue up behind the first store call.
      if (++responded === dialogs) release();
      await allFinished;
      return { ...result, responses: result.responses.map(() => '答'.repeat(MAX_RESPONSE_CHARS)) };
    },
    storeDialogues(input) {
      payloads.push(Buffer.byteLength(JSON.stringify(input)));
      return activities.storeDialogues(input);
    },
  };
  const runId = unique('batch-run');
  const input: RunInput = {
    runId,
    outDir: '/tmp/cc-batch-test',
    model: 'm',
    intents: ['transaction'],
    numDialogsPerIntent: dialogs,
    numTurnsPerDialog: MAX_TURNS_PER_DIALOG,
    concurrency: dialogs,
  };
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
