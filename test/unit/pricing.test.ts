import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  batchPrice,
  batchSavings,
  costOf,
  DEFAULT_PRICES,
  formatCost,
  liveCostUsd,
  paidTokens,
  priceFor,
} from '../../src/shared/pricing';
import { progressCost } from '../../src/client/progress';
import { runInputSchema } from '../../src/run/schemas';

test('pricing: a dated model name takes the price of its family, the longest match first', () => {
  assert.deepEqual(priceFor('gpt-4o-mini-2024-07-18'), DEFAULT_PRICES['gpt-4o-mini']);
  assert.deepEqual(priceFor('gpt-4o-2024-08-06'), DEFAULT_PRICES['gpt-4o']);
  assert.equal(priceFor('llama-3.1-8b-instruct'), undefined);
  assert.equal(priceFor('gpt-4oo'), undefined, 'a prefix must end at a dash');
});

test('pricing: a run’s own prices win over the table and add models', () => {
  const prices = { 'gpt-4o-mini': { prompt: 0.1, completion: 0.2 }, local: { prompt: 0, completion: 0 } };
  assert.deepEqual(priceFor('gpt-4o-mini', prices), { prompt: 0.1, completion: 0.2 });
  assert.deepEqual(priceFor('local', prices), { prompt: 0, completion: 0 });
  assert.deepEqual(priceFor('gpt-4.1', prices), DEFAULT_PRICES['gpt-4.1']);
});

test('pricing: cost counts failed attempts’ tokens and is absent without a price', () => {
  const tokens = paidTokens([
    {
      tokens: { prompt: 1_000_000, completion: 500_000 },
      failedAttempts: {
        skeleton: { prompt: 200_000, completion: 100_000 },
        responses: { prompt: 0, completion: 0 },
      },
    },
  ]);
  assert.deepEqual(tokens, { prompt: 1_200_000, completion: 600_000 });
  assert.equal(costOf({ prompt: 0.15, completion: 0.6 }, tokens), 0.18 + 0.36);
  assert.equal(costOf(undefined, tokens), undefined);
  assert.equal(formatCost(undefined), 'cost n/a');
  assert.equal(formatCost(0.54), 'est. $0.5400');
});

test('pricing: prices in the run input are checked, naming the field', () => {
  const base = { runId: 'r', outDir: '/tmp/x', model: 'm' };
  assert.ok(runInputSchema.safeParse({ ...base, prices: { m: { prompt: 1, completion: 2 } } }).success);
  const bad = runInputSchema.safeParse({ ...base, prices: { m: { prompt: 'cheap', completion: 2 } } });
  assert.ok(!bad.success);
  assert.deepEqual(bad.error.issues[0]?.path, ['prices', 'm', 'prompt']);
});

test('pricing: batch tokens cost half unless the table gives a batch price, and the progress cost uses it', () => {
  const price = { prompt: 1, completion: 4 };
  assert.deepEqual(batchPrice(price), { prompt: 0.5, completion: 2 });
  assert.deepEqual(batchPrice({ ...price, batch: { prompt: 0.6, completion: 3 } }), {
    prompt: 0.6,
    completion: 3,
  });
  const tokens = { prompt: 1_000_000, completion: 1_000_000 };
  assert.equal(batchSavings(price, tokens), 2.5);
  assert.equal(batchSavings(undefined, tokens), 0);
  const intent = {
    intent: 'transaction',
    planned: 1,
    written: 1,
    failed: 0,
    inFlight: 0,
    tokens,
    llmCalls: 2,
    paused: false,
    concurrency: 1,
    status: 'running' as const,
    continuedAsNew: 0,
  };
  const progress = { runId: 'r', outDir: '/o', model: 'm', paused: false, concurrency: 1, price };
  assert.equal(progressCost({ ...progress, intents: [intent] }), 5);
  const batch = { batches: 2, waiting: 0, requests: { total: 2, completed: 2, failed: 0 }, calls: 2, tokens };
  assert.equal(progressCost({ ...progress, intents: [{ ...intent, batch }] }), 2.5);
  // The run's details in the Temporal UI use the same estimate.
  assert.equal(liveCostUsd([{ ...intent, batch }], price), 2.5);
  assert.equal(liveCostUsd([intent], price), 5);
});
