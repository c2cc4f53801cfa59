/**
 * The judge (stage 3) end to end: the CLI, the embedded Temporal server and worker, the test LLM
 * server answering the rubric's structured output, the export's score filters.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launchChromium, PROBE_CHARTS, type ChartProbe } from '../helpers/browser';
import { runCli } from '../helpers/cli';
import { ConsistentChatGenerator } from '../../src/client/api';
import { readDialogues, readJsonl } from '../helpers/output';
import { tempDir } from '../helpers/temporal';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { CALIBRATION_SET, scoreAuc } from '../../src/method/calibration';
import { BUILTIN_JUDGE_PROMPT, inJudgeSample } from '../../src/method/judge';
import { BUILTIN_PROMPTS } from '../../src/method/prompts';
import type { DialogueRecord, RunSummary } from '../../src/run/schemas';

const servers: LlmServer[] = [];
const server = async (options: Parameters<typeof startLlmServer>[0]) => {
  const started = await startLlmServer({ models: ['gen-model', 'judge-model'], ...options });
  servers.push(started);
  return started;
};
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const readSummary = async (dir: string) =>
  JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as RunSummary;

/** Two intents of `perIntent` dialogues of three turns, against `llm`, with `extra` flags and env. */
async function judgedRun(
  llm: LlmServer,
  perIntent: number,
  extra: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ dir: string; records: DialogueRecord[]; code: number | null; stdout: string; stderr: string }> {
  const dir = join(await tempDir('cc-judge-'), 'run');
  const result = await runCli(
    [
      ...['generate', '--out', dir, '--model', 'gen-model', '--intents', 'problem_solving,educational'],
      ...['--dialogs-per-intent', String(perIntent), '--turns', '3', '--concurrency', '2'],
      ...extra,
    ],
    { OPENAI_API_KEY: 'sk-gen', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '', ...env },
  );
  return {
    dir,
    records: await readDialogues(dir),
    code: result.code,
    stdout: result.stdout,
    stderr: result.stderr,
  };
}

describe('judge', () => {
  let gen: LlmServer;
  let judge: LlmServer;
  let run: Awaited<ReturnType<typeof judgedRun>>;

  before(async () => {
    gen = await server({ latency: { meanMs: 5 }, apiKey: 'sk-gen' });
    judge = await server({ latency: { meanMs: 5 }, apiKey: 'sk-judge' });
    run = await judgedRun(gen, 4, ['--judge-model', 'judge-model'], {
      CONSISTENT_CHAT_JUDGE_BASE_URL: judge.url,
      CONSISTENT_CHAT_JUDGE_API_KEY: 'sk-judge',
    });
  });

  test('judge: every dialogue gets a verdict from the judge endpoint with its own key and model', () => {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.records.length, 8);
    for (const record of run.records) {
      const verdict = record.judge;
      assert.ok(verdict?.score !== undefined, `${record.id}: ${JSON.stringify(verdict)}`);
      assert.equal(verdict.model, 'judge-model');
      assert.equal(verdict.turn_scores?.length, 3);
      assert.ok(verdict.score <= Math.min(...verdict.turn_scores) + 2, 'held to its worst turn + 2');
      assert.ok(verdict.reason && verdict.reason.length > 0);
    }
    assert.equal(gen.stats().stages.judge, 0, 'no judge call went to the generation endpoint');
    assert.equal(judge.stats().stages.judge, 8 + CALIBRATION_SET.length, 'and the calibration set, first');
    assert.equal(judge.stats().stages.skeleton + judge.stats().stages.responses, 0);
  });

  test('judge: the summary counts its calls, tokens and scores apart', async () => {
    const summary = await readSummary(run.dir);
    assert.equal(summary.judge?.judged, 8);
    assert.equal(summary.judge?.failed, 0);
    const histogram = Array.from({ length: 10 }, () => 0);
    for (const r of run.records) histogram[r.judge!.score! - 1]!++;
    assert.deepEqual(summary.judge?.scores, histogram);
    assert.ok((summary.stageTokens?.judge?.prompt ?? 0) > 0, JSON.stringify(summary.stageTokens));
    assert.equal(
      summary.llmCalls,
      8 * 3 + CALIBRATION_SET.length,
      'skeleton, responses and judge per dialogue, and the calibration',
    );
    const mean = run.records.reduce((sum, r) => sum + r.judge!.score!, 0) / 8;
    assert.ok(
      run.stdout.includes(`judge (judge-model): 8 scored, mean ${mean.toFixed(1)} of 10`),
      run.stdout,
    );
  });

  test('judge: export --min-score keeps the dialogues scored that high and lists the rest', async () => {
    const threshold = 7;
    const kept = run.records.filter((r) => r.judge!.score! >= threshold);
    assert.ok(kept.length > 0 && kept.length < run.records.length, 'the test server scores both sides of 7');
    const out = join(run.dir, 'export', 'min-score');
    const result = await runCli([
      'export',
      run.dir,
      '--format',
      'sharegpt',
      '--out',
      out,
      '--min-score',
      '7',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const lines = await readJsonl<{ id: string }>(join(out, 'train.jsonl'));
    assert.deepEqual(lines.map((l) => l.id).sort(), kept.map((r) => r.id).sort());
    const filtered = await readJsonl<{ id: string; filter: string; value: number }>(
      join(out, 'filtered.jsonl'),
    );
    assert.equal(filtered.length, run.records.length - kept.length);
    assert.ok(filtered.every((f) => f.filter === 'judge.score >= 7' && f.value < 7));
  });

  test('judge: the report draws the quality section in Chromium: scores, means per group, the lowest listed', async () => {
    const result = await runCli(['report', run.dir]);
    assert.equal(result.code, 0, result.stderr);
    const html = await readFile(join(run.dir, 'report.html'), 'utf8');
    const lowest = [...run.records].sort((a, b) => a.judge!.score! - b.judge!.score!)[0]!;
    assert.ok(html.includes(`<tr><td>${lowest.id}</td><td>${lowest.judge!.score}</td>`), 'lowest listed');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(`file://${join(run.dir, 'report.html')}`);
      await page.waitForFunction('Array.isArray(window.reportCharts)');
      const charts = await page.evaluate<ChartProbe[]>(PROBE_CHARTS);
      const scores = charts.find((c) => c.id === 'judge-scores');
      assert.ok(scores?.drawn, 'score histogram drawn');
      assert.equal(scores.total, 8, 'one bar count per judged dialogue');
      const groups = charts.find((c) => c.id === 'judge-groups');
      assert.ok(groups?.drawn && groups.total > 0, 'means per intent and flow drawn');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('judge: the dataset card gives the score distribution of the rows it holds and the judge filter', async () => {
    const out = join(run.dir, 'export', 'hf');
    const result = await runCli(['export', run.dir, '--format', 'hf', '--out', out, '--min-score', '5']);
    assert.equal(result.code, 0, result.stderr);
    const card = await readFile(join(out, 'README.md'), 'utf8');
    const kept = run.records.filter((r) => r.judge!.score! >= 5);
    assert.ok(card.includes('## Judge scores'));
    assert.ok(
      card.includes(`${kept.length} of ${kept.length} rows carry a consistency score from judge-model`),
    );
    for (let score = 1; score <= 10; score++) {
      const n = kept.filter((r) => r.judge!.score === score).length;
      assert.equal(card.includes(`| ${score} | ${n} |`), n > 0, `score ${score}: ${n} rows`);
    }
    assert.match(card, /\| `judge.score >= 5` \| \d+ \|/);
  });

  test('judge: export --min-score outside 1-10 is refused in one line naming the flag', async () => {
    const result = await runCli(['export', run.dir, '--format', 'sharegpt', '--min-score', '11']);
    assert.equal(result.code, 2);
    assert.match(result.stderr.trim(), /^[^\n]*--min-score[^\n]*$/);
  });
});

test('judge: --judge-sample judges the seeded sample only, on the generation endpoint', async () => {
  const llm = await server({ latency: { meanMs: 5 } });
  const run = await judgedRun(llm, 6, ['--judge-sample', '0.5']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.records.length, 12);
  const sampled = run.records.filter((r) => inJudgeSample(r.id, 0.5));
  assert.ok(sampled.length > 0 && sampled.length < 12, `${sampled.length} of 12 in the sample`);
  for (const record of run.records)
    assert.equal(record.judge !== undefined, inJudgeSample(record.id, 0.5), record.id);
  assert.ok(sampled.every((r) => r.judge?.model === 'gen-model'));
  assert.equal(llm.stats().stages.judge, sampled.length + CALIBRATION_SET.length, 'and the calibration set');
});

test('judge: a judge that refuses its key leaves dialogues unjudged, not lost, and stops being asked', async () => {
  const llm = await server({ latency: { meanMs: 5 } });
  const judge = await server({ latency: { meanMs: 5 }, apiKey: 'sk-right' });
  const run = await judgedRun(llm, 8, ['--judge'], {
    CONSISTENT_CHAT_JUDGE_BASE_URL: judge.url,
    CONSISTENT_CHAT_JUDGE_API_KEY: 'sk-wrong',
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.records.length, 16, 'every dialogue kept');
  for (const record of run.records) {
    assert.equal(record.judge?.score, undefined);
    assert.match(record.judge?.error ?? '', /^(Llm\.Auth|Judge\.Stopped)/, record.id);
  }
  // Three failures in a row stop the calibration and each intent's judge; calls already in flight
  // (concurrency 2) may add one to each.
  const asked = judge.stats().requests;
  assert.ok(asked >= 3 && asked <= 3 * (3 + 1), `${asked} judge requests for 16 dialogues`);
  assert.equal((await readSummary(run.dir)).calibration?.auc, undefined, 'nothing scored');
  const summary = await readSummary(run.dir);
  assert.equal(summary.judge?.failed, 16);
  assert.equal(summary.judge?.judged, 0);
});

test('judge: calibrate scores the calibration set on the judge endpoint and reports the AUC it computed', async () => {
  const llm = await server({ latency: { meanMs: 5 }, apiKey: 'sk-judge' });
  const result = await runCli(['calibrate', '--model', 'judge-model', '--json'], {
    CONSISTENT_CHAT_JUDGE_BASE_URL: llm.url,
    CONSISTENT_CHAT_JUDGE_API_KEY: 'sk-judge',
    OPENAI_API_KEY: 'sk-not-this-one',
  });
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout) as {
    auc: number;
    scores: { id: string; planted?: string; score: number | null }[];
  };
  assert.equal(report.scores.length, CALIBRATION_SET.length);
  assert.equal(llm.stats().stages.judge, CALIBRATION_SET.length);
  assert.ok(report.scores.every((s) => s.score !== null && s.score >= 1 && s.score <= 10));
  const consistent = report.scores.filter((s) => !s.planted).map((s) => s.score!);
  const planted = report.scores.filter((s) => s.planted).map((s) => s.score!);
  assert.equal(report.auc, scoreAuc(consistent, planted));
  assert.equal(result.stderr.includes('barely tells'), report.auc < 0.65);
});

test('judge: --prompts DIR/judge.txt replaces the rubric the judge is sent, and the run keeps a copy', async () => {
  const llm = await server({ latency: { meanMs: 5 }, recordRequests: 50 });
  const prompts = await tempDir('cc-judge-prompts-');
  await writeFile(join(prompts, 'skeleton.txt'), BUILTIN_PROMPTS.skeleton.user);
  await writeFile(join(prompts, 'responses.txt'), BUILTIN_PROMPTS.responses.user);
  const rubric = 'MARK-J {{intent}}\n{{transcript}}\nNumber of assistant turns: {{num_responses}}';
  await writeFile(join(prompts, 'judge.txt'), `${rubric}\n`);
  const run = await judgedRun(llm, 1, ['--judge', '--prompts', prompts]);
  assert.equal(run.code, 0, run.stderr);
  const sent = llm.received().filter((r) => r.stage === 'judge');
  assert.equal(sent.length, 2 + CALIBRATION_SET.length, 'the calibration set with the same rubric');
  for (const r of sent) {
    assert.equal(
      r.messages[0]?.content,
      BUILTIN_JUDGE_PROMPT.system,
      'no judge.system.txt: the built-in one',
    );
    assert.match(
      r.messages[1]?.content ?? '',
      /^MARK-J [A-Z][a-z]+( [A-Z][a-z]+)* Interaction\n\[User, turn 1\]/,
    );
  }
  assert.ok(run.records.every((r) => r.judge?.score !== undefined));
  assert.equal(await readFile(join(run.dir, 'prompts', 'judge.txt'), 'utf8'), `${rubric}\n`);
  await writeFile(join(prompts, 'judge.txt'), 'no transcript {{topic}}');
  const refused = await runCli(
    ['generate', '--out', join(run.dir, 'y'), '--prompts', prompts, '--model', 'm'],
    {
      OPENAI_API_KEY: 'sk-x',
      OPENAI_BASE_URL: llm.url,
    },
  );
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr.trim(), /^[^\n]*--prompts[^\n]*judge\.txt[^\n]*$/);
});

test('judge: calibrate without a model is refused in one line naming --model', async () => {
  const result = await runCli(['calibrate'], { OPENAI_MODEL: '', OPENAI_API_KEY: 'sk-x' });
  assert.equal(result.code, 2);
  assert.match(result.stderr.trim(), /^[^\n]*--model[^\n]*$/);
});

test('sampling: --preset paper sends the authors’ temperatures and token limits per stage; a flag wins over it', async () => {
  const llm = await server({ latency: { meanMs: 5 }, recordRequests: 100 });
  const run = await judgedRun(llm, 1, ['--preset', 'paper', '--responses-temperature', '0.5', '--judge']);
  assert.equal(run.code, 0, run.stderr);
  const sent = (stage: string) => llm.received().filter((r) => r.stage === stage);
  assert.ok(sent('skeleton').length > 0 && sent('responses').length > 0 && sent('judge').length > 0);
  for (const r of sent('skeleton')) assert.deepEqual([r.temperature, r.maxTokens], [0.8, 800]);
  for (const r of sent('responses')) assert.deepEqual([r.temperature, r.maxTokens], [0.5, 1_200]);
  for (const r of sent('judge')) assert.equal(r.temperature, 0, 'the judge keeps its own temperature');
  const bad = await runCli(['generate', '--out', join(run.dir, 'x'), '--preset', 'novel']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr.trim(), /^[^\n]*--preset[^\n]*novel[^\n]*$/);
});

test('judge: the client API takes the judge, its endpoint and per-stage sampling', async () => {
  const llm = await server({ latency: { meanMs: 5 }, recordRequests: 20 });
  const judge = await server({ latency: { meanMs: 5 } });
  const generator = new ConsistentChatGenerator({
    llmServing: { model: 'gen-model', baseURL: llm.url, judgeBaseURL: judge.url },
    numDialogsPerIntent: 2,
    numTurnsPerDialog: 2,
    intents: ['transaction'],
    temperatures: { skeleton: 0.3 },
    judge: { model: 'judge-model' },
    temporal: { address: '' },
  });
  const out = join(await tempDir('cc-judge-api-'), 'run');
  const summary = await generator.run(out);
  assert.equal(summary.judge?.judged, 2);
  assert.equal(judge.stats().stages.judge, 2 + CALIBRATION_SET.length, 'and the calibration set');
  assert.ok(
    llm
      .received()
      .filter((r) => r.stage === 'skeleton')
      .every((r) => r.temperature === 0.3),
  );
  const records = await readDialogues(out);
  assert.ok(records.every((r) => r.judge?.model === 'judge-model'));
});
