/**
 * Topic expansion end to end (issue 22): the CLI against a real dev server, its worker and the real
 * `openai` client, talking to test/llm-server. A run that needs more topics than its seeds grows them
 * into a tree with a few `topics` calls, writes `topics.jsonl` with each leaf's path, and plans its
 * dialogues over the leaves (records carry `topic_path`); `--no-expand` plans over the seeds alone.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { expandSettingsSchema, expansionAim } from '../../src/method/expansion';
import { runCli } from '../helpers/cli';
import { readDialogues, readJsonl } from '../helpers/output';
import { CUSTOM_TAXONOMY } from '../helpers/taxonomy';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { startLlmServer, type LlmServer } from '../llm-server/server';

let temporal: TestDevServer;
let llm: LlmServer;

before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({ latency: { meanMs: 10 } });
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

const SEEDS = CUSTOM_TAXONOMY.intents.find((i) => i.id === 'garden_club')!.topics;

/** By default, 6 dialogues wanting one leaf each (8 with the margin): more than the two seeds. */
const SMALL = { dialogues: 6, expand: { dialoguesPerLeaf: 1, subtopicsPerCall: 4 } };

/** A run of the two-topic intent, one turn a dialogue. */
async function run(name: string, more: string[] = [], size = SMALL) {
  const dir = await tempDir(`cc-topics-${name}-`);
  const out = join(dir, 'out');
  await writeFile(join(dir, 'taxonomy.yaml'), stringify(CUSTOM_TAXONOMY));
  await writeFile(join(dir, 'config.yaml'), stringify({ expand: size.expand }));
  llm.resetStats();
  const result = await runCli(
    [
      'generate',
      ...['--out', out, '--run-id', unique('topics'), '--model', 'test-model'],
      ...['--dialogs-per-intent', String(size.dialogues), '--turns', '1', '--intents', 'garden_club'],
      ...['--taxonomy', join(dir, 'taxonomy.yaml'), '--config', join(dir, 'config.yaml')],
      ...['--temporal-address', temporal.address, '--task-queue', unique('tq-topics')],
      ...more,
    ],
    { OPENAI_API_KEY: 'sk-topics-test', OPENAI_BASE_URL: llm.url },
  );
  assert.equal(result.code, 0, result.stderr);
  return { out, stats: llm.stats() };
}

test('topics: a run needing more topics than its seeds expands them, records each leaf with its path, and plans over the leaves', async () => {
  const { out, stats } = await run('expand');
  const leaves = await readJsonl<{ id: string; intent: string; topic: string; path: string[] }>(
    join(out, 'topics.jsonl'),
  );
  assert.ok(leaves.length >= 6, `enough leaves for 6 dialogues: ${leaves.length}`);
  assert.equal(new Set(leaves.map((l) => l.topic.toLowerCase())).size, leaves.length, 'leaves are distinct');
  for (const leaf of leaves) {
    assert.equal(leaf.intent, 'garden_club');
    assert.equal(leaf.path.at(-1), leaf.topic);
    assert.ok(SEEDS.includes(leaf.path[0]!), `${leaf.path[0]} is a seed topic`);
    assert.ok(!SEEDS.includes(leaf.topic), 'both seeds were expanded');
  }
  assert.ok(stats.stages.topics >= 1 && stats.stages.topics <= 3, `topics calls: ${stats.stages.topics}`);
  const records = await readDialogues(out);
  assert.equal(records.length, 6);
  const byTopic = new Map(leaves.map((l) => [l.topic, l.path]));
  for (const record of records) {
    assert.deepEqual(record.topic_path, byTopic.get(record.topic), `${record.id} planned from a leaf`);
  }
  assert.equal(new Set(records.map((r) => r.topic)).size, 6, 'no leaf repeats while unused ones remain');
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as {
    llmCalls: number;
    stageTokens: { topics?: { prompt: number } };
  };
  assert.equal(summary.llmCalls, 12 + stats.stages.topics, 'the topics calls are in the run books');
  assert.ok((summary.stageTokens.topics?.prompt ?? 0) > 0, 'the topics stage has its tokens');
});

test('topics: expansion spreads the missing leaves over the seeds, in the calls and sizes `plan` estimates', async () => {
  // 101 dialogues at 25 a leaf want 6 leaves of 2 seeds and allow two calls: each seed asked for 4
  // subtopics, where full-size calls would have grown one seed by 10.
  const size = { dialogues: 101, expand: { dialoguesPerLeaf: 25, subtopicsPerCall: 10 } };
  llm.configure({ recordRequests: 1_000 });
  try {
    const { out, stats } = await run('spread', ['--concurrency', '32'], size);
    const aim = expansionAim(SEEDS.length, size.dialogues, expandSettingsSchema.parse(size.expand))!;
    assert.deepEqual(aim, { leaves: 8, calls: 2 });
    assert.equal(stats.stages.topics, aim.calls);
    const asked = llm
      .received()
      .filter((r) => r.stage === 'topics')
      .map((r) => r.messages.map((m) => m.content).join('\n'));
    assert.equal(asked.length, aim.calls);
    for (const seed of SEEDS) {
      const mine = asked.filter((text) => text.includes(`Topic path: ${seed}`));
      assert.equal(mine.length, 1, `${seed} asked once`);
      assert.match(mine[0]!, /Number of subtopics: 4\n/, `${seed} asked for four`);
    }
    // Each reply's subtopics are distinct by construction, but the dedup may still drop one by chance.
    const leaves = await readJsonl<{ path: string[] }>(join(out, 'topics.jsonl'));
    assert.ok(leaves.length >= 6 && leaves.length <= aim.leaves, `${leaves.length} leaves`);
  } finally {
    llm.configure({ recordRequests: 0 });
  }
});

test('topics: --no-expand plans over the seed topics with no topics call and no topics.jsonl', async () => {
  const { out, stats } = await run('off', ['--no-expand']);
  assert.equal(stats.stages.topics, 0);
  assert.equal(existsSync(join(out, 'topics.jsonl')), false);
  const records = await readDialogues(out);
  assert.equal(records.length, 6);
  for (const record of records) {
    assert.ok(SEEDS.includes(record.topic));
    assert.equal(record.topic_path, undefined);
  }
});

test('plan: the built CLI prints a run plan with no server and no LLM call; a bad size is one line and exit 2', async () => {
  llm.resetStats();
  const ok = await runCli(['plan', '--dialogs-per-intent', '150', '--no-expand'], {});
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^1350 dialogues: 1350 distinct plans \(100\.0%\), 0 repeats$/m);
  assert.match(ok.stdout, /^ {2}transaction: 150, 150 \(100\.0%\), 40 of 40$/m);
  const bad = await runCli(['plan', '--dialogs-per-intent', '1.5'], {});
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /--dialogs-per-intent/);
  assert.equal(llm.stats().requests, 0);
});
