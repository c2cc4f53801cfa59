import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandSettingsSchema } from '../../src/method/expansion';
import { INTENT_IDS } from '../../src/method/intents';
import { formatPlanStats, planStats } from '../../src/method/plan-stats';

const expand = expandSettingsSchema.parse({});

test('plan stats: without attributes or expansion the built-in topics repeat; with them no plan repeats', () => {
  const bare = planStats({ seed: 's', intents: ['transaction'], perIntent: 500, attributes: 'none' });
  assert.equal(bare.intents.transaction!.distinct, 80, '40 topics x 2 flows');
  assert.equal(bare.repeats, 420);
  const full = planStats({ seed: 's', intents: INTENT_IDS, perIntent: 500, attributes: 'builtin', expand });
  assert.equal(full.dialogues, 4_500);
  assert.equal(full.repeats, 0);
  assert.deepEqual(full.intents.transaction!.expansion, { leaves: 80, calls: 5 }, 'five seeds grown to nine');
  assert.equal(
    Object.values(full.flows).reduce((a, b) => a + b, 0),
    4_500,
    'every dialogue has a flow',
  );
  for (const counts of Object.values(full.attributes))
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      4_500,
      'every dialogue has each axis',
    );
});

test('plan stats: the terminal view names the totals, each intent and the expansion it would make', () => {
  const lines = formatPlanStats(
    planStats({ seed: 's', intents: ['transaction'], perIntent: 1_000, attributes: 'builtin', expand }),
  );
  assert.equal(lines[0], '1000 dialogues: 1000 distinct plans (100.0%), 0 repeats');
  assert.ok(
    lines.some((l) =>
      /transaction: 1000, 1000 \(100\.0%\), 158 of 158 \(expansion to 158 leaves, about 10 calls\)/.test(l),
    ),
  );
  assert.ok(lines.some((l) => /^ {2}tone: min \d+, max \d+ over 6 values$/.test(l)));
});
