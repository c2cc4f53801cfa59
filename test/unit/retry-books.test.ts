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
    intents: [base],
  } as RunSummary;
  const summary = summaryOf(run, [after]);
  assert.deepEqual([summary.requested, summary.written, summary.failed, summary.llmCalls], [10, 9, 1, 19]);
  assert.equal(summary.estimatedCostUsd, undefined);
});
