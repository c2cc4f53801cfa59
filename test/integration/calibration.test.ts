/**
 * The judge's calibration at a run's start, end to end: the CLI, a real Temporal dev server (embedded
 * or named), the worker, the openai client against the test LLM server, which scores the calibration
 * set as a test tells it (apart, or all alike) and counts the calibration requests it gets.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli, spawnCli } from '../helpers/cli';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { CALIBRATION_SET } from '../../src/method/calibration';
import type { JudgeCalibration, RunSummary } from '../../src/run/schemas';
import type { RunStatusDocument } from '../../src/run/status';

const servers: LlmServer[] = [];
const temporals: TestDevServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(temporals.map((t) => t.dispose()));
});

/** The replies each planted twin carries in place of the consistent one. */
const PLANTED_REPLIES = CALIBRATION_SET.flatMap((d) => (d.planted ? [d.responses[d.planted.turn]!] : []));
const isCalibration = (prompt: string) => CALIBRATION_SET.some((d) => prompt.includes(d.queries[0]!));
/** A judge that sees every planted failure: 2 per turn for a planted twin, 9 for anything else. */
const seesPlanted = (prompt: string) => (PLANTED_REPLIES.some((r) => prompt.includes(r)) ? 2 : 9);

async function server(judgeScore: (prompt: string) => number, meanMs = 5): Promise<LlmServer> {
  const llm = await startLlmServer({
    models: ['gen-model', 'judge-model'],
    latency: { meanMs },
    recordRequests: 1_000,
    judgeScore,
  });
  servers.push(llm);
  return llm;
}

/** The judge requests that scored a calibration dialogue, and the index of each request received. */
function calibrationRequests(llm: LlmServer): number[] {
  return llm.received().flatMap((r, i) => {
    const prompt = r.messages.map((m) => m.content).join('\n');
    return r.stage === 'judge' && isCalibration(prompt) ? [i] : [];
  });
}

const env = (llm: LlmServer, extra: NodeJS.ProcessEnv = {}) => ({
  OPENAI_API_KEY: 'sk-gen',
  OPENAI_BASE_URL: llm.url,
  TEMPORAL_ADDRESS: '',
  ...extra,
});
const generateArgs = (dir: string, perIntent: number, ...extra: string[]) => [
  ...['generate', '--out', dir, '--model', 'gen-model', '--intents', 'problem_solving'],
  ...['--dialogs-per-intent', String(perIntent), '--turns', '2', '--concurrency', '2', ...extra],
];
const readSummary = async (dir: string) =>
  JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as RunSummary;

test('calibration: a run with --judge first scores the calibration set with its judge model, and summary.json, the final line, status --json and the dataset card report the separation', async () => {
  const llm = await server(seesPlanted);
  const temporal = await devServer();
  temporals.push(temporal);
  const dir = join(await tempDir('cc-calibrate-'), 'run');
  const runId = unique('calibrate');
  const at = ['--temporal-address', temporal.address];
  const result = await runCli(
    generateArgs(dir, 2, '--judge-model', 'judge-model', '--run-id', runId, ...at),
    env(llm),
  );
  assert.equal(result.code, 0, result.stderr);

  const calibration = calibrationRequests(llm);
  assert.equal(calibration.length, CALIBRATION_SET.length, 'each calibration dialogue scored once');
  const firstSkeleton = llm.received().findIndex((r) => r.stage === 'skeleton');
  assert.ok(Math.max(...calibration) < firstSkeleton, 'scored before the first dialogue');
  assert.ok(
    calibration.every((i) => llm.received()[i]!.model === 'judge-model'),
    'with the judge model',
  );

  const summary = await readSummary(dir);
  const c = summary.calibration!;
  const planted = CALIBRATION_SET.filter((d) => d.planted).length;
  assert.deepEqual(
    { ...c, tokens: undefined, failedAttempts: undefined, flagged: undefined },
    {
      model: 'judge-model',
      auc: 1,
      gap: 7, // 9 + 1 against 2 + 1: the dialogue score is the worst turn's + 1
      nearChance: false,
      dialogues: CALIBRATION_SET.length,
      unscored: 0,
      planted,
      llmCalls: CALIBRATION_SET.length,
      tokens: undefined,
      failedAttempts: undefined,
      flagged: undefined,
    },
  );
  assert.ok(c.tokens.prompt > 0);
  assert.equal(summary.llmCalls, 2 * 3 + CALIBRATION_SET.length, 'its calls in the totals');
  assert.match(
    result.stdout,
    /judge calibration \(judge-model\): AUC 1\.00, gap 7\.0 points, \d+ of 8 planted/,
  );
  assert.ok(!result.stderr.includes('barely tells'), result.stderr);

  const status = await runCli(['status', runId, '--json', ...at]);
  assert.equal(status.code, 0, status.stderr);
  assert.deepEqual((JSON.parse(status.stdout) as RunStatusDocument).summary?.calibration, c);

  const out = join(dir, 'export', 'hf');
  const exported = await runCli(['export', dir, '--format', 'hf', '--out', out]);
  assert.equal(exported.code, 0, exported.stderr);
  const card = await readFile(join(out, 'README.md'), 'utf8');
  assert.ok(card.includes('## Judge calibration'), card);
  assert.match(card, /the judge judge-model scored the calibration set/);
  assert.match(card, /AUC 1\.00 \(the chance that a consistent dialogue scores above a planted one/);
  assert.ok(!card.includes('Near chance'));
});

test('calibration: a judge that scores the calibration set alike is warned about once, in the summary and the card', async () => {
  const llm = await server(() => 7);
  const dir = join(await tempDir('cc-calibrate-'), 'run');
  const result = await runCli(generateArgs(dir, 1, '--judge'), env(llm));
  assert.equal(result.code, 0, result.stderr);
  const warnings = result.stderr.split('\n').filter((l) => l.includes('barely tells'));
  assert.equal(warnings.length, 1, result.stderr);
  assert.match(warnings[0]!, /^warning: the judge gen-model .*calibration AUC 0\.50/);
  const c: JudgeCalibration = (await readSummary(dir)).calibration!;
  assert.equal(c.auc, 0.5);
  assert.equal(c.gap, 0);
  assert.equal(c.nearChance, true);
  assert.match(result.stdout, /judge calibration \(gen-model\): AUC 0\.50.*near chance/);
  const out = join(dir, 'export', 'hf');
  assert.equal((await runCli(['export', dir, '--format', 'hf', '--out', out])).code, 0);
  assert.ok((await readFile(join(out, 'README.md'), 'utf8')).includes('**Near chance:**'));
});

test('calibration: --no-calibrate skips it; given alone it does not turn the judge on', async () => {
  const llm = await server(seesPlanted);
  const dir = join(await tempDir('cc-calibrate-'), 'run');
  const judged = await runCli(generateArgs(dir, 1, '--judge', '--no-calibrate'), env(llm));
  assert.equal(judged.code, 0, judged.stderr);
  assert.equal(calibrationRequests(llm).length, 0);
  assert.equal(llm.stats().stages.judge, 1, 'the dialogue judged');
  const summary = await readSummary(dir);
  assert.equal(summary.calibration, undefined);
  assert.ok(summary.judge);

  llm.resetStats();
  const plain = await runCli(generateArgs(join(dir, 'plain'), 1, '--no-calibrate'), env(llm));
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(llm.stats().stages.judge, 0, 'no judge');
  assert.equal((await readSummary(join(dir, 'plain'))).judge, undefined);
});

test('calibration: a run killed after calibrating its judge and run again does not calibrate twice', async () => {
  const llm = await server(seesPlanted);
  const dir = join(await tempDir('cc-calibrate-'), 'run');
  const args = generateArgs(dir, 6, '--judge');
  const first = spawnCli(args, env(llm));
  // Intents start once every calibration verdict is in the run's history: a skeleton call says so.
  await waitFor(() => llm.stats().stages.skeleton > 0, 120_000, 'the first skeleton call');
  first.child.kill('SIGKILL');
  await first.done;
  assert.equal(calibrationRequests(llm).length, CALIBRATION_SET.length);
  const second = await runCli(args, env(llm));
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /resuming run/);
  assert.equal(calibrationRequests(llm).length, CALIBRATION_SET.length, 'not scored again');
  const c = (await readSummary(dir)).calibration!;
  assert.equal(c.llmCalls, CALIBRATION_SET.length);
  assert.equal(c.auc, 1);
});
