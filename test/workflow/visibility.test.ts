/**
 * What Temporal users see of a run, on a real dev server: the run's own `progress` query is live while
 * intents run, its current details carry the numbers, its memo tells a paused run, every storage
 * activity has a summary, a finished intent says `completed`, and the reports keep the run's history
 * bounded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import { intentProgressQuery, pauseUpdate, resumeUpdate, runProgressQuery } from '../../src/run/messages';
import type { RunInput, RunProgress, RunSummary } from '../../src/run/schemas';
import { MAX_PROGRESS_REPORTS, MIN_REPORT_INTERVAL_MS } from '../../src/workflows/intent';
import { unique, useTemporal } from '../helpers/temporal';
import { testRunInput } from '../helpers/run-input';
import { callGate, waitFor } from '../helpers/wait';
import { withGatedWorker } from '../helpers/workers';

const temporal = useTemporal();

const input = (runId: string, overrides: Partial<RunInput> = {}): RunInput =>
  testRunInput(runId, {
    model: 'gpt-4o-mini',
    intents: ['transaction', 'educational'],
    numDialogsPerIntent: 20,
    concurrency: 2,
    ...overrides,
  });

/** Runs `fn` with a worker whose LLM activities pass `gate` first (none: they run at once). */
function withWorker<T>(
  gate: ReturnType<typeof callGate> | undefined,
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  // A run without storageTaskQueue stores on the shared storage queue: the test worker serves both.
  return withGatedWorker({ connection: temporal.connection, prefix: 'vis', gate }, (taskQueue) =>
    fn(taskQueue),
  );
}

const currentDetails = async (workflowId: string) =>
  (
    await temporal.client.workflow
      .getHandle(workflowId)
      .query<{ currentDetails?: string }>('__temporal_workflow_metadata')
  ).currentDetails ?? '';

describe('visibility', () => {
  test('visibility: the run’s progress query, details and memo move while its intents run', async () => {
    const runId = unique('live');
    // After a few calls the rest are held: the intents cannot finish before the test has seen them
    // running with stored dialogues, however slow the machine.
    const gate = callGate(8);
    await withWorker(gate, async (taskQueue) => {
      const handle = await temporal.client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId)],
      });
      let live: RunProgress | undefined;
      await waitFor(
        async () => {
          const p = await handle.query(runProgressQuery);
          if (p.intents.some((x) => x.status === 'running' && x.written > 0)) live = p;
          return live !== undefined;
        },
        60_000,
        'the run to report written dialogues of an intent still running',
      );
      const running = live!.intents.find((x) => x.status === 'running' && x.written > 0)!;
      assert.ok(running.tokens.prompt > 0 && running.llmCalls > 0, JSON.stringify(running));
      assert.match(await currentDetails(runId), /\d+\/40 written · \d+ failed\n\d+ tokens · est\. \$[\d.]+/);
      assert.match(await currentDetails(`${runId}.transaction`), /\/20 written/);

      assert.equal((await handle.describe()).memo?.paused, false);
      const paused = await handle.executeUpdate(pauseUpdate);
      assert.equal(paused.paused, true);
      assert.equal((await handle.describe()).memo?.paused, true, 'the list can tell a paused run');
      assert.match(await currentDetails(runId), /^PAUSED/);
      await handle.executeUpdate(resumeUpdate);
      assert.equal((await handle.describe()).memo?.paused, false);
      gate.release();

      const summary = (await handle.result()) as RunSummary;
      assert.equal(summary.written, 40);
      // A finished intent says so.
      const child = await temporal.client.workflow
        .getHandle(`${runId}.transaction`)
        .query(intentProgressQuery);
      assert.equal(child.status, 'completed');
      assert.equal(child.written, 20);

      // Every activity carries a summary, storage included.
      const history = await temporal.client.workflow.getHandle(`${runId}.transaction`).fetchHistory();
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
    await withWorker(undefined, async (taskQueue) => {
      const summary = (await temporal.client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { intents: ['exploratory'], numDialogsPerIntent: 300, concurrency: 50 })],
      })) as RunSummary;
      assert.equal(summary.written, 300);
      const history = await temporal.client.workflow.getHandle(runId).fetchHistory();
      const reportEvents = (history.events ?? []).filter(
        (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'intentReport',
      );
      const reports = reportEvents.length;
      assert.ok(reports >= 1 && reports <= MAX_PROGRESS_REPORTS + 1, `${reports} reports`);
      // Reports come no closer than MIN_REPORT_INTERVAL_MS (give or take the signal's trip), except the one
      // an intent sends as it starts its last dialogue.
      const started = (e: (typeof reportEvents)[number]) =>
        (
          JSON.parse(
            Buffer.from(e.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!.data!).toString(),
          ) as { started?: number }
        ).started;
      const lastStart = reportEvents.findIndex((e) => started(e) === 300);
      assert.ok(lastStart >= 0, 'the intent reported its last start');
      const periodic = reportEvents.filter((_, i) => i !== lastStart);
      const times = periodic.map((e) => Number(e.eventTime!.seconds) * 1000 + e.eventTime!.nanos! / 1e6);
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
