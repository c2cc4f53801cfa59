import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { loadPersonas, loadTopics } from '../../src/client/seed-files';
import { BUILTIN_ATTRIBUTES } from '../../src/method/attributes';
import { ConfigError } from '../../src/shared/errors';
import { CUSTOM_TAXONOMY } from '../helpers/taxonomy';
import { tempDir } from '../helpers/temporal';

test('seed files: --topics reads a CSV column (quoted commas, BOM), drops blanks and repeats, for every intent', async () => {
  const dir = await tempDir('cc-seed-');
  await writeFile(
    join(dir, 'topics.csv'),
    '\ufeffid,question\n1,"Fixing a leak, fast"\n2,Choosing a bike\n3,\n4,choosing a BIKE\n',
  );
  const taxonomy = await loadTopics('topics.csv:question', CUSTOM_TAXONOMY, dir);
  for (const intent of taxonomy.intents)
    assert.deepEqual(intent.topics, ['Fixing a leak, fast', 'Choosing a bike']);
  await assert.rejects(loadTopics('topics.csv', CUSTOM_TAXONOMY, dir), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /--topics.*row 1 has no "topic"/);
    return true;
  });
});

test('seed files: --topics reads JSONL and Parquet columns', async () => {
  const dir = await tempDir('cc-seed-');
  await writeFile(
    join(dir, 't.jsonl'),
    '{"topic":"Baking sourdough at altitude"}\n\n{"topic":"Moving a piano"}\n',
  );
  assert.deepEqual((await loadTopics('t.jsonl', undefined, dir)).intents[0]!.topics, [
    'Baking sourdough at altitude',
    'Moving a piano',
  ]);
  const table = tableFromArrays({ text: ['Repotting an orchid', 'Naming a puppy'] });
  const bytes = parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(table, 'stream')));
  await writeFile(join(dir, 't.parquet'), bytes);
  assert.deepEqual((await loadTopics('t.parquet:text', undefined, dir)).intents[3]!.topics, [
    'Repotting an orchid',
    'Naming a puppy',
  ]);
  await assert.rejects(loadTopics('t.parquet', undefined, dir), /has no column "topic"/);
});

test('seed files: --personas adds a persona axis beside the attributes, from YAML or CSV', async () => {
  const dir = await tempDir('cc-seed-');
  await writeFile(
    join(dir, 'p.yaml'),
    '- a night-shift nurse who writes tersely\n- a retired engineer, curious\n',
  );
  const axes = await loadPersonas('p.yaml', undefined, dir);
  assert.deepEqual(axes, [
    ...BUILTIN_ATTRIBUTES,
    { name: 'persona', values: ['a night-shift nurse who writes tersely', 'a retired engineer, curious'] },
  ]);
  await writeFile(join(dir, 'p.csv'), 'who\nA beekeeper\n');
  assert.deepEqual(await loadPersonas('p.csv:who', [{ name: 'tone', values: ['calm'] }], dir), [
    { name: 'tone', values: ['calm'] },
    { name: 'persona', values: ['A beekeeper'] },
  ]);
  await assert.rejects(loadPersonas('missing.csv', undefined, dir), /--personas.*cannot read/);
});
