/**
 * Every committed history (test/replay/histories, recorded by record.ts from real runs) replays
 * against the current workflow code. A change that alters the commands an existing history expects
 * fails here: put it behind `patched('name')` or a new workflow type (README, "Design notes").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import { workflowBundle } from '../../src/worker';
import { quietRuntime } from '../helpers/temporal';
import { historyFromJson, loadHistories } from './histories';

test('replay: every recorded run and intent history replays without nondeterminism', async () => {
  quietRuntime();
  const histories = await loadHistories();
  const types = new Set(histories.map((h) => h.recorded.workflowType));
  assert.ok(
    types.has(WORKFLOW_TYPES.run) && types.has(WORKFLOW_TYPES.intent),
    'both workflow types recorded',
  );
  const scenarios = new Set(histories.map((h) => h.name.split('/')[0]));
  for (const s of [
    'normal',
    'continue-as-new',
    'pause-resume',
    'failures',
    'systemic-stop',
    'updates',
    'live-progress',
    'lean-loop',
    'finishing-intents',
    'store-group',
    'worker-gate',
  ])
    assert.ok(scenarios.has(s), `scenario ${s} recorded`);

  const results = Worker.runReplayHistories(
    { workflowBundle: await workflowBundle(), replayName: 'consistent-chat-replay' },
    histories.map(({ recorded }) => ({
      workflowId: recorded.workflowId,
      history: historyFromJson(recorded.history),
    })),
  );
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of results) {
    const { name } = histories[replayed++]!;
    if (result.error) failures.push(`${name}: ${result.error.name}: ${result.error.message}`);
  }
  assert.equal(replayed, histories.length, 'every history replayed');
  assert.deepEqual(failures, []);
});
