/** The books of `generate --retry-failed`: which dialogue an id names, and the run's numbers after a retry. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IntentProgress, RunSummary } from '../../src/run/schemas';
import { addRetry, parseDialogueId, summaryOf } from '../../src/workflows/retry-books';

const progress = (over: Partial<IntentProgress>): IntentProgress => ({
  intent: 'transaction',
  planned: 10,
  written: 0,
  failed: 0,
  inFlight: 0,
  tokens: { prompt: 0, completion: 0 },
  llmCalls: 0,
  paused: false,
  concurrency: 0,
  status: 'completed',
  continuedAsNew: 0,
  ...over,
});

test('retry books: a failure id names its intent and plan index, only for this run and its intents', () => {
  assert.deepEqual(parseDialogueId('cc-1.x', ['transaction'], 'cc-1.x.transaction.7'), {
    intent: 'transaction',
    index: 7,
  });
  for (const id of [
    'cc-2.transaction.7',
    'cc-1.x.educational.7',
    'cc-1.x.transaction.7a',
    'cc-1.x.transaction',
  ])
    assert.equal(parseDialogueId('cc-1.x', ['transaction'], id), undefined, id);
});

test('retry books: what the retry wrote joins the written, what failed again replaces the failures retried', () => {
  const base = progress({ written: 7, failed: 3, llmCalls: 14, tokens: { prompt: 1400, completion: 700 } });
  const retry = progress({
    planned: 3,
    written: 2,
    failed: 1,
    llmCalls: 5,
    tokens: { prompt: 500, completion: 250 },
  });
  const after = addRetry(base, retry, 3);
  assert.deepEqual([after.written, after.failed, after.llmCalls, after.planned], [9, 1, 19, 10]);
  assert.deepEqual(after.tokens, { prompt: 1900, completion: 950 });
  const run = {
    runId: 'r',
    outDir: '/o',
    model: 'no-price-model',
    requested: 10,
    written: 7,
    failed: 3,
    llmCalls: 14,
    tokens: { prompt: 1400, completion: 700 },
    intents: [base],
  } as RunSummary;
  const summary = summaryOf(run, [after]);
  assert.deepEqual([summary.requested, summary.written, summary.failed, summary.llmCalls], [10, 9, 1, 19]);
  assert.equal(summary.estimatedCostUsd, undefined);
});

test("retry books: the judge's verdicts, tokens and failed attempts of a retry are added, and what only the run counted stays", () => {
  const tally = (judged: number, score: number, failed = 0) => ({
    judged,
    failed,
    scores: Array.from({ length: 10 }, (_, i) => (i === score - 1 ? judged : 0)),
    flags: judged ? { contradiction: 1 } : {},
  });
  const attempts = (calls: number) => ({ calls, prompt: calls * 10, completion: calls * 5 });
  // The same tokens in each of the three stages, and their sum as the run's.
  const everyStage = (prompt: number, completion: number) => ({
    tokens: { prompt: 3 * prompt, completion: 3 * completion },
    stageTokens: {
      skeleton: { prompt, completion },
      responses: { prompt, completion },
      judge: { prompt, completion },
    },
  });
  const base = progress({
    written: 8,
    failed: 2,
    llmCalls: 24,
    ...everyStage(800, 400),
    failedAttempts: { skeleton: attempts(1), responses: attempts(0), judge: attempts(1) },
    judge: tally(8, 7, 1),
  });
  const retry = progress({
    planned: 2,
    written: 2,
    llmCalls: 6,
    ...everyStage(200, 100),
    failedAttempts: { skeleton: attempts(0), responses: attempts(0), judge: attempts(2) },
    judge: tally(2, 4),
  });
  const after = addRetry(base, retry, 2);
  assert.deepEqual(after.stageTokens?.judge, { prompt: 1000, completion: 500 });
  assert.deepEqual(after.failedAttempts?.judge, attempts(3));
  assert.equal(after.judge?.judged, 10);
  assert.equal(after.judge?.failed, 1);
  assert.equal(after.judge?.scores[6], 8);
  assert.equal(after.judge?.scores[3], 2);
  assert.deepEqual(after.judge?.flags, { contradiction: 2 });

  // The run also paid 16 calibration calls (1,000 + 500 tokens) that no intent counts.
  const prices = { 'gen-model': { prompt: 1, completion: 2 }, 'judge-model': { prompt: 10, completion: 20 } };
  const run = {
    runId: 'r',
    outDir: '/o',
    model: 'gen-model',
    judgeModel: 'judge-model',
    requested: 10,
    written: 8,
    failed: 2,
    llmCalls: 24 + 16,
    tokens: { prompt: 2400 + 1000, completion: 1200 + 500 },
    stageTokens: {
      skeleton: { prompt: 800, completion: 400 },
      responses: { prompt: 800, completion: 400 },
      judge: { prompt: 800 + 1000, completion: 400 + 500 },
    },
    failedAttempts: { skeleton: attempts(1), responses: attempts(0), judge: attempts(1) },
    estimatedCostUsd: 1,
    judge: tally(8, 7, 1),
    intents: [base],
  } as RunSummary;
  const summary = summaryOf(run, [after], prices);
  assert.deepEqual([summary.written, summary.failed, summary.llmCalls], [10, 0, 24 + 16 + 6]);
  assert.deepEqual(summary.tokens, { prompt: 3400 + 600, completion: 1700 + 300 });
  assert.deepEqual(summary.stageTokens?.judge, { prompt: 2000, completion: 1000 });
  assert.deepEqual(summary.failedAttempts?.judge, attempts(3));
  assert.deepEqual(summary.failedAttempts?.skeleton, attempts(1));
  assert.equal(summary.judge?.judged, 10);
  // The retry's judge tokens (200 + 20 prompt, 100 + 10 completion) at the judge's price, the rest at the run's.
  const added = (400 * 1 + 200 * 2 + 220 * 10 + 110 * 20) / 1e6;
  assert.ok(Math.abs(summary.estimatedCostUsd! - (1 + added)) < 1e-12, String(summary.estimatedCostUsd));
});
