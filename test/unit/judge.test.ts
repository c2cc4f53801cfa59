/** The judge's pure parts: rubric replies, verdicts, the seeded sample, tallies, filters, calibration, cost. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstFailedFilter, judgeFilters, parseMetricFilter } from '../../src/export/filters';
import { CALIBRATION_SET, scoreAuc, summariseCalibration } from '../../src/method/calibration';
import {
  inJudgeSample,
  judgeContext,
  judgeJsonSchema,
  judgeMessages,
  judgeReplySchema,
  mergeJudgeTallies,
  meanJudgeScore,
  emptyJudgeTally,
  tallyVerdict,
  toJudgeVerdict,
} from '../../src/method/judge';
import { dialogueMetrics } from '../../src/method/metrics';
import { runCostUsd } from '../../src/shared/pricing';
import { progressCost } from '../../src/client/progress';
import { dialogueRecordSchema, judgeVerdictSchema, runInputSchema } from '../../src/run/schemas';

const reply = (scores: number[], score: number, flags: string[][] = []) => ({
  facts: ['turn 1: allergic to peanuts'],
  turns: scores.map((s, i) => ({ check: `turn ${i + 1} checked`, flags: flags[i] ?? [], score: s })),
  score,
  reason: 'the last reply suggests peanuts',
});

test('judge reply: exactly n turns, scores 1-10 (numbers as strings too), flags from the named set', () => {
  const schema = judgeReplySchema(3);
  assert.ok(schema.safeParse(reply([9, 8, 2], 3, [[], [], ['forgotten_constraint']])).success);
  assert.equal(schema.safeParse({ ...reply([9, 8, 2], 3), score: '7' }).data?.score, 7);
  for (const bad of [
    reply([9, 8], 8),
    reply([9, 8, 11], 8),
    reply([9, 8, 0], 8),
    reply([9, 8, 7], 8, [['made_up_flag']]),
    { ...reply([9, 8, 7], 8), reason: '' },
  ])
    assert.equal(schema.safeParse(bad).success, false, JSON.stringify(bad));
  const json = judgeJsonSchema(3) as { properties: { turns: { minItems: number; maxItems: number } } };
  assert.equal(json.properties.turns.minItems, 3);
  assert.equal(json.properties.turns.maxItems, 3);
});

test('judge verdict: the dialogue score is held to two above its worst turn, flags named once each', () => {
  const parsed = judgeReplySchema(3).parse(
    reply([9, 9, 2], 9, [['contradiction'], [], ['contradiction', 'forgotten_constraint']]),
  );
  const verdict = toJudgeVerdict(parsed, 'judge-model');
  assert.deepEqual(verdict, {
    model: 'judge-model',
    score: 4,
    turn_scores: [9, 9, 2],
    flags: ['contradiction', 'forgotten_constraint'],
    reason: 'the last reply suggests peanuts',
  });
  assert.ok(judgeVerdictSchema.safeParse(verdict).success);
  assert.equal(judgeVerdictSchema.safeParse({ model: 'm' }).success, false, 'a score or an error');
  assert.ok(judgeVerdictSchema.safeParse({ model: 'm', error: 'Llm.Auth: refused' }).success);
});

test('judge prompt: numbered turns of both sides, the flow steps, and the reply shape', () => {
  const [system, user] = judgeMessages(
    judgeContext({ intent: 'problem_solving', infoFlow: 'problem_diagnosis_to_solution_optimization' }),
    { category: 'Hiking', queries: ['q one', 'q two'] },
    ['a one', 'a two'],
  );
  assert.equal(system?.role, 'system');
  const text = typeof user?.content === 'string' ? user.content : '';
  for (const part of ['[User, turn 1] q one', '[Assistant, turn 2] a two', 'Number of assistant turns: 2'])
    assert.ok(text.includes(part), part);
  assert.match(text, /1\. .+\n {2}2\. /, 'the flow steps, numbered');
  assert.match(text, /exactly 2 objects/);
});

test('judge sample: seeded per dialogue, near the fraction asked, everything at 1', () => {
  const ids = Array.from({ length: 4_000 }, (_, i) => `run.educational.${i}`);
  const share = ids.filter((id) => inJudgeSample(id, 0.25)).length / ids.length;
  assert.ok(share > 0.22 && share < 0.28, `share ${share}`);
  assert.deepEqual(
    ids.slice(0, 50).map((id) => inJudgeSample(id, 0.25)),
    ids.slice(0, 50).map((id) => inJudgeSample(id, 0.25)),
    'the same verdict on every call',
  );
  assert.ok(ids.every((id) => inJudgeSample(id, 1)));
  assert.equal(runInputSchema.safeParse({ ...minimalInput, judge: { sample: 0 } }).success, false);
});

const minimalInput = { runId: 'run-1', outDir: '/tmp/out', model: 'm' };

test('judge settings: defaults to all dialogues at temperature 0 with the run model; records carry verdicts', () => {
  const parsed = runInputSchema.parse({ ...minimalInput, judge: {} });
  assert.deepEqual(parsed.judge, { sample: 1, temperature: 0 });
  assert.equal(runInputSchema.parse(minimalInput).judge, undefined);
  assert.equal(runInputSchema.safeParse({ ...minimalInput, judge: { baseURL: 'http://x' } }).success, false);
  const record = {
    id: 'a',
    category: 'C',
    conversation: [
      { role: 'user', value: 'q' },
      { role: 'assistant', value: 'a' },
    ],
    intent: 'I',
    info_flow: 'F',
    topic: 'T',
    model: 'm',
    judge: { model: 'j', score: 8, turn_scores: [8], flags: [], reason: 'fine' },
  };
  assert.ok(dialogueRecordSchema.safeParse(record).success);
  assert.equal(
    dialogueRecordSchema.safeParse({ ...record, judge: { ...record.judge, score: 11 } }).success,
    false,
  );
});

test('judge tally: scores by value, flags by name, failures apart; merged over intents', () => {
  const a = emptyJudgeTally();
  tallyVerdict(a, { model: 'j', score: 8, turn_scores: [8], flags: ['contradiction'], reason: 'r' });
  tallyVerdict(a, { model: 'j', score: 4, turn_scores: [4], flags: [], reason: 'r' });
  tallyVerdict(a, { model: 'j', error: 'Llm.Auth: refused' });
  const b = emptyJudgeTally();
  tallyVerdict(b, { model: 'j', score: 8, turn_scores: [8], flags: ['contradiction'], reason: 'r' });
  const total = mergeJudgeTallies([a, undefined, b]);
  assert.equal(total.judged, 3);
  assert.equal(total.failed, 1);
  assert.equal(total.scores[7], 2);
  assert.equal(total.scores[3], 1);
  assert.deepEqual(total.flags, { contradiction: 2 });
  assert.equal(meanJudgeScore(total), 20 / 3);
  assert.equal(meanJudgeScore(emptyJudgeTally()), undefined);
});

test('judge filters: --min-score and --max-flags leave out low scores, many flags and unjudged dialogues', () => {
  const metrics = dialogueMetrics([
    { role: 'user', value: 'how do I fix a flat tyre' },
    { role: 'assistant', value: 'take the wheel off and find the hole' },
  ]);
  const filters = judgeFilters(7, 1);
  const verdict = (score: number, flags: string[] = []) =>
    ({ model: 'j', score, turn_scores: [score], flags, reason: 'r' }) as Parameters<
      typeof firstFailedFilter
    >[2];
  assert.equal(firstFailedFilter(metrics, filters, verdict(7)), undefined);
  assert.deepEqual(firstFailedFilter(metrics, filters, verdict(6)), { index: 0, value: 6 });
  assert.deepEqual(firstFailedFilter(metrics, filters, verdict(9, ['contradiction', 'persona_drift'])), {
    index: 1,
    value: 2,
  });
  assert.deepEqual(firstFailedFilter(metrics, filters, undefined), { index: 0, value: null });
  assert.deepEqual(firstFailedFilter(metrics, filters, { model: 'j', error: 'x' }), {
    index: 0,
    value: null,
  });
  assert.deepEqual(parseMetricFilter('judge.score>=8'), { metric: 'judge.score', op: '>=', value: 8 });
  assert.equal(firstFailedFilter(metrics, [parseMetricFilter('words_per_query>=1')], undefined), undefined);
});

test('calibration: each consistent dialogue has a twin differing in the one planted reply', () => {
  const originals = CALIBRATION_SET.filter((d) => !d.planted);
  assert.ok(originals.length >= 8);
  for (const original of originals) {
    const twin = CALIBRATION_SET.find((d) => d.id === `${original.id}/planted`)!;
    assert.ok(twin.planted);
    assert.deepEqual(twin.queries, original.queries);
    const differing = twin.responses.flatMap((r, i) => (r === original.responses[i] ? [] : [i]));
    assert.deepEqual(differing, [twin.planted.turn], original.id);
  }
  const kinds = new Set(CALIBRATION_SET.flatMap((d) => (d.planted ? [d.planted.flag] : [])));
  for (const kind of ['contradiction', 'forgotten_constraint', 'off_question', 'persona_drift'])
    assert.ok(kinds.has(kind as never), kind);
});

test('calibration: AUC is 1 for a perfect judge, 0.5 for a constant one, and the gap is the mean difference', () => {
  assert.equal(scoreAuc([9, 8], [3, 2]), 1);
  assert.equal(scoreAuc([10, 10], [10, 10]), 0.5);
  assert.equal(scoreAuc([2], [9]), 0);
  assert.equal(scoreAuc([], [1]), undefined);
  const result = summariseCalibration([
    { id: 'a', score: 9, flags: [] },
    { id: 'a/planted', planted: 'contradiction', score: 3, flags: ['contradiction'] },
    { id: 'b', score: 7, flags: [] },
    { id: 'b/planted', planted: 'off_question', score: 7, flags: [] },
    { id: 'c/planted', planted: 'persona_drift', score: null, flags: [] },
  ]);
  assert.equal(result.auc, 0.875);
  assert.equal(result.gap, 3);
  assert.equal(result.flagged, 1);
});

test('judge cost: the judge’s tokens at its own model’s price, the rest at the run model’s', () => {
  const intents = [
    {
      tokens: { prompt: 3_000_000, completion: 1_000_000 },
      failedAttempts: {
        skeleton: { prompt: 0, completion: 0 },
        responses: { prompt: 0, completion: 0 },
        judge: { prompt: 1_000_000, completion: 0 },
      },
      stageTokens: { judge: { prompt: 1_000_000, completion: 1_000_000 } },
    },
  ];
  const prices = { gen: { prompt: 1, completion: 2 }, judge: { prompt: 10, completion: 20 } };
  // Generation: 2M prompt + 0 completion = 2; judge: 2M prompt + 1M completion = 40.
  assert.equal(runCostUsd(intents, { model: 'gen', judgeModel: 'judge' }, prices), 42);
  assert.equal(runCostUsd(intents, { model: 'gen' }, prices), 4 * 1 + 1 * 2);
  assert.equal(runCostUsd(intents, { model: 'gen', judgeModel: 'unpriced' }, prices), undefined);
  // The live progress carries the prices it was started with and prices the judge the same way.
  const live = { runId: 'r', outDir: '/o', model: 'gen', paused: false, concurrency: 1, price: prices.gen };
  const view = (extra: object) => ({ ...live, ...extra, intents: intents as never });
  assert.equal(progressCost(view({ judgeModel: 'judge', judgePrice: prices.judge })), 42);
  assert.equal(progressCost(view({})), 4 * 1 + 1 * 2);
  assert.equal(progressCost(view({ judgeModel: 'unpriced' })), undefined);
});
