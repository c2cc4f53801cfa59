/**
 * Hostile output directories in workflow input, started through the Temporal client against real
 * storage activities confined to an output root: each run fails non-retryably with
 * `Storage.ForbiddenDirectory`, and nothing outside the root is touched.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createStorageActivities } from '../../src/activities/storage';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import { sharedStorageTaskQueue } from '../../src/shared/storage-queue';
import { resolveOutputRoot } from '../../src/storage/confine';
import { StoreRegistry } from '../../src/storage/jsonl-store';
import { workflowBundle } from '../../src/worker';
import { fakeActivities } from '../helpers/fake-activities';
import { readDialogues } from '../helpers/output';
import { snapshotTree } from '../helpers/storage';
import { tempDir, timeSkippingEnv, unique } from '../helpers/temporal';
import { testRunInput } from '../helpers/run-input';

let env: TestWorkflowEnvironment;
let base: string;
let root: string;
let decoy: string;
before(async () => {
  env = await timeSkippingEnv();
  base = await tempDir('cc-confine-');
  root = await resolveOutputRoot(join(base, 'root'));
  decoy = join(base, 'decoy');
  await mkdir(join(decoy, 'run'), { recursive: true });
  await writeFile(join(decoy, 'dialogs.jsonl'), '{"id":"theirs"}\n');
});
after(async () => {
  await env?.teardown();
});

/** Runs one intent of `outDir` with fake LLM calls and the real, confined storage activities. */
async function runWith(
  outDir: string,
  hooks: Parameters<typeof fakeActivities>[0] = {},
): Promise<{ error: unknown; runId: string; llmCalls: () => number }> {
  const { activities, log } = fakeActivities(hooks);
  const llmCalls = () => log.skeletonCalls.length + log.responsesCalls.length;
  const registry = new StoreRegistry({ root });
  const taskQueue = unique('confine');
  const runId = unique('confine');
  const llmWorker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
  });
  // Storage where a run without `storageTaskQueue` sends it (what `worker --storage-only` serves).
  const storageWorker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: sharedStorageTaskQueue(taskQueue),
    activities: createStorageActivities(registry),
  });
  const input = testRunInput(runId, { outDir, numDialogsPerIntent: 3, concurrency: 1 });
  try {
    await llmWorker.runUntil(
      storageWorker.runUntil(
        env.client.workflow.execute(WORKFLOW_TYPES.run, { workflowId: runId, taskQueue, args: [input] }),
      ),
    );
    return { error: undefined, runId, llmCalls };
  } catch (error) {
    return { error, runId, llmCalls };
  } finally {
    await registry.closeAll();
  }
}

/**
 * The run failed before any LLM call, as `Storage.ForbiddenDirectory` naming the directory and the
 * root: its first step asks the storage queue, once (issue 27 item 4).
 */
async function assertRefusedFirst(
  run: { error: unknown; runId: string; llmCalls: () => number },
  outDir: string,
): Promise<void> {
  assert.ok(run.error instanceof WorkflowFailedError, `the run failed: ${String(run.error)}`);
  const cause = run.error.cause;
  assert.ok(cause instanceof ApplicationFailure, `cause: ${String(cause)}`);
  assert.equal(cause.type, 'Storage.ForbiddenDirectory');
  assert.equal(cause.nonRetryable, true);
  assert.ok(cause.message.includes(root), `names the root: ${cause.message}`);
  const named = cause.message.includes(outDir) || cause.message.includes(resolve(outDir));
  assert.ok(named, `names the directory: ${cause.message}`);
  assert.equal(run.llmCalls(), 0, 'no LLM call was made');
  const { events } = await env.client.workflow.getHandle(run.runId).fetchHistory();
  assert.ok(!events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes), 'no intent started');
  const attempts = (events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
  assert.deepEqual(
    attempts.map((e) => e.activityTaskStartedEventAttributes!.attempt),
    [1],
  );
}

/** The intent failed because a storage activity failed once, non-retryably, as `Storage.ForbiddenDirectory`. */
async function assertForbidden(run: { error: unknown; runId: string }): Promise<void> {
  assert.ok(run.error instanceof WorkflowFailedError, `the run failed: ${String(run.error)}`);
  const intent = env.client.workflow.getHandle(`${run.runId}.transaction`);
  const failure = await intent.result().then(
    () => assert.fail('the intent should have failed'),
    (error: unknown) => error,
  );
  assert.ok(failure instanceof WorkflowFailedError);
  const activity = failure.cause;
  assert.ok(activity instanceof ActivityFailure, `cause: ${String(activity)}`);
  const cause = activity.cause;
  assert.ok(cause instanceof ApplicationFailure);
  assert.equal(cause.type, 'Storage.ForbiddenDirectory');
  assert.equal(cause.nonRetryable, true);
  // Not retried: every storage activity of the intent ran exactly one attempt.
  const { events } = await intent.fetchHistory();
  for (const e of events ?? []) {
    if (e.activityTaskStartedEventAttributes) assert.equal(e.activityTaskStartedEventAttributes.attempt, 1);
  }
}

describe('storage confinement', () => {
  test('storage confinement: hostile outDirs fail the run before any LLM call, naming the directory and the root, and touch nothing outside it', async () => {
    await symlink(decoy, join(root, 'escape'));
    const foreign = join(root, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'dialogs.jsonl'), '{"id":"someone-elses"}\n{"id":"torn');
    const before = { decoy: await snapshotTree(decoy), foreign: await snapshotTree(foreign) };
    for (const outDir of [
      '/etc',
      `${root}/../..`,
      `${root}/../decoy`,
      join(root, 'escape'),
      join(root, 'escape', 'run'),
      foreign,
    ]) {
      await assertRefusedFirst(await runWith(outDir), outDir);
    }
    assert.deepEqual(await snapshotTree(decoy), before.decoy, 'the decoy outside the root is untouched');
    assert.deepEqual(
      await snapshotTree(foreign),
      before.foreign,
      "someone else's dialogs.jsonl is untouched",
    );
  });

  test('storage confinement: a parent swapped for a symlink mid-run stops the run and touches nothing outside', async () => {
    const before = await snapshotTree(decoy);
    const outDir = join(root, 'swap', 'run');
    let swapped: Promise<void> | undefined;
    let held: string | undefined;
    const run = await runWith(outDir, {
      // The first dialogues are stored in the real directory; before the second is, its parent becomes
      // a link out of the root.
      beforeSkeleton: async (input, call) => {
        if (call !== 2) return;
        held = input.plan.id;
        swapped ??= (async () => {
          for (let i = 0; i < 200 && (await readDialogues(outDir)).length < 1; i++)
            await new Promise((r) => setTimeout(r, 50));
          await rename(join(root, 'swap'), join(root, 'swap-moved'));
          await symlink(decoy, join(root, 'swap'));
        })();
        await swapped;
      },
    });
    await assertForbidden(run);
    assert.deepEqual(await snapshotTree(decoy), before, 'the decoy outside the root is untouched');
    const kept = (await readFile(join(root, 'swap-moved', 'run', 'dialogs.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id);
    // Stored in groups: the first batch may hold one or two dialogues, never the one held until the swap.
    assert.ok(kept.length >= 1, 'the records written before the swap stayed where they were written');
    assert.ok(held && !kept.includes(held), `${held} was held until the swap, kept: ${kept.join(', ')}`);
  });
});
