/**
 * History bounds on a real dev server (the time-skipping server has no continue-as-new hint): once
 * with the server's suggestion lowered through dynamic config, once with only the workflow's own budget.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import type { RunInput, RunSummary } from '../../src/run/schemas';
import { MAX_PROGRESS_REPORTS } from '../../src/workflows/intent';
import { fakeActivities } from '../helpers/fake-activities';
import { withTestWorker } from '../helpers/workers';
import { openTemporal, unique, useTemporal } from '../helpers/temporal';
import { testRunInput } from '../helpers/run-input';

const temporal = useTemporal({ 'limit.historyCount.suggestContinueAsNew': 400 });

async function runsOf(workflowId: string): Promise<{ historyLength: number; historySize?: number }[]> {
  const runs = [];
  for await (const execution of temporal.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const description = await temporal.client.workflow.getHandle(workflowId, execution.runId).describe();
    runs.push({ historyLength: description.historyLength, historySize: description.historySize });
  }
  return runs;
}

async function generateWith(input: RunInput): Promise<{ summary: RunSummary; dialogues: number }> {
  const { activities, log } = fakeActivities();
  const summary = (await withTestWorker(
    { connection: temporal.connection, activities, prefix: 'can' },
    (taskQueue) =>
      temporal.client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: input.runId,
        taskQueue,
        args: [input],
      }),
  )) as RunSummary;
  return { summary, dialogues: log.dialogues.size };
}

describe('continue-as-new', () => {
  test('intent workflow: continues as new when the server suggests it and loses no dialogue', async () => {
    const runId = unique('can-hint');
    const { summary, dialogues } = await generateWith(
      testRunInput(runId, {
        intents: ['exploratory'],
        numDialogsPerIntent: 160,
        numTurnsPerDialog: 2,
        concurrency: 4,
      }),
    );
    assert.equal(summary.written, 160);
    assert.equal(dialogues, 160);
    const progress = summary.intents[0]!;
    assert.ok(progress.continuedAsNew >= 2, `continued as new ${progress.continuedAsNew} times`);
    const runs = await runsOf(`${runId}.exploratory`);
    assert.equal(runs.length, progress.continuedAsNew + 1);
    for (const run of runs)
      assert.ok(run.historyLength < 400 + 4 * 20, `history of ${run.historyLength} events`);
  });

  test('intent workflow: 2,000 dialogues stay within 10,000 events and 10 MB per history on its own budget', async () => {
    const runId = unique('can-budget');
    // A server of its own, without the lowered suggestion.
    const noHint = await openTemporal();
    const c = noHint.client;
    try {
      const { activities, log } = fakeActivities();
      const input = testRunInput(runId, {
        numDialogsPerIntent: 2_000,
        numTurnsPerDialog: 6,
        concurrency: 200,
      });
      const summary = (await withTestWorker(
        { connection: noHint.connection, activities, prefix: 'budget' },
        (taskQueue) =>
          c.workflow.execute(WORKFLOW_TYPES.run, { workflowId: runId, taskQueue, args: [input] }),
      )) as RunSummary;
      assert.equal(summary.written, 2_000);
      assert.equal(log.dialogues.size, 2_000);
      assert.ok(summary.intents[0]!.continuedAsNew >= 1);
      const childId = `${runId}.transaction`;
      for await (const execution of c.workflow.list({ query: `WorkflowId = '${childId}'` })) {
        const d = await c.workflow.getHandle(childId, execution.runId).describe();
        assert.ok(d.historyLength < 10_000, `${d.historyLength} events`);
        assert.ok(d.historySize !== undefined && d.historySize < 10 * 1024 * 1024, `${d.historySize} bytes`);
      }
      // The run's history holds the intent's progress reports: at most MAX_PROGRESS_REPORTS, each a
      // signal and at most one workflow task, however many dialogues.
      const parent = await c.workflow.getHandle(runId).describe();
      assert.ok(parent.historyLength < 4 * MAX_PROGRESS_REPORTS + 60, `${parent.historyLength} events`);
    } finally {
      await noHint.close();
    }
  });
});
