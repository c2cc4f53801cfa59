import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createStorageActivities } from '../../src/activities/storage';
import { readDialogueRecords } from '../../src/export/records';
import { dialogueMetrics, metricsOf } from '../../src/method/metrics';
import { methodHash } from '../../src/client/method-files';
import { BUILTIN_PROMPTS } from '../../src/method/prompts';
import { BUILTIN_TAXONOMY } from '../../src/method/taxonomy';
import { runInputSchema, type RunSummary, type StoreDialoguesResult } from '../../src/run/schemas';
import { StoreRegistry } from '../../src/storage/jsonl-store';
import { testRecord as record } from '../helpers/storage';
import { tempDir } from '../helpers/temporal';

test('storage activity: names the ids it found already stored, except on a retry of its own write', async () => {
  const dir = await tempDir('cc-store-act-');
  const storage = new StoreRegistry({ fsync: false, root: dir });
  try {
    const activities = createStorageActivities(storage);
    const storeDialogues = (input: Parameters<typeof activities.storeDialogues>[0]) =>
      activities.storeDialogues(input);
    const first = await new MockActivityEnvironment({ attempt: 1 }).run(storeDialogues, {
      outDir: dir,
      records: [record('r1.transaction.0'), record('r1.transaction.1')],
    });
    assert.deepEqual(first, { written: 2, duplicates: 0, invalid: [], duplicateIds: [] });
    const again: StoreDialoguesResult = await new MockActivityEnvironment({ attempt: 1 }).run(
      storeDialogues,
      {
        outDir: dir,
        records: [record('r1.transaction.1'), record('r1.transaction.2')],
      },
    );
    assert.deepEqual(again.duplicateIds, ['r1.transaction.1']);
    assert.equal(again.written, 1);
    // A second attempt finds what its first attempt wrote before its completion was lost.
    const retry: StoreDialoguesResult = await new MockActivityEnvironment({ attempt: 2 }).run(
      storeDialogues,
      {
        outDir: dir,
        records: [record('r1.transaction.2'), record('r1.transaction.3')],
      },
    );
    assert.deepEqual(retry.duplicateIds, []);
    assert.equal(retry.written, 1);
  } finally {
    await storage.closeAll();
    await rm(dir, { recursive: true, force: true });
  }
});

test('storage activity: stores each record with its metrics, and readers take records with and without them', async () => {
  const dir = await tempDir('cc-store-metrics-');
  const storage = new StoreRegistry({ fsync: false, root: dir });
  try {
    const activities = createStorageActivities(storage);
    const stored = record('r2.transaction.0', 'How do I book a flight with a stopover in Lisbon?');
    await new MockActivityEnvironment({ attempt: 1 }).run(
      (input: Parameters<typeof activities.storeDialogues>[0]) => activities.storeDialogues(input),
      { outDir: dir, records: [stored] },
    );
    await storage.closeAll();
    const file = join(dir, 'dialogs.jsonl');
    const line = JSON.parse((await readFile(file, 'utf8')).trim());
    assert.equal(Object.keys(line)[0], 'id', 'the store finds ids at the start of each line');
    assert.deepEqual(line.metrics, dialogueMetrics(stored.conversation));
    // A record from before metrics existed, appended as an older version wrote it.
    const old = record('r2.transaction.1', 'Which seat should I choose on a long flight?');
    await writeFile(file, `${JSON.stringify(old)}\n`, { flag: 'a' });
    const read = [];
    for await (const r of readDialogueRecords(dir)) read.push(metricsOf(r));
    assert.deepEqual(
      read.map((r) => r.stored),
      [true, false],
    );
    assert.deepEqual(read[1]!.metrics, dialogueMetrics(old.conversation));
  } finally {
    await storage.closeAll();
    await rm(dir, { recursive: true, force: true });
  }
});

test('storage activity: writeRunFiles writes summary.json each time, run.json and the method copies only where none is', async () => {
  const root = await tempDir('cc-store-runfiles-');
  const dir = join(root, 'run');
  const storage = new StoreRegistry({ fsync: false, root });
  try {
    const activities = createStorageActivities(storage);
    const config = runInputSchema.parse({
      runId: 'r3',
      outDir: dir,
      model: 'gpt-4o-mini',
      taxonomy: BUILTIN_TAXONOMY,
      prompts: BUILTIN_PROMPTS,
    });
    const summary = (written: number): RunSummary => ({
      runId: 'r3',
      outDir: dir,
      model: 'gpt-4o-mini',
      requested: 2,
      written,
      failed: 0,
      tokens: { prompt: 100, completion: 50 },
      llmCalls: 2,
      estimatedCostUsd: 0.001,
      intents: [],
    });
    const write = (s: RunSummary): Promise<{ written: string[] }> =>
      new MockActivityEnvironment().run(
        (input: Parameters<typeof activities.writeRunFiles>[0]) => activities.writeRunFiles(input),
        { config, summary: s, startedAt: '2026-12-04T00:00:00.000Z' },
      );
    const first = await write(summary(1));
    assert.deepEqual(first.written.slice(0, 3), ['summary.json', 'run.json', 'taxonomy.yaml']);
    assert.ok(first.written.includes('prompts/skeleton.txt'));
    const runFile = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8'));
    assert.equal(runFile.createdAt, '2026-12-04T00:00:00.000Z');
    assert.equal(runFile.methodHash, methodHash(BUILTIN_TAXONOMY, BUILTIN_PROMPTS));
    // A client's run.json stays as it wrote it; summary.json follows the run.
    await writeFile(join(dir, 'run.json'), '{"runId":"r3","input":{"model":"gpt-4o-mini"}}');
    assert.deepEqual((await write(summary(2))).written, ['summary.json']);
    assert.equal(
      await readFile(join(dir, 'run.json'), 'utf8'),
      '{"runId":"r3","input":{"model":"gpt-4o-mini"}}',
    );
    const file = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8'));
    assert.equal(file.written, 2);
    assert.equal(file.cost.total, 0.001);
  } finally {
    await storage.closeAll();
    await rm(root, { recursive: true, force: true });
  }
});
