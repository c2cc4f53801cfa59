/**
 * A run with its own taxonomy and prompts, end to end: the CLI against a real dev server, with its
 * worker and the real `openai` client, talking to test/llm-server. The records carry the custom
 * intents and topics, the endpoint receives the custom templates, the run records its method, and a
 * resume with a changed taxonomy is refused, then continues with the recorded one when told to.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { methodHash, readPromptsDir, readTaxonomyFile } from '../../src/client/method-files';
import { packageVersion } from '../../src/client/version';
import { runCli, spawnCli } from '../helpers/cli';
import { assertDataset, readDialogues } from '../helpers/output';
import { CUSTOM_TAXONOMY as TAXONOMY } from '../helpers/taxonomy';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { startLlmServer, type LlmServer } from '../llm-server/server';

let temporal: TestDevServer;
let llm: LlmServer;

before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({ latency: { meanMs: 400 }, recordRequests: 1_000 });
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

const SKELETON = `ZEBRA-SKELETON {{intent}} via {{info_flow}}
{{info_flow_steps}}
Seed: {{topic}}
Number of user queries: {{num_turns}}`;
const RESPONSES = `ZEBRA-RESPONSES for {{intent}} on "{{category}}"
{{queries}}
Number of responses: {{num_responses}}`;
const SKELETON_SYSTEM = 'ZEBRA-SYSTEM You write what a customer types.';

test('taxonomy: a run with a custom taxonomy and prompts uses them end to end, records them, and keeps them on resume', async () => {
  const dir = await tempDir('cc-taxonomy-');
  const out = join(dir, 'out');
  const promptsDir = join(dir, 'prompts');
  await mkdir(promptsDir);
  await writeFile(join(dir, 'taxonomy.yaml'), stringify(TAXONOMY));
  await writeFile(join(promptsDir, 'skeleton.txt'), `${SKELETON}\n`);
  await writeFile(join(promptsDir, 'skeleton.system.txt'), SKELETON_SYSTEM);
  await writeFile(join(promptsDir, 'responses.txt'), RESPONSES);
  // Short timeouts: calls cut off when the first process stops are retried quickly.
  await writeFile(
    join(dir, 'config.yaml'),
    stringify({ timeouts: { startToCloseMs: 20_000, heartbeatMs: 2_000, idleMs: 2_000 } }),
  );
  const runId = unique('tax');
  const taskQueue = unique('tq-tax');
  const args = (taxonomy: string, ...more: string[]) => [
    'generate',
    '--out',
    out,
    '--run-id',
    runId,
    '--model',
    'test-model',
    '--dialogs-per-intent',
    '6',
    '--turns',
    '2',
    '--concurrency',
    '2',
    '--config',
    join(dir, 'config.yaml'),
    '--taxonomy',
    taxonomy,
    '--prompts',
    promptsDir,
    '--temporal-address',
    temporal.address,
    '--task-queue',
    taskQueue,
    ...more,
  ];
  const env = { OPENAI_API_KEY: 'sk-taxonomy-test', OPENAI_BASE_URL: llm.url };

  // 1. Start the run and interrupt its process once some dialogues are written: the run is left half
  // done. (SIGINT, not SIGKILL: a storage call cut off by SIGKILL only times out after two minutes.)
  const first = spawnCli(args(join(dir, 'taxonomy.yaml')), env);
  const deadline = Date.now() + 60_000;
  const written = async () =>
    (await readFile(join(out, 'dialogs.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  while ((await written()) < 1 && Date.now() < deadline && first.child.exitCode === null)
    await new Promise((r) => setTimeout(r, 100));
  first.child.kill('SIGINT');
  const killed = await first.done;
  assert.equal(killed.code, 130, `the first process was not interrupted: ${killed.stderr}`);
  const before = await written();
  assert.ok(before >= 1 && before < 12, `interrupted mid-run (${before} of 12 written)`);

  // 2. What the run recorded: package version, method hash, and copies that read back to the same method.
  const runFile = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as {
    packageVersion: string;
    methodHash: string;
  };
  const taxonomy = await readTaxonomyFile(join(dir, 'taxonomy.yaml'));
  const prompts = await readPromptsDir(promptsDir);
  assert.equal(runFile.packageVersion, packageVersion());
  assert.equal(runFile.methodHash, methodHash(taxonomy, prompts));
  assert.deepEqual(await readTaxonomyFile(join(out, 'taxonomy.yaml')), taxonomy);
  assert.deepEqual(await readPromptsDir(join(out, 'prompts')), prompts);
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  try {
    const { memo } = await client.workflow.getHandle(runId).describe();
    assert.equal(memo?.methodHash, runFile.methodHash);
    assert.equal(memo?.packageVersion, packageVersion());
  } finally {
    await client.connection.close();
  }

  // 3. Resuming with a changed taxonomy is refused in one line, before anything starts.
  const changed = structuredClone(TAXONOMY);
  changed.intents[0]!.name = 'Billing Questions';
  changed.intents[0]!.topics = ['A parking fine paid twice', 'A gym that keeps charging'];
  await writeFile(join(dir, 'changed.yaml'), stringify(changed));
  const refused = await runCli(args(join(dir, 'changed.yaml')), env);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /^error: --taxonomy: differs from the taxonomy run .* started with \(sha256:/);
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  assert.equal(await written(), before, 'nothing was written');

  // 4. With --keep-recorded-method it resumes and finishes with the taxonomy it started with.
  llm.configure({ latency: { meanMs: 10 } });
  const resumed = await runCli(args(join(dir, 'changed.yaml'), '--keep-recorded-method'), env);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /--taxonomy ignored: run .* keeps the taxonomy it recorded/);
  const records = await readDialogues(out);
  assertDataset(records, { count: 12, turns: 2, intents: ['billing', 'garden_club'], taxonomy });
  const topics = new Map(TAXONOMY.intents.map((i) => [i.name, i.topics]));
  for (const record of records) {
    assert.ok(
      topics.get(record.intent)?.includes(record.topic),
      `${record.id}: ${record.intent} / ${record.topic}`,
    );
    assert.match(record.id, new RegExp(`^${runId}\\.(billing|garden_club)\\.\\d+$`));
    assert.deepEqual(Object.keys(record.attributes ?? {}), ['user', 'expertise', 'tone', 'situation']);
    const intent = TAXONOMY.intents.find((i) => i.name === record.intent)!;
    assert.ok(intent.infoFlows.map((f) => TAXONOMY.infoFlows[f]!.name).includes(record.info_flow));
  }
  // Each intent's topics were all used before any repeated (6 dialogues over 3 and 2 topics).
  const billing = records.filter((r) => r.intent === 'Billing Help').map((r) => r.topic);
  assert.equal(new Set(billing).size, 3);

  // 5. The endpoint received the custom templates, filled in, and never the built-in ones.
  const received = llm.received();
  const skeletons = received.filter((r) => r.stage === 'skeleton');
  const replies = received.filter((r) => r.stage === 'responses');
  assert.ok(
    skeletons.length >= 12 && replies.length >= 12,
    `${skeletons.length} / ${replies.length} requests`,
  );
  for (const request of skeletons) {
    const [system, user] = request.messages;
    assert.equal(system?.content, SKELETON_SYSTEM);
    assert.match(
      user?.content ?? '',
      /^ZEBRA-SKELETON (Billing Help|Garden Club Chat) via (Question → Answer|Complaint → Fix)\n {2}1\. /,
    );
    // A new run plans user attributes; a template without {{user_profile}} gets them after its text.
    assert.match(
      user?.content ?? '',
      /Number of user queries: 2\n\nThe user, in the background[^\n]*\n(- (user|expertise|tone|situation): [^\n]+\n){4}\nReturn only this JSON object/,
    );
    const seed = /Seed: (.*)\n/.exec(user?.content ?? '')?.[1];
    assert.ok([...topics.values()].flat().includes(seed ?? ''), `seed ${seed}`);
  }
  for (const request of replies) {
    assert.match(
      request.messages[1]?.content ?? '',
      /^ZEBRA-RESPONSES for (Billing Help|Garden Club Chat) on "/,
    );
    assert.ok(!request.messages.some((m) => m.content.includes('Interaction intent:')));
  }
  assert.ok(
    existsSync(join(out, 'prompts', 'responses.system.txt')),
    'the built-in system message is copied too',
  );
});
