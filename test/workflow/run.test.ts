import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { INTENT_IDS } from '../../src/method/intents';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import { intentProgressQuery, resumeSignal } from '../../src/run/messages';
import type { RunInput, RunSummary } from '../../src/run/schemas';
import { fakeActivities } from '../helpers/fake-activities';
import { withTestWorker } from '../helpers/workers';
import { timeSkippingEnv, unique } from '../helpers/temporal';
import { testRunInput } from '../helpers/run-input';

let env: TestWorkflowEnvironment;
before(async () => {
  env = await timeSkippingEnv();
});
after(async () => {
  await env?.teardown();
});

const input = (runId: string, overrides: Partial<RunInput> = {}): RunInput =>
  testRunInput(runId, {
    intents: undefined, // every intent, the run's default
    numDialogsPerIntent: 3,
    numTurnsPerDialog: 2,
    retry: { maximumAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: 10_000 },
    ...overrides,
  });

/** Runs `fn` with a worker serving `activities` on the time-skipping server. */
function withWorker<T>(
  activities: ReturnType<typeof fakeActivities>['activities'],
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  return withTestWorker({ connection: env.nativeConnection, activities, prefix: 'wf' }, fn);
}

describe('run workflow', () => {
  test('run workflow: one child per intent writes every planned dialogue once', async () => {
    const { activities, log } = fakeActivities();
    const runId = unique('run');
    const summary = await withWorker(
      activities,
      (taskQueue) =>
        env.client.workflow.execute(WORKFLOW_TYPES.run, {
          workflowId: runId,
          taskQueue,
          args: [input(runId)],
        }) as Promise<RunSummary>,
    );
    assert.equal(summary.requested, 27);
    assert.equal(summary.written, 27);
    assert.equal(summary.failed, 0);
    assert.equal(log.dialogues.size, 27);
    assert.deepEqual(new Set(summary.intents.map((i) => i.intent)), new Set(INTENT_IDS));
    assert.equal(summary.llmCalls, 54);
    assert.equal(summary.tokens.prompt, 5400);
    for (const record of log.dialogues.values()) {
      assert.equal(record.conversation.length, 4);
      assert.deepEqual(
        record.conversation.map((t) => t.role),
        ['user', 'assistant', 'user', 'assistant'],
      );
      assert.ok(record.id.startsWith(`${runId}.`));
    }
    // Child workflows are addressable by run id and intent.
    const child = await env.client.workflow.getHandle(`${runId}.transaction`).describe();
    assert.equal(child.type, WORKFLOW_TYPES.intent);
  });

  test('run workflow: a dialogue the store already held counts as a duplicate, not as written', async () => {
    const { activities, log } = fakeActivities();
    const runId = unique('dup');
    // As after a workflow reset: the first dialogue's record is already in the file.
    log.dialogues.set(`${runId}.transaction.0`, {} as never);
    const summary = await withWorker(
      activities,
      (taskQueue) =>
        env.client.workflow.execute(WORKFLOW_TYPES.run, {
          workflowId: runId,
          taskQueue,
          args: [input(runId, { intents: ['transaction'], numDialogsPerIntent: 3 })],
        }) as Promise<RunSummary>,
    );
    assert.equal(summary.written, 2);
    assert.equal(summary.duplicates, 1);
    assert.equal(summary.intents[0]!.duplicates, 1);
    assert.equal(summary.failed, 0);
  });

  test('run workflow: the same seed gives the same plan', async () => {
    const first = fakeActivities();
    const second = fakeActivities();
    const plans = [];
    for (const { activities, log } of [first, second]) {
      const runId = unique('seeded');
      await withWorker(activities, (taskQueue) =>
        env.client.workflow.execute(WORKFLOW_TYPES.run, {
          workflowId: runId,
          taskQueue,
          args: [input(runId, { seed: 'fixed-seed', intents: ['educational'], numDialogsPerIntent: 5 })],
        }),
      );
      plans.push(log.skeletonCalls.map((c) => `${c.plan.index}:${c.plan.infoFlow}:${c.plan.topic}`).sort());
    }
    assert.deepEqual(plans[0], plans[1]);
  });

  test('run workflow: invalid input fails fast with a non-retryable error naming the field', async () => {
    const { activities, log } = fakeActivities();
    const runId = unique('bad');
    await withWorker(activities, async (taskQueue) => {
      const error = await env.client.workflow
        .execute(WORKFLOW_TYPES.run, {
          workflowId: runId,
          taskQueue,
          args: [input(runId, { numTurnsPerDialog: 50 })],
        })
        .catch((e: unknown) => e);
      assert.ok(error instanceof WorkflowFailedError);
      assert.ok(error.cause instanceof ApplicationFailure);
      assert.equal(error.cause.type, 'Run.InvalidInput');
      assert.equal(error.cause.nonRetryable, true);
      assert.match(error.cause.message, /numTurnsPerDialog/);
    });
    assert.equal(log.skeletonCalls.length, 0);
  });

  test('intent workflow: a retryable LLM failure is retried and the dialogue still lands', async () => {
    const { activities, log } = fakeActivities({
      beforeSkeleton: (_input, call) => {
        if (call <= 2) throw ApplicationFailure.create({ type: 'Llm.Unavailable', message: 'endpoint down' });
      },
    });
    const runId = unique('retry');
    const summary = (await withWorker(activities, (taskQueue) =>
      env.client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { intents: ['transaction'], numDialogsPerIntent: 1 })],
      }),
    )) as RunSummary;
    assert.equal(summary.written, 1);
    assert.equal(log.skeletonCalls.length, 3);
  });

  test('intent workflow: a dialogue past its attempt limit is recorded as a failure with its plan and reason', async () => {
    const { activities, log } = fakeActivities({
      beforeResponses: (input) => {
        if (input.plan.index === 1)
          throw ApplicationFailure.create({
            type: 'Llm.InvalidOutput',
            message: 'wrong number of responses',
          });
      },
    });
    const runId = unique('exhaust');
    const summary = (await withWorker(activities, (taskQueue) =>
      env.client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { intents: ['simulation'], numDialogsPerIntent: 3 })],
      }),
    )) as RunSummary;
    assert.equal(summary.written, 2);
    assert.equal(summary.failed, 1);
    assert.equal(log.failures.length, 1);
    const failure = log.failures[0]!;
    assert.equal(failure.id, `${runId}.simulation.1`);
    assert.equal(failure.stage, 'responses');
    assert.equal(failure.type, 'Llm.InvalidOutput');
    assert.match(failure.reason, /wrong number/);
    assert.ok(failure.topic.length > 0);
    assert.equal(log.responsesCalls.filter((c) => c.plan.index === 1).length, 3);
  });

  test('intent workflow: non-retryable auth failures are not retried and stop further LLM calls', async () => {
    const { activities, log } = fakeActivities({
      beforeSkeleton: () => {
        throw ApplicationFailure.create({ type: 'Llm.Auth', message: 'invalid api key', nonRetryable: true });
      },
    });
    const runId = unique('auth');
    const summary = (await withWorker(activities, (taskQueue) =>
      env.client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { intents: ['educational'], numDialogsPerIntent: 40, concurrency: 2 })],
      }),
    )) as RunSummary;
    assert.equal(summary.written, 0);
    assert.equal(summary.failed, 40);
    assert.equal(new Set(log.failures.map((f) => f.id)).size, 40);
    assert.ok(log.skeletonCalls.length <= 4, `${log.skeletonCalls.length} calls after a systemic failure`);
    assert.ok(log.failures.every((f) => f.type === 'Llm.Auth'));
  });

  test('intent workflow: pause stops new LLM calls and resume continues', async () => {
    const { activities, log } = fakeActivities();
    const runId = unique('pause');
    await withWorker(activities, async (taskQueue) => {
      const handle = await env.client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input(runId, { intents: ['entertainment'], numDialogsPerIntent: 4, paused: true })],
      });
      const child = env.client.workflow.getHandle(`${runId}.entertainment`);
      // Wait until the child is up and reports itself paused.
      for (let i = 0; i < 50; i++) {
        const p = await child.query(intentProgressQuery).catch(() => undefined);
        if (p?.paused) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await env.sleep('1 minute');
      assert.equal(log.skeletonCalls.length, 0);
      await handle.signal(resumeSignal);
      const summary = (await handle.result()) as RunSummary;
      assert.equal(summary.written, 4);
    });
  });
});
