/**
 * Changing a live run through its updates and signals, on a real dev server: validators refuse bad
 * arguments with a reason, the caller gets the acknowledged state, a pause that comes before the
 * intents exist still pauses them, and a bad signal argument never stalls an intent.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import {
  intentProgressQuery,
  pauseSignal,
  pauseUpdate,
  resumeUpdate,
  setConcurrencySignal,
  setConcurrencyUpdate,
} from '../../src/run/messages';
import type { RunInput, RunSummary } from '../../src/run/schemas';
import type { fakeActivities } from '../helpers/fake-activities';
import { unique, useTemporal } from '../helpers/temporal';
import { testRunInput } from '../helpers/run-input';
import { callGate, pendingActivities, sleep, waitFor } from '../helpers/wait';
import { withGatedWorker } from '../helpers/workers';

const temporal = useTemporal();

const input = (runId: string, overrides: Partial<RunInput> = {}): RunInput =>
  testRunInput(runId, {
    intents: ['transaction', 'educational'],
    numDialogsPerIntent: 6,
    concurrency: 4,
    ...overrides,
  });

/** Runs `fn` with a worker whose LLM activities take `delayMs`; fails if the run does not end in time. */
function withWorker<T>(
  delayMs: number,
  fn: (taskQueue: string, log: ReturnType<typeof fakeActivities>['log']) => Promise<T>,
  gate?: ReturnType<typeof callGate>,
): Promise<T> {
  // A run without storageTaskQueue stores on the shared storage queue: the test worker serves both.
  return withGatedWorker(
    { connection: temporal.connection, prefix: 'control', gate, delayMs, deadlineMs: 60_000 },
    fn,
  );
}

async function intentsPaused(runId: string, intents: readonly string[]): Promise<boolean[]> {
  return Promise.all(
    intents.map(async (i) => {
      try {
        return (await temporal.client.workflow.getHandle(`${runId}.${i}`).query(intentProgressQuery)).paused;
      } catch {
        return false;
      }
    }),
  );
}

describe('run control', () => {
  test('run control: a pause update sent right after the start pauses every intent and returns the state', async () => {
    const runId = unique('pause-early');
    // The first calls pass, the rest wait until the pause is acknowledged: the run cannot finish first.
    const gate = callGate(2);
    await withWorker(
      50,
      async (taskQueue, log) => {
        const handle = await temporal.client.workflow.start(WORKFLOW_TYPES.run, {
          workflowId: runId,
          taskQueue,
          args: [input(runId)],
        });
        const state = await handle.executeUpdate(pauseUpdate);
        assert.equal(state.paused, true);
        assert.equal(state.runId, runId);
        assert.deepEqual(state.intents.map((i) => i.intent).sort(), ['educational', 'transaction']);
        assert.equal(
          state.intents.reduce((s, i) => s + i.concurrency, 0),
          4,
        );
        assert.deepEqual(await intentsPaused(runId, ['transaction', 'educational']), [true, true]);
        gate.release();
        // Calls in flight when the pause came finish; after that no new call starts. Wait for the
        // server to hold no activity of either intent, rather than for a time a loaded machine may not keep.
        const intentIds = [`${runId}.transaction`, `${runId}.educational`];
        await waitFor(
          async () => (await pendingActivities(temporal.client, intentIds)) === 0,
          30_000,
          'the calls in flight at the pause to finish',
        );
        const calls = log.skeletonCalls.length + log.responsesCalls.length;
        await sleep(1_000);
        assert.equal(
          log.skeletonCalls.length + log.responsesCalls.length,
          calls,
          'no new LLM call while paused',
        );
        assert.ok(log.dialogues.size < 12, 'the run was paused before it finished');

        const resumed = await handle.executeUpdate(resumeUpdate);
        assert.equal(resumed.paused, false);
        const summary = (await handle.result()) as RunSummary;
        assert.equal(summary.written, 12);
      },
      gate,
    );
  });

  test('run control: a pause signal delivered with the start reaches intents that did not exist yet', async () => {
    const runId = unique('pause-with-start');
    await withWorker(10, async (taskQueue, log) => {
      const handle = await temporal.client.workflow.signalWithStart(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId)],
        signal: pauseSignal,
      });
      await waitFor(
        async () => (await intentsPaused(runId, ['transaction', 'educational'])).every(Boolean),
        30_000,
        'both intents to start paused',
      );
      await sleep(1_000);
      assert.equal(log.skeletonCalls.length, 0, 'no LLM call while paused');
      await (handle as WorkflowHandle).executeUpdate(resumeUpdate);
      assert.equal(((await handle.result()) as RunSummary).written, 12);
    });
  });

  test('run control: setConcurrency refuses a bad value with the reason and acknowledges a good one', async () => {
    const runId = unique('concurrency');
    await withWorker(20, async (taskQueue) => {
      const handle = await temporal.client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { paused: true })],
      });
      for (const bad of [0, -3, 2.5, 1_001, Number.NaN, 'fast', null]) {
        await assert.rejects(
          handle.executeUpdate(setConcurrencyUpdate, { args: [bad as number] }),
          (error: unknown) =>
            error instanceof WorkflowUpdateFailedError &&
            /expected an integer from 1 to 1000/.test(error.cause?.message ?? ''),
          `setConcurrency ${String(bad)} refused`,
        );
      }
      const state = await handle.executeUpdate(setConcurrencyUpdate, { args: [7] });
      assert.equal(state.concurrency, 7);
      assert.deepEqual(
        state.intents.map((i) => i.concurrency).sort(),
        [3, 4],
        'the new bound is shared among the intents',
      );
      const child = await temporal.client.workflow
        .getHandle(`${runId}.transaction`)
        .query(intentProgressQuery);
      assert.equal(child.concurrency, 4, 'the intent was told its share');
      // Refused updates leave no trace in the history.
      const history = await handle.fetchHistory();
      const updates = history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? [];
      assert.equal(updates.length, 1);
      await handle.executeUpdate(resumeUpdate);
      assert.equal(((await handle.result()) as RunSummary).written, 12);
    });
  });

  test('run control: a setConcurrency signal with a non-number is ignored and no intent stalls', async () => {
    const runId = unique('bad-signal');
    await withWorker(20, async (taskQueue) => {
      const handle = await temporal.client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { paused: true })],
      });
      await handle.signal(setConcurrencySignal, 'fast' as unknown as number);
      await handle.signal(setConcurrencySignal, null as unknown as number);
      // The Temporal CLI can reach an intent directly, too.
      await waitFor(
        async () => (await intentsPaused(runId, ['educational']))[0]!,
        30_000,
        'the intent to start',
      );
      await temporal.client.workflow
        .getHandle(`${runId}.educational`)
        .signal(setConcurrencySignal, 'x' as unknown as number);
      const state = await handle.executeUpdate(resumeUpdate);
      assert.equal(state.concurrency, 4, 'the bound is unchanged');
      const summary = (await handle.result()) as RunSummary;
      assert.equal(summary.written, 12);
    });
  });

  test('run control: an intent that has started its last dialogue says so and gets no share signal after it', async () => {
    const runId = unique('finishing');
    const intents = ['transaction', 'educational', 'exploratory'] as const;
    await withWorker(15, async (taskQueue) => {
      const summary = (await temporal.client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { intents: [...intents], numDialogsPerIntent: 24, concurrency: 6 })],
      })) as RunSummary;
      assert.equal(summary.written, 72);
      // In the run's history: once it has an intent's report of its last start, it sends that intent no share.
      const events = (await temporal.client.workflow.getHandle(runId).fetchHistory()).events ?? [];
      const payload = (data: Uint8Array | null | undefined) =>
        data ? (JSON.parse(Buffer.from(data).toString()) as unknown) : undefined;
      for (const intent of intents) {
        const finishingAt = events.findIndex((e) => {
          const signal = e.workflowExecutionSignaledEventAttributes;
          const report = payload(signal?.input?.payloads?.[0]?.data) as
            { intent: string; started?: number; planned: number } | undefined;
          return (
            signal?.signalName === 'intentReport' &&
            report?.intent === intent &&
            report.started === report.planned
          );
        });
        assert.ok(finishingAt >= 0, `${intent}: a report once its last dialogue started`);
        const lateShares = events.slice(finishingAt).filter((e) => {
          const sent = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
          return (
            sent?.signalName === 'setConcurrency' &&
            sent.workflowExecution?.workflowId === `${runId}.${intent}`
          );
        });
        assert.equal(lateShares.length, 0, `${intent}: share signals sent after its last start`);
      }
    });
  });
});
