/**
 * Exact books on the real pipeline: every chat request the endpoint served is either a counted call
 * or a counted failed attempt, with the tokens the endpoint reported; the cost follows every paid token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generate, type GenerateOptions } from '../../src/client/generate';
import { costOf, paidTokens } from '../../src/shared/pricing';
import type { RunSummary } from '../../src/run/schemas';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { readDialogues, readFailures } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';

const API_KEY = 'sk-test-books-0123456789';
let temporal: TestDevServer;
let llm: LlmServer;

before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({ apiKey: API_KEY, latency: { meanMs: 10 } });
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

async function run(run: Partial<GenerateOptions['run']>) {
  const outDir = await tempDir('cc-books-');
  const { summary } = await generate({
    run: { outDir, runId: unique('books'), model: 'test-model', numTurnsPerDialog: 1, ...run },
    temporal: { address: temporal.address, taskQueue: unique('tq') },
    llm: { baseURL: llm.url },
    env: { ...process.env, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: undefined },
  });
  return { summary, outDir };
}

const failedCalls = (s: RunSummary) =>
  (s.failedAttempts?.skeleton.calls ?? 0) + (s.failedAttempts?.responses.calls ?? 0);

describe('books', () => {
  test('books: failed attempts are counted by stage with their tokens, and the cost covers them', async () => {
    llm.configure({
      faults: { malformedJson: 0.25, serverError: 0.1, wrongCount: 0.1 },
      alwaysFail: undefined,
    });
    llm.resetStats();
    try {
      const { summary, outDir } = await run({
        intents: ['transaction', 'educational'],
        numDialogsPerIntent: 6,
        concurrency: 6,
        retry: { maximumAttempts: 30, initialIntervalMs: 20, backoffCoefficient: 1, maximumIntervalMs: 20 },
        prices: { 'test-model': { prompt: 1, completion: 2 } },
      });
      const stats = llm.stats();
      assert.equal(summary.written, 12);
      assert.equal((await readDialogues(outDir)).length, 12);
      assert.ok(failedCalls(summary) > 0, `faults were injected: ${JSON.stringify(stats.faults)}`);
      // Every chat request is one call or one failed attempt, stage by stage.
      assert.equal(summary.llmCalls + failedCalls(summary), stats.stages.skeleton + stats.stages.responses);
      assert.equal(summary.failedAttempts!.skeleton.calls, stats.stages.skeleton - 12);
      assert.equal(summary.failedAttempts!.responses.calls, stats.stages.responses - 12);
      // Every token the endpoint reported is in the books: replies that failed validation were paid too.
      const paid = paidTokens([summary]);
      assert.deepEqual(paid, { prompt: stats.promptTokens, completion: stats.completionTokens });
      assert.ok(paid.prompt > summary.tokens.prompt, 'failed attempts add tokens');
      assert.equal(summary.estimatedCostUsd, costOf({ prompt: 1, completion: 2 }, paid));
      assert.equal(summary.duplicates, 0);
      // The succeeded calls' tokens split by stage add up to the run's totals.
      const st = summary.stageTokens!;
      assert.ok(st.skeleton.completion > 0 && st.responses.completion > 0, JSON.stringify(st));
      assert.deepEqual(
        {
          prompt: st.skeleton.prompt + st.responses.prompt,
          completion: st.skeleton.completion + st.responses.completion,
        },
        summary.tokens,
      );
    } finally {
      llm.configure({ faults: {} });
    }
  });

  test('books: a dialogue that fails after its attempts still counts what its attempts used', async () => {
    llm.configure({ faults: {}, alwaysFail: 'malformedJson' });
    llm.resetStats();
    try {
      const { summary, outDir } = await run({
        intents: ['exploratory'],
        numDialogsPerIntent: 2,
        retry: { maximumAttempts: 3, initialIntervalMs: 20, backoffCoefficient: 1, maximumIntervalMs: 20 },
      });
      const stats = llm.stats();
      assert.equal(summary.failed, 2);
      assert.equal((await readFailures(outDir)).length, 2);
      assert.equal(summary.llmCalls, 0);
      assert.equal(summary.failedAttempts!.skeleton.calls, 6, '2 dialogues × 3 attempts');
      assert.equal(summary.failedAttempts!.responses.calls, 0);
      assert.deepEqual(paidTokens([summary]), {
        prompt: stats.promptTokens,
        completion: stats.completionTokens,
      });
      assert.equal(summary.estimatedCostUsd, undefined, 'no price for test-model');
    } finally {
      llm.configure({ alwaysFail: undefined });
    }
  });
});
