/**
 * Fair sharing rests on the server handing a run's priority down: the run workflow is started with
 * it, its intents and their activities carry none of their own (src/client/fair-share.ts). On a real
 * dev server, with the generation worker's setting that sends every activity through the task queue
 * (QUEUED_ACTIVITIES), the LLM activities' tasks carry the run's priority, fairness key and weight.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Context } from '@temporalio/activity';
import type { Priority } from '@temporalio/common';
import type { Activities } from '../../src/activities';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import type { RunSummary } from '../../src/run/schemas';
import { QUEUED_ACTIVITIES } from '../../src/worker';
import { fakeActivities } from '../helpers/fake-activities';
import { unique, useTemporal } from '../helpers/temporal';
import { testRunInput } from '../helpers/run-input';
import { withTestWorker } from '../helpers/workers';

const temporal = useTemporal();

test('fair share: the LLM activities of a run come from the task queue with the priority, fairness key and weight the run was started with', async () => {
  const { activities } = fakeActivities();
  const seen: { stage: string; priority?: Priority }[] = [];
  const recording: Activities = {
    ...activities,
    generateSkeleton(input) {
      seen.push({ stage: 'skeleton', priority: Context.current().info.priority });
      return activities.generateSkeleton(input);
    },
    generateResponses(input) {
      seen.push({ stage: 'responses', priority: Context.current().info.priority });
      return activities.generateResponses(input);
    },
  };
  const runId = unique('fair');
  const input = testRunInput(runId);
  const priority = { priorityKey: 2, fairnessKey: 'team-a', fairnessWeight: 2.5 };
  const summary = await withTestWorker(
    {
      connection: temporal.connection,
      activities: recording,
      prefix: 'fair',
      deadlineMs: 120_000,
      workerOptions: QUEUED_ACTIVITIES,
    },
    (taskQueue) =>
      temporal.client.workflow.execute(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input],
        priority,
      }) as Promise<RunSummary>,
  );
  assert.equal(summary.written, 2);
  assert.deepEqual(seen.map((s) => s.stage).sort(), ['responses', 'responses', 'skeleton', 'skeleton']);
  for (const { stage, priority: got } of seen) assert.deepEqual({ ...got }, priority, stage);
});
