/**
 * `consistent-chat judge DIR` end to end: a finished run's records judged afterwards by the CLI, on
 * the run's embedded Temporal server, against the test LLM server; killed with SIGKILL and run again.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli, spawnCli } from '../helpers/cli';
import { readDialogues } from '../helpers/output';
import { devServer, tempDir, type TestDevServer } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import type { JudgeRecordsSummary } from '../../src/workflows/judge-records';

const servers: LlmServer[] = [];
const temporals: TestDevServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(temporals.map((t) => t.dispose()));
});

/** A finished run without a judge: two intents of `perIntent` dialogues of two turns (`extra`: more flags). */
async function unjudgedRun(
  perIntent: number,
  ...extra: string[]
): Promise<{ dir: string; llm: LlmServer; env: NodeJS.ProcessEnv }> {
  const llm = await startLlmServer({ models: ['gen-model', 'judge-model'], latency: { meanMs: 5 } });
  servers.push(llm);
  const env = { OPENAI_API_KEY: 'sk-gen', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' };
  const dir = join(await tempDir('cc-judge-dir-'), 'run');
  const generated = await runCli(
    [
      ...['generate', '--out', dir, '--model', 'gen-model', '--intents', 'problem_solving,educational'],
      ...['--dialogs-per-intent', String(perIntent), '--turns', '2', '--concurrency', '2', ...extra],
    ],
    env,
  );
  assert.equal(generated.code, 0, generated.stderr);
  llm.resetStats();
  return { dir, llm, env };
}

const judgeSummary = async (dir: string) =>
  JSON.parse(await readFile(join(dir, 'judge-summary.json'), 'utf8')) as JudgeRecordsSummary;

test('judge DIR: scores every stored dialogue once, in dialogs.jsonl itself; a second run judges nothing', async () => {
  const { dir, llm, env } = await unjudgedRun(3);
  const before = await readDialogues(dir);
  const result = await runCli(['judge', dir, '--judge-model', 'judge-model'], env);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /judge \(judge-model\): 6 scored, mean [\d.]+ of 10/);
  assert.equal(llm.stats().stages.judge, 6);
  const after_ = await readDialogues(dir);
  assert.deepEqual(
    after_.map((r) => r.id),
    before.map((r) => r.id),
    'the same records in the same order',
  );
  for (const [i, record] of after_.entries()) {
    assert.equal(record.judge?.model, 'judge-model');
    assert.ok(record.judge?.score !== undefined && record.judge.turn_scores?.length === 2, record.id);
    assert.deepEqual({ ...record, judge: undefined }, { ...before[i], judge: undefined });
  }
  assert.ok(!existsSync(join(dir, 'judgments.jsonl')), 'merged and removed');
  const books = await judgeSummary(dir);
  assert.equal(books.judged, 6);
  assert.equal(books.merged, 6);
  assert.equal(books.llmCalls, 6);
  assert.ok(books.tokens.prompt > 0);

  const again = await runCli(['judge', dir, '--judge-model', 'judge-model'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(llm.stats().stages.judge, 6, 'nothing judged twice');
  assert.equal((await judgeSummary(dir)).judged, 0);
});

test('judge DIR: killed with SIGKILL mid-way and run again, every record is judged and none twice', async () => {
  const total = 2 * 10;
  const { dir, llm, env } = await unjudgedRun(10);
  const args = ['judge', dir, '--judge-model', 'judge-model'];
  // Slow enough that the hold below lands mid-way whatever the machine's load.
  llm.configure({ latency: { meanMs: 1_000 } });
  const first = spawnCli(args, env);
  await waitFor(() => llm.stats().stages.judge >= 6, 120_000, '6 judge calls');
  // Held calls never complete: what the killed process asked but never got is the only repeat.
  llm.configure({ hold: true });
  await waitFor(() => llm.stats().inFlight > 0, 60_000, 'a judge call held');
  first.child.kill('SIGKILL');
  await first.done;
  await waitFor(() => llm.stats().inFlight === 0, 30_000, 'the killed calls closed');
  const answeredBeforeKill = llm.stats().stages.judge - llm.stats().aborted;
  assert.ok(answeredBeforeKill < total, `${answeredBeforeKill} answered before the kill`);
  llm.configure({ hold: false, latency: { meanMs: 5 } });
  const second = await runCli(args, env);
  assert.equal(second.code, 0, second.stderr);
  const records = await readDialogues(dir);
  assert.equal(records.length, total);
  assert.ok(
    records.every((r) => r.judge?.score !== undefined),
    'every record judged',
  );
  const stats = llm.stats();
  assert.equal(stats.stages.judge - stats.aborted, total, 'each record answered by the judge exactly once');
});

test('judge DIR: --temporal-address judges a run that is on an existing cluster, with a progress line as generate has', async () => {
  const temporal = await devServer();
  temporals.push(temporal);
  const at = ['--temporal-address', temporal.address];
  const { dir, llm, env } = await unjudgedRun(3, ...at);
  // Slow enough for a progress read to find the judge mid-way, whatever the machine's load.
  llm.configure({ latency: { meanMs: 400 } });
  const result = await runCli(['judge', dir, '--judge-model', 'judge-model', ...at], env);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, new RegExp(`judging with \\S+\\.judge on Temporal ${temporal.address}`));
  assert.match(result.stderr, /^judge: \d+\/6 records read, \d+ scored, \d+ failed, \d+ calls$/m);
  assert.match(result.stdout, /judge \(judge-model\): 6 scored/);
  assert.equal(llm.stats().stages.judge, 6);
  assert.ok((await readDialogues(dir)).every((r) => r.judge?.model === 'judge-model'));
  assert.ok(!existsSync(join(dir, '.temporal')), 'no embedded server started');
});
