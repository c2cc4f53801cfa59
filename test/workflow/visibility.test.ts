/**
 * What Temporal users see of a run, on a real dev server: the run's own `progress` query is live while
 * intents run, its current details carry the numbers, its memo tells a paused run, every storage
 * activity has a summary, a finished intent says `completed`, and the reports keep the run's history
 * bounded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import { intentProgressQuery, pauseUpdate, resumeUpdate, runProgressQuery } from '../../src/shared/messages';
import type { RunInput, RunSummary } from '../../src/shared/schemas';
import { MAX_PROGRESS_REPORTS, MIN_REPORT_INTERVAL_MS } from '../../src/workflows/intent';
import { fakeActivities } from '../helpers/fake-activities';
import { devServer, unique, type TestDevServer } from '../helpers/temporal';
import { createTestWorker } from '../helpers/workers';

let temporal: TestDevServer;
let client: Client;
let nativeConnection: NativeConnection;

before(async () => {
  temporal = await devServer();
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  nativeConnection = await NativeConnection.connect({ address: temporal.address });
});
after(async () => {
  await client?.connection.close();
  await nativeConnection?.close();
  await temporal?.dispose();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function input(runId: string, overrides: Partial<RunInput> = {}): RunInput {
  return {
    runId,
    outDir: '/tmp/cc-visibility-test',
    model: 'gpt-4o-mini',
    intents: ['transaction', 'educational'],
    numDialogsPerIntent: 20,
    numTurnsPerDialog: 1,
    concurrency: 2,
    ...overrides,
  };
}

async function withWorker<T>(delayMs: number, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const { activities } = fakeActivities({
    beforeSkeleton: () => sleep(delayMs),
    beforeResponses: () => sleep(delayMs),
  });
  const taskQueue = unique('vis');
  // A run without storageTaskQueue stores on the shared storage queue: the test worker serves both.
  const worker = await createTestWorker({
    connection: nativeConnection,
    taskQueue,
    activities,
  });
  return worker.runUntil(fn(taskQueue));
}

const currentDetails = async (workflowId: string) =>
  (
    await client.workflow
      .getHandle(workflowId)
      .query<{ currentDetails?: string }>('__temporal_workflow_metadata')
  ).currentDetails ?? '';

describe('visibility', () => {
  test('visibility: the run’s progress query, details and memo move while its intents run', async () => {
    const runId = unique('live');
    await withWorker(40, async (taskQueue) => {
      const handle = await client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId)],
      });
      let live: unknown;
      for (let i = 0; i < 100; i++) {
        const p = await handle.query(runProgressQuery);
        const running = p.intents.filter((x) => x.status === 'running' && x.written > 0);
        if (running.length > 0) {
          live = p;
          assert.ok(running[0]!.tokens.prompt > 0 && running[0]!.llmCalls > 0, JSON.stringify(running[0]));
          break;
        }
        await sleep(100);
      }
      assert.ok(live, 'the run reported written dialogues of an intent still running');
      assert.match(await currentDetails(runId), /\d+\/40 written · \d+ failed\n\d+ tokens · est\. \$[\d.]+/);
      assert.match(await currentDetails(`${runId}.transaction`), /\/20 written/);

      assert.equal((await handle.describe()).memo?.paused, false);
      const paused = await handle.executeUpdate(pauseUpdate);
      assert.equal(paused.paused, true);
      assert.equal((await handle.describe()).memo?.paused, true, 'the list can tell a paused run');
      assert.match(await currentDetails(runId), /^PAUSED/);
      await handle.executeUpdate(resumeUpdate);
      assert.equal((await handle.describe()).memo?.paused, false);

      const summary = (await handle.result()) as RunSummary;
      assert.equal(summary.written, 40);
      // A finished intent says so.
      const child = await client.workflow.getHandle(`${runId}.transaction`).query(intentProgressQuery);
      assert.equal(child.status, 'completed');
      assert.equal(child.written, 20);

      // Every activity carries a summary, storage included.
      const history = await client.workflow.getHandle(`${runId}.transaction`).fetchHistory();
      const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
      const stores = scheduled.filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'storeDialogues',
      );
      assert.ok(stores.length > 0);
      for (const e of scheduled) assert.ok(e.userMetadata?.summary?.data?.length, 'activity summary');
      const storeSummary = Buffer.from(stores[0]!.userMetadata!.summary!.data!).toString();
      assert.match(storeSummary, /store \d+ dialogues?: #\d+/);
    });
  });

  test('visibility: an intent reports at most MAX_PROGRESS_REPORTS times and once per interval, so the run’s history stays bounded', async () => {
    const runId = unique('bounded');
    await withWorker(0, async (taskQueue) => {
      const summary = (await client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { intents: ['exploratory'], numDialogsPerIntent: 300, concurrency: 50 })],
      })) as RunSummary;
      assert.equal(summary.written, 300);
      const history = await client.workflow.getHandle(runId).fetchHistory();
      const reportEvents = (history.events ?? []).filter(
        (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'intentReport',
      );
      const reports = reportEvents.length;
      assert.ok(reports >= 1 && reports <= MAX_PROGRESS_REPORTS, `${reports} reports`);
      // Reports come no closer than MIN_REPORT_INTERVAL_MS (give or take the signal's trip).
      const times = reportEvents.map((e) => Number(e.eventTime!.seconds) * 1000 + e.eventTime!.nanos! / 1e6);
      for (let i = 1; i < times.length; i++)
        assert.ok(
          times[i]! - times[i - 1]! >= MIN_REPORT_INTERVAL_MS - 300,
          `reports ${times[i]! - times[i - 1]!} ms apart`,
        );
      // Each report costs the run at most a signal event and a workflow task (3 events).
      assert.ok(
        (history.events?.length ?? 0) < 4 * MAX_PROGRESS_REPORTS + 60,
        `${history.events?.length} events`,
      );
    });
  });
});
