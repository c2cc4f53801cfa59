/**
 * Taxonomies and prompt templates: the shipped built-in file, parsing and validation of custom ones
 * (each bad case names its field), plans drawn from a custom taxonomy, prompt rendering, the method
 * hash and the copies written beside a run, and what a resume with a different method does.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import {
  checkPrompts,
  checkTaxonomy,
  loadMethodOptions,
  methodHash,
  readPromptsDir,
  readTaxonomyFile,
  writeMethodCopies,
} from '../../src/client/method-files';
import { resolveRunInput, saveRunFile } from '../../src/client/generate';
import { OLDEST_RESUMABLE_VERSION } from '../../src/workflows/patches';
import { packageVersion } from '../../src/client/version';
import {
  BUILTIN_PROMPTS,
  BUILTIN_TAXONOMY,
  INTENT_IDS,
  planDialogue,
  promptContext,
  resolveIntent,
  responsesMessages,
  skeletonMessages,
  taxonomySchema,
  toDialogueRecord,
  type PromptTemplates,
  type Taxonomy,
} from '../../src/method';
import { runInputSchema } from '../../src/run/schemas';
import { ConfigError } from '../../src/worker';
import { CUSTOM_TAXONOMY as CUSTOM } from '../helpers/taxonomy';
import { tempDir } from '../helpers/temporal';

const CUSTOM_PROMPTS: PromptTemplates = {
  skeleton: {
    system: 'You write user turns for {{intent}}.',
    user: 'MARK-S {{intent}} / {{info_flow}}\n{{info_flow_steps}}\nTopic: {{topic}}\nNumber of user queries: {{num_turns}}',
  },
  responses: {
    system: 'You answer as a helpful assistant.',
    user: 'MARK-R {{category}} ({{topic}})\n{{queries}}\nNumber of responses: {{num_responses}}',
  },
};

const clone = <T>(v: T): T => structuredClone(v);

/** The message of a ConfigError thrown by `fn`. */
function configErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail('no error thrown');
}

test('taxonomy: the shipped built-in file is a valid taxonomy of the nine intents, in the paper order', () => {
  const parsed = taxonomySchema.parse(BUILTIN_TAXONOMY);
  assert.deepEqual(
    parsed.intents.map((i) => i.id),
    [
      'problem_solving',
      'educational',
      'health_consultation',
      'exploratory',
      'entertainment',
      'simulation',
      'emotional_support',
      'information_retrieval',
      'transaction',
    ],
  );
  assert.deepEqual(
    [...INTENT_IDS],
    parsed.intents.map((i) => i.id),
  );
  assert.equal(Object.keys(parsed.infoFlows).length, 7);
  for (const intent of parsed.intents) assert.ok(intent.topics.length >= 30, intent.id);
});

test('plan: the built-in plan is bit-identical to the one before the taxonomy became a file', () => {
  // The sha256 of these plans, taken from the code before the move (intents.ts/topics.ts constants).
  const plans: unknown[] = [];
  for (const seed of ['a', 'seed-2', 'cc-20260101-abc'])
    for (const intent of INTENT_IDS)
      for (let index = 0; index < 130; index++) plans.push(planDialogue({ runId: 'r', seed, intent, index }));
  const digest = createHash('sha256').update(JSON.stringify(plans)).digest('hex');
  assert.equal(digest, '5af4aa631e560123b756defef12054e4ef58c79868aca402ee07d17fe4a67ae2');
  // Passing the built-in taxonomy explicitly gives the same plan as passing none.
  assert.deepEqual(
    planDialogue({ runId: 'r', seed: 's', intent: 'simulation', index: 41, taxonomy: BUILTIN_TAXONOMY }),
    planDialogue({ runId: 'r', seed: 's', intent: 'simulation', index: 41 }),
  );
});

test('taxonomy: each bad taxonomy is refused with the path of its bad field', () => {
  const cases: [string, (t: Taxonomy) => unknown, RegExp][] = [
    [
      'intent with no flows',
      (t) => ((t.intents[0]!.infoFlows = []), t),
      /intents\.0\.infoFlows: must list at least one info flow/,
    ],
    [
      'flow with no steps',
      (t) => ((t.infoFlows.complaint_to_fix!.steps = []), t),
      /infoFlows\.complaint_to_fix\.steps: must list at least one step/,
    ],
    [
      'intent with no topics',
      (t) => ((t.intents[1]!.topics = []), t),
      /intents\.1\.topics: must list at least one topic/,
    ],
    [
      'unknown flow',
      (t) => ((t.intents[1]!.infoFlows = ['nowhere']), t),
      /intents\.1\.infoFlows\.0: unknown info flow "nowhere"/,
    ],
    [
      'repeated intent id',
      (t) => ((t.intents[1]!.id = 'billing'), t),
      /intents\.1\.id: repeats intent "billing"/,
    ],
    ['bad id alphabet', (t) => ((t.intents[0]!.id = 'Billing Help'), t), /intents\.0\.id: lowercase letters/],
    [
      'repeated topic',
      (t) => (t.intents[0]!.topics.push('a double charge on a card'), t),
      /intents\.0\.topics\.3: repeats topic/,
    ],
    [
      'multi-line topic',
      (t) => ((t.intents[0]!.topics[0] = 'one\ntwo'), t),
      /intents\.0\.topics\.0: must be a single line/,
    ],
    ['empty name', (t) => ((t.intents[0]!.name = '  '), t), /intents\.0\.name: must not be empty/],
    ['unknown key', (t) => ({ ...t, info_flows: {} }), /\(taxonomy\): Unrecognized key: "info_flows"/],
    ['no intents', (t) => ({ ...t, intents: [] }), /intents: must list at least one intent/],
    [
      'too many intents',
      (t) => ({ ...t, intents: Array.from({ length: 51 }, (_, i) => ({ ...t.intents[0]!, id: `i${i}` })) }),
      /intents: Too big/,
    ],
    [
      'a topic too long',
      (t) => ((t.intents[0]!.topics[0] = 'x'.repeat(301)), t),
      /intents\.0\.topics\.0: Too big/,
    ],
    ['not a mapping', () => 'intents', /\(taxonomy\): Invalid input/],
  ];
  for (const [name, mutate, expected] of cases) {
    const message = configErrorOf(() => checkTaxonomy(mutate(clone(CUSTOM)), '--taxonomy', 'my.yaml'));
    assert.match(message, /^--taxonomy: my\.yaml: /, name);
    assert.match(message, expected, `${name}: ${message}`);
    assert.ok(!message.includes('\n'), `${name}: one line`);
  }
  assert.deepEqual(checkTaxonomy(clone(CUSTOM)), CUSTOM);
});

test('taxonomy: files are read as YAML or JSON; unreadable, invalid and alias-bomb files are refused', async () => {
  const dir = await tempDir('cc-tax-');
  await writeFile(join(dir, 't.yaml'), stringify(CUSTOM));
  await writeFile(join(dir, 't.json'), JSON.stringify(CUSTOM));
  assert.deepEqual(await readTaxonomyFile(join(dir, 't.yaml')), CUSTOM);
  assert.deepEqual(await readTaxonomyFile(join(dir, 't.json')), CUSTOM);
  await writeFile(join(dir, 'bad.yaml'), 'intents: [\n');
  await assert.rejects(
    readTaxonomyFile(join(dir, 'bad.yaml')),
    /--taxonomy: .*bad\.yaml is not valid YAML or JSON/,
  );
  await assert.rejects(
    readTaxonomyFile(join(dir, 'none.yaml')),
    /--taxonomy: cannot read .*none\.yaml: ENOENT/,
  );
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (let i = 0; i < 12; i++)
    bomb.push(
      `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9)
        .fill(`*${String.fromCharCode(97 + i)}`)
        .join(',')}]`,
    );
  await writeFile(join(dir, 'bomb.yaml'), bomb.join('\n'));
  await assert.rejects(
    readTaxonomyFile(join(dir, 'bomb.yaml')),
    /--taxonomy: .*bomb\.yaml is not valid YAML or JSON/,
  );
});

test('prompts: each bad template is refused naming its file and the placeholder', async () => {
  const cases: [string, (p: PromptTemplates) => void, RegExp][] = [
    [
      'missing topic',
      (p) => (p.skeleton.user = 'Number of user queries: {{num_turns}} {{info_flow_steps}}'),
      /skeleton\.txt: must contain the placeholder \{\{topic\}\}/,
    ],
    [
      'missing queries',
      (p) => (p.responses.user = 'Answer it.'),
      /responses\.txt: must contain the placeholder \{\{queries\}\}/,
    ],
    [
      'unknown placeholder',
      (p) => (p.skeleton.user += ' {{mood}}'),
      /skeleton\.txt: unknown placeholder \{\{mood\}\}; the skeleton stage knows/,
    ],
    [
      'stage-2 placeholder in stage 1',
      (p) => (p.skeleton.system = '{{queries}}'),
      /skeleton\.system\.txt: unknown placeholder \{\{queries\}\}/,
    ],
    ['empty system', (p) => (p.responses.system = ' \n'), /responses\.system\.txt: must not be empty/],
    ['too long', (p) => (p.responses.user += 'x'.repeat(20_000)), /responses\.txt: Too big/],
  ];
  for (const [name, mutate, expected] of cases) {
    const prompts = clone(CUSTOM_PROMPTS);
    mutate(prompts);
    const message = configErrorOf(() => checkPrompts(prompts));
    assert.match(message, /^--prompts: /, name);
    assert.match(message, expected, `${name}: ${message}`);
  }
  assert.deepEqual(checkPrompts(BUILTIN_PROMPTS), BUILTIN_PROMPTS);

  const dir = await tempDir('cc-prompts-');
  await writeFile(join(dir, 'skeleton.txt'), `${CUSTOM_PROMPTS.skeleton.user}\n`);
  await assert.rejects(readPromptsDir(dir), /--prompts: .*responses\.txt: missing/);
  await writeFile(join(dir, 'responses.txt'), CUSTOM_PROMPTS.responses.user);
  const read = await readPromptsDir(dir);
  // Absent system files fall back to the built-in system messages; one trailing newline is dropped.
  assert.deepEqual(read, {
    skeleton: { system: BUILTIN_PROMPTS.skeleton.system, user: CUSTOM_PROMPTS.skeleton.user },
    responses: { system: BUILTIN_PROMPTS.responses.system, user: CUSTOM_PROMPTS.responses.user },
  });
  // The judge's rubric is optional; its system file alone is refused, a rubric without the transcript too.
  await writeFile(join(dir, 'judge.system.txt'), 'You judge.\n');
  await assert.rejects(readPromptsDir(dir), /--prompts: .*judge\.txt: missing/);
  await writeFile(join(dir, 'judge.txt'), 'Judge {{intent}}: {{topic}}');
  await assert.rejects(readPromptsDir(dir), /--prompts: .*judge\.txt: unknown placeholder \{\{topic\}\}/);
  await writeFile(join(dir, 'judge.txt'), 'Judge {{intent}}');
  await assert.rejects(
    readPromptsDir(dir),
    /--prompts: .*judge\.txt: must contain the placeholder \{\{transcript\}\}/,
  );
  await writeFile(join(dir, 'judge.txt'), 'Judge {{intent}}:\n{{transcript}}\n');
  assert.deepEqual((await readPromptsDir(dir)).judge, {
    system: 'You judge.',
    user: 'Judge {{intent}}:\n{{transcript}}',
  });
  await writeFile(join(dir, 'skeleton.system.md'), 'x');
  await assert.rejects(readPromptsDir(dir), /--prompts: .*skeleton\.system\.md: unknown file/);
});

test('plan: a custom taxonomy is planned from its own flows and topics, seeded and spread', () => {
  const plan = (intent: string, index: number, seed = 's') =>
    planDialogue({ runId: 'run', seed, intent, index, taxonomy: CUSTOM });
  const billing = Array.from({ length: 6 }, (_, i) => plan('billing', i));
  assert.deepEqual(
    billing,
    Array.from({ length: 6 }, (_, i) => plan('billing', i)),
  );
  assert.equal(billing[4]!.id, 'run.billing.4');
  // Each cycle of three uses every topic once; the two flows alternate evenly over whole cycles.
  assert.equal(new Set(billing.slice(0, 3).map((p) => p.topic)).size, 3);
  assert.equal(new Set(billing.slice(3).map((p) => p.topic)).size, 3);
  for (const p of billing) assert.ok(CUSTOM.intents[0]!.topics.includes(p.topic));
  const flows = billing.map((p) => p.infoFlow);
  assert.equal(flows.filter((f) => f === 'question_to_answer').length, 3);
  for (let i = 0; i < 4; i++) assert.equal(plan('garden_club', i).infoFlow, 'question_to_answer');
  assert.throws(() => plan('problem_solving', 0), /not in the taxonomy/);
  assert.equal(resolveIntent('Garden Club Chat', CUSTOM), 'garden_club');
  assert.equal(resolveIntent('garden-club', CUSTOM), 'garden_club');
  assert.equal(resolveIntent('transaction', CUSTOM), undefined);

  const record = toDialogueRecord({
    plan: billing[0]!,
    skeleton: { category: 'Card Charges', queries: ['q'] },
    responses: ['r'],
    model: 'm',
    taxonomy: CUSTOM,
  });
  assert.equal(record.intent, 'Billing Help');
  assert.equal(record.info_flow, CUSTOM.infoFlows[billing[0]!.infoFlow]!.name);
  assert.deepEqual(Object.keys(record), [
    'id',
    'category',
    'conversation',
    'intent',
    'info_flow',
    'topic',
    'model',
  ]);
});

test('prompts: templates are rendered with the plan, and values are never expanded as placeholders', () => {
  const taxonomy = clone(CUSTOM);
  taxonomy.intents[1]!.topics[0] = 'Tricky {{queries}} topic';
  const plan = planDialogue({ runId: 'r', seed: 'x', intent: 'garden_club', index: 0, taxonomy });
  const topicPlan = { ...plan, topic: 'Tricky {{queries}} topic' };
  const [system, user] = skeletonMessages(
    topicPlan,
    3,
    promptContext('skeleton', topicPlan, taxonomy, CUSTOM_PROMPTS),
  );
  assert.equal(system?.content, 'You write user turns for Garden Club Chat.');
  assert.equal(
    user?.content,
    'MARK-S Garden Club Chat / Question → Answer\n  1. ask the question\n  2. check the answer\nTopic: Tricky {{queries}} topic\nNumber of user queries: 3\n\nReturn only this JSON object: {"category": string, "queries": [exactly 3 strings]}',
  );
  const skeleton = { category: 'Bulbs', queries: ['when to plant?', 'too late now?'] };
  const [, responses] = responsesMessages(
    topicPlan,
    skeleton,
    promptContext('responses', topicPlan, taxonomy, CUSTOM_PROMPTS),
  );
  assert.equal(
    responses?.content,
    `MARK-R Bulbs (Tricky {{queries}} topic)\n${JSON.stringify(skeleton.queries, null, 2)}\nNumber of responses: 2\n\nReturn only this JSON object: {"responses": [exactly 2 strings]}`,
  );
  // Without a context the built-in templates and taxonomy are used.
  const builtinPlan = planDialogue({ runId: 'r', seed: 'x', intent: 'transaction', index: 0 });
  assert.match(
    skeletonMessages(builtinPlan, 2)[1]?.content as string,
    /Interaction intent: Transaction Interaction/,
  );
});

test('run input: a taxonomy sets the known intents and their default; inputs without one parse as before', () => {
  const base = { runId: 'r1', outDir: '/tmp/x', model: 'm' };
  const withCustom = runInputSchema.parse({ ...base, taxonomy: CUSTOM, prompts: CUSTOM_PROMPTS });
  assert.deepEqual(withCustom.intents, ['billing', 'garden_club']);
  const wrong = runInputSchema.safeParse({ ...base, taxonomy: CUSTOM, intents: ['transaction'] });
  assert.equal(wrong.success, false);
  assert.deepEqual(wrong.error?.issues[0]?.path, ['intents', 0]);
  assert.match(
    wrong.error?.issues[0]?.message ?? '',
    /unknown intent "transaction"; known: billing, garden_club/,
  );

  const old = runInputSchema.parse(base);
  assert.deepEqual(old.intents, [...INTENT_IDS]);
  assert.ok(!('taxonomy' in old) && !('prompts' in old), 'no taxonomy or prompts added to old inputs');
  assert.equal(runInputSchema.safeParse({ ...base, intents: ['billing'] }).success, false);

  // The workflow's own bound: a taxonomy too big to travel in a payload is refused there too.
  const huge = clone(CUSTOM);
  huge.intents[0]!.topics = Array.from({ length: 2_000 }, (_, i) => `${i} ${'y'.repeat(280)}`);
  const tooBig = runInputSchema.safeParse({ ...base, taxonomy: huge });
  assert.equal(tooBig.success, false);
  assert.deepEqual(tooBig.error?.issues[0]?.path, ['taxonomy']);
  const badPrompt = runInputSchema.safeParse({
    ...base,
    prompts: { ...CUSTOM_PROMPTS, skeleton: { ...CUSTOM_PROMPTS.skeleton, user: 'no placeholders' } },
  });
  assert.deepEqual(badPrompt.error?.issues[0]?.path, ['prompts', 'skeleton', 'user']);
});

test('method: the hash ignores key order, copies beside the output read back to the same method', async () => {
  const reordered = { intents: CUSTOM.intents, infoFlows: CUSTOM.infoFlows };
  assert.equal(methodHash(reordered, CUSTOM_PROMPTS), methodHash(CUSTOM, CUSTOM_PROMPTS));
  assert.notEqual(methodHash(CUSTOM, CUSTOM_PROMPTS), methodHash(CUSTOM, BUILTIN_PROMPTS));
  assert.equal(methodHash(), methodHash(BUILTIN_TAXONOMY, BUILTIN_PROMPTS));

  const dir = await tempDir('cc-copies-');
  await writeMethodCopies(dir, CUSTOM, CUSTOM_PROMPTS, methodHash(CUSTOM, CUSTOM_PROMPTS));
  const taxonomy = await readTaxonomyFile(join(dir, 'taxonomy.yaml'));
  const prompts = await readPromptsDir(join(dir, 'prompts'));
  assert.deepEqual(taxonomy, CUSTOM);
  assert.deepEqual(prompts, CUSTOM_PROMPTS);
  assert.equal(methodHash(taxonomy, prompts), methodHash(CUSTOM, CUSTOM_PROMPTS));
});

test('resume: a different taxonomy or prompts is refused, or kept with --keep-recorded-method; versions are noted', async () => {
  const dir = await tempDir('cc-resume-');
  const first = await resolveRunInput(
    { outDir: dir, runId: 'tax-run', model: 'm', taxonomy: CUSTOM, prompts: CUSTOM_PROMPTS },
    dir,
  );
  assert.equal(first.resumed, false);
  // Nothing is written until the start-up checks pass; then generate records the run.
  await assert.rejects(readFile(join(dir, 'run.json'), 'utf8'), /ENOENT/);
  await saveRunFile(dir, first.config, first.record);
  const runFile = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(runFile.packageVersion, packageVersion());
  assert.equal(runFile.methodHash, methodHash(CUSTOM, CUSTOM_PROMPTS));
  assert.equal(first.record.methodHash, runFile.methodHash);
  assert.deepEqual((runFile.input as { taxonomy: unknown }).taxonomy, CUSTOM);

  // The same method again (here: its copies in the directory) resumes.
  const same = await resolveRunInput(
    {
      outDir: dir,
      taxonomy: await readTaxonomyFile(join(dir, 'taxonomy.yaml')),
      prompts: await readPromptsDir(join(dir, 'prompts')),
    },
    dir,
  );
  assert.equal(same.resumed, true);

  const changed = clone(CUSTOM);
  changed.intents[1]!.topics.push('Composting in a small flat');
  await assert.rejects(
    resolveRunInput({ outDir: dir, taxonomy: changed }, dir),
    (e: Error) =>
      e instanceof ConfigError && /^--taxonomy: differs from the taxonomy run tax-run/.test(e.message),
  );
  await assert.rejects(
    resolveRunInput({ outDir: dir, prompts: BUILTIN_PROMPTS }, dir),
    /--prompts: differs from the prompts run tax-run/,
  );
  const warnings: string[] = [];
  const kept = await resolveRunInput({ outDir: dir, taxonomy: changed }, dir, {
    keepRecordedMethod: true,
    onWarning: (w) => warnings.push(w),
  });
  assert.deepEqual(kept.config.taxonomy, CUSTOM, 'the recorded taxonomy stays');
  assert.match(warnings.join('\n'), /--taxonomy ignored: run tax-run keeps the taxonomy it recorded/);

  // No method given: the recorded one, with a note when another package version made the run.
  await writeFile(join(dir, 'run.json'), JSON.stringify({ ...runFile, packageVersion: '0.1.1' }));
  warnings.length = 0;
  const plain = await resolveRunInput({ outDir: dir }, dir, { onWarning: (w) => warnings.push(w) });
  assert.deepEqual(plain.config.prompts, CUSTOM_PROMPTS);
  assert.match(
    warnings.join('\n'),
    /started by consistent-chat 0\.1\.1 \(this is .+\); it keeps the taxonomy and prompts it recorded/,
  );

  // A version older than the oldest this one resumes: refused, naming the version that finishes it.
  await writeFile(join(dir, 'run.json'), JSON.stringify({ ...runFile, packageVersion: '0.0.9' }));
  await assert.rejects(
    resolveRunInput({ outDir: dir }, dir),
    (e: Error) =>
      e instanceof ConfigError &&
      e.message ===
        `--out: run tax-run in ${dir} was started by consistent-chat 0.0.9, and this version (${packageVersion()}) resumes runs from ${OLDEST_RESUMABLE_VERSION} on: finish it with consistent-chat 0.0.9, or use another --out`,
  );

  // A run recorded before taxonomies travelled in the input ran with the built-in one.
  const oldDir = await tempDir('cc-resume-old-');
  await mkdir(oldDir, { recursive: true });
  const oldInput = runInputSchema.parse({ runId: 'old-run', outDir: oldDir, model: 'm' });
  await writeFile(
    join(oldDir, 'run.json'),
    JSON.stringify({ runId: 'old-run', input: oldInput, createdAt: '2026-01-01' }),
  );
  const old = await resolveRunInput({ outDir: oldDir, taxonomy: BUILTIN_TAXONOMY }, oldDir);
  assert.equal(old.config.taxonomy, undefined, 'an old input stays as it was');
  await assert.rejects(resolveRunInput({ outDir: oldDir, taxonomy: CUSTOM }, oldDir), /--taxonomy: differs/);
});

test('config file: taxonomy and prompts are paths relative to the file, or given inline, and named on error', async () => {
  const dir = await tempDir('cc-config-method-');
  await mkdir(join(dir, 'p'));
  await writeFile(join(dir, 'tax.yaml'), stringify(CUSTOM));
  await writeFile(join(dir, 'p', 'skeleton.txt'), CUSTOM_PROMPTS.skeleton.user);
  await writeFile(join(dir, 'p', 'responses.txt'), CUSTOM_PROMPTS.responses.user);
  const fields = { taxonomy: '--config taxonomy', prompts: '--config prompts' };
  const fromPaths = await loadMethodOptions({ taxonomy: 'tax.yaml', prompts: 'p' }, dir, fields);
  assert.deepEqual(fromPaths.taxonomy, CUSTOM);
  assert.equal(fromPaths.prompts?.skeleton.user, CUSTOM_PROMPTS.skeleton.user);
  const inline = await loadMethodOptions({ taxonomy: CUSTOM, prompts: CUSTOM_PROMPTS }, dir, fields);
  assert.deepEqual(inline, { taxonomy: CUSTOM, prompts: CUSTOM_PROMPTS });
  assert.deepEqual(await loadMethodOptions({}, dir, fields), {});
  const broken = clone(CUSTOM);
  broken.infoFlows.question_to_answer!.steps = [];
  await assert.rejects(
    loadMethodOptions({ taxonomy: broken }, dir, fields),
    /--config taxonomy: infoFlows\.question_to_answer\.steps: must list at least one step/,
  );
});
