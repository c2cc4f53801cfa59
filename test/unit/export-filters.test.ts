/** export --filter: metric filters parse strictly, drop what fails in order, and the card says how many. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportDataset } from '../../src/export/export';
import { parseMetricFilter } from '../../src/export/filters';
import { dialogueMetrics } from '../../src/method/metrics';
import { ConfigError } from '../../src/shared/errors';
import type { DialogueRecord } from '../../src/run/schemas';
import { runCliInProcess } from '../helpers/cli-in-process';
import { readJsonl } from '../helpers/output';
import { syntheticRecord, writeSyntheticRun } from '../helpers/synthetic-run';
import { tempDir } from '../helpers/temporal';

test('parseMetricFilter: reads METRIC OP NUMBER and refuses anything else, naming --filter', () => {
  assert.deepEqual(parseMetricFilter('distinct_2.assistant>=0.6'), {
    metric: 'distinct_2.assistant',
    op: '>=',
    value: 0.6,
  });
  assert.deepEqual(parseMetricFilter(' restated_queries < 1 '), {
    metric: 'restated_queries',
    op: '<',
    value: 1,
  });
  for (const bad of [
    'distinct_3.user>=0.5',
    'self_repetition=0',
    'words_per_query>=lots',
    'restated_queries<=',
    '',
  ])
    assert.throws(
      () => parseMetricFilter(bad),
      (e: unknown) => e instanceof ConfigError && e.message.includes('--filter'),
      bad,
    );
});

/** Every response of `r` repeated with one word changed: self-repetition near 1 from the second response. */
const echoing = (r: DialogueRecord, id: string): DialogueRecord => ({
  ...r,
  id,
  conversation: r.conversation.map((t, i) =>
    t.role === 'assistant' ? { ...t, value: `${r.conversation[1]!.value} turn ${i}` } : t,
  ),
});

/** Each query after the first says the first one again, then adds a few words. */
const restating = (r: DialogueRecord, id: string): DialogueRecord => ({
  ...r,
  id,
  conversation: r.conversation.map((t, i) =>
    t.role === 'user' && i > 0 ? { ...t, value: `${r.conversation[0]!.value} and what else` } : t,
  ),
});

test('exportDataset: filters drop dialogues in the order given, list them, and the card counts each', async () => {
  const dir = join(await tempDir('cc-filter-'), 'run');
  const base = Array.from({ length: 30 }, (_, i) => syntheticRecord(i));
  const records: DialogueRecord[] = [
    ...base.slice(0, 10),
    echoing(base[10]!, 'planted.echo.0'),
    // Both restates its queries and echoes: counted against the first filter it fails.
    echoing(restating(base[11]!, 'x'), 'planted.both.0'),
    restating(base[12]!, 'planted.restate.0'),
    ...base.slice(10),
  ];
  // Half the records as generate now stores them (with metrics), half as before metrics existed.
  const stored = records.map((r, i) => (i % 2 ? { ...r, metrics: dialogueMetrics(r.conversation) } : r));
  await writeSyntheticRun(dir, { records: stored });
  const out = join(dir, 'export', 'hf');
  const result = await exportDataset({
    dir,
    format: 'hf',
    out,
    filters: [parseMetricFilter('self_repetition<=0.5'), parseMetricFilter('restated_queries<=0')],
  });
  assert.equal(result.read, 33);
  assert.equal(result.written, 30);
  assert.deepEqual(result.filtered, [
    { filter: 'self_repetition <= 0.5', removed: 2 },
    { filter: 'restated_queries <= 0', removed: 1 },
  ]);
  const listed = await readJsonl<{ id: string; filter: string; value: number }>(join(out, 'filtered.jsonl'));
  assert.deepEqual(
    listed.map((l) => [l.id, l.filter]),
    [
      ['planted.echo.0', 'self_repetition <= 0.5'],
      ['planted.both.0', 'self_repetition <= 0.5'],
      ['planted.restate.0', 'restated_queries <= 0'],
    ],
  );
  assert.ok(listed[0]!.value > 0.5);
  assert.equal(result.metrics.dialogues, 30);
  assert.equal(result.metrics.stored, 15, 'odd lines carried metrics');
  const card = await readFile(join(out, 'README.md'), 'utf8');
  assert.match(card, /\| rows removed by metric filters \| 3 \(see Filters\) \|/);
  assert.match(card, /\| `self_repetition <= 0.5` \| 2 \|/);
  assert.match(card, /\| `restated_queries <= 0` \| 1 \|/);
  assert.match(card, /## Dialogue metrics/);
  assert.match(card, /15 of 30 rows carried them from generation/);
  assert.match(card, /\| user query \| \d+\.\d \| 18\.7–20\.8 \|/);

  // Without filters the stale list goes and nothing is removed.
  const plain = await exportDataset({ dir, format: 'openai', out: join(dir, 'export', 'hf') });
  assert.equal(plain.written, 33);
  assert.deepEqual(plain.filtered, []);
  await assert.rejects(readFile(join(out, 'filtered.jsonl')), { code: 'ENOENT' });
});

test('export CLI: a malformed --filter exits 2 naming the flag', async () => {
  const dir = join(await tempDir('cc-filter-cli-'), 'run');
  await writeSyntheticRun(dir, { count: 3 });
  const result = await runCliInProcess(['export', dir, '--format', 'openai', '--filter', 'distinct_9>=1']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--filter/);
});
