/** The `hf` export's dataset card: the run's method summarised and pointed to, not pasted in. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { datasetCard } from '../../src/export/card';
import { BUILTIN_PROMPTS, BUILTIN_TAXONOMY } from '../../src/method';

test('dataset card: a 4-row run summarises the taxonomy it used and links the method files instead of embedding them', () => {
  const [used, unused] = BUILTIN_TAXONOMY.intents;
  const card = datasetCard({
    run: {
      runId: 'r1',
      createdAt: '2026-01-01T00:00:00.000Z',
      methodHash: 'sha256:abc',
      input: {
        model: 'gpt-4o-mini',
        intents: [used!.id],
        numDialogsPerIntent: 4,
        numTurnsPerDialog: 2,
        taxonomy: BUILTIN_TAXONOMY,
        prompts: BUILTIN_PROMPTS,
      },
    },
    generatorVersion: '0.1.0',
    rows: 4,
    shards: 1,
    perIntent: new Map([[used!.name, 4]]),
    perFlow: new Map([['Question → Answer', 4]]),
    perIntentFlow: new Map([[`${used!.name} / Question → Answer`, 4]]),
    models: new Map([['gpt-4o-mini', 4]]),
    system: undefined,
    dedup: undefined,
    license: 'cc-by-4.0',
    language: ['en'],
  });
  assert.ok(card.length < 6_000, `a readable card: ${card.length} characters`);
  for (const topic of unused!.topics.slice(0, 5)) assert.ok(!card.includes(topic), `unused topic "${topic}"`);
  assert.ok(!card.includes(BUILTIN_PROMPTS.skeleton.user.slice(0, 60)), 'no prompt template pasted');
  assert.match(card, new RegExp(`\\| ${used!.name} \\| [^|]+ \\| ${used!.topics.length} \\|`));
  assert.match(card, /taxonomy has 9 intents/);
  assert.match(card, /\[`taxonomy\.yaml`\]\(\.\.\/\.\.\/taxonomy\.yaml\)/);
  assert.match(card, /\[`prompts\/`\]\(\.\.\/\.\.\/prompts\)/);
  assert.match(card, /method hash `sha256:abc`/);
  assert.match(card, /\| `numDialogsPerIntent` \| `4` \|/);
});
