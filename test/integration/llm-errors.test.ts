/**
 * LLM errors mean what they say, through the real pipeline against the test server: a refusal by
 * content policy or a request that does not fit fails its dialogue once and stops nothing else, and a
 * rate limit slows the run down without costing a dialogue its attempts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generate, type GenerateOptions } from '../../src/client/generate';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { assertDataset, readDialogues, readFailures } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';

let temporal: TestDevServer;
let llm: LlmServer;

before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({ apiKey: 'sk-errors' });
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

async function run(run: Partial<GenerateOptions['run']>) {
  const outDir = await tempDir('cc-errors-');
  const result = await generate({
    run: {
      outDir,
      runId: unique('err'),
      model: 'test-model',
      intents: ['problem_solving'],
      numTurnsPerDialog: 2,
      retry: { maximumAttempts: 6, initialIntervalMs: 50, backoffCoefficient: 1, maximumIntervalMs: 50 },
      ...run,
    },
    temporal: { address: temporal.address, taskQueue: unique('tq') },
    llm: { baseURL: llm.url },
    env: { ...process.env, OPENAI_API_KEY: 'sk-errors', OPENAI_BASE_URL: undefined },
  });
  return { ...result, outDir };
}

describe('llm errors', () => {
  test('llm errors: a content-policy refusal fails only its dialogue, once, and does not stop the intent', async () => {
    llm.configure({ faults: { contentPolicy: 1 } });
    llm.resetStats();
    try {
      const { summary, outDir } = await run({ numDialogsPerIntent: 5, concurrency: 1 });
      assert.equal(summary.failed, 5);
      const failures = await readFailures(outDir);
      assert.equal(failures.length, 5);
      for (const f of failures) {
        assert.equal(f.type, 'Llm.ContentPolicy', f.reason);
        // Each dialogue was asked: none was skipped as "not attempted" after a systemic stop.
        assert.doesNotMatch(f.reason, /not attempted/);
      }
      assert.equal(llm.stats().stages.skeleton, 5, 'one call per dialogue, not retried');
    } finally {
      llm.configure({ faults: {} });
    }
  });

  test('llm errors: an error event in the middle of a streamed reply is retried as an unavailable endpoint', async () => {
    llm.configure({ faults: { streamError: 1 } });
    llm.resetStats();
    try {
      const { summary, outDir } = await run({
        numDialogsPerIntent: 2,
        concurrency: 2,
        retry: { maximumAttempts: 2, initialIntervalMs: 50, backoffCoefficient: 1, maximumIntervalMs: 50 },
      });
      assert.equal(summary.failed, 2);
      for (const f of await readFailures(outDir)) {
        assert.equal(f.type, 'Llm.Unavailable', f.reason);
        assert.match(f.reason, /the model server failed while generating/);
      }
      assert.equal(llm.stats().faults.streamError, 4, 'each dialogue: two attempts, both cut by the error');
    } finally {
      llm.configure({ faults: {} });
    }
  });

  test('llm errors: 413 and context-length errors fail the dialogue without retrying the same request', async () => {
    for (const fault of ['contextLength', 'payloadTooLarge'] as const) {
      llm.configure({ faults: { [fault]: 1 } });
      llm.resetStats();
      try {
        const { summary, outDir } = await run({ numDialogsPerIntent: 4, concurrency: 2 });
        assert.equal(summary.failed, 4, fault);
        for (const f of await readFailures(outDir)) {
          assert.equal(f.type, 'Llm.ContextLength', `${fault}: ${f.reason}`);
          assert.doesNotMatch(f.reason, /not attempted/);
        }
        assert.equal(llm.stats().stages.skeleton, 4, `${fault}: one call per dialogue`);
      } finally {
        llm.configure({ faults: {} });
      }
    }
  });

  test('llm errors: under a sustained 429 the run slows down and finishes with a single attempt per call', async () => {
    // Two requests a second for six dialogues at once: most first tries get a 429 with retry-after.
    llm.configure({ faults: {}, rateLimit: { requestsPerMinute: 120, windowMs: 1_000 } });
    llm.resetStats();
    try {
      const { summary, outDir } = await run({
        numDialogsPerIntent: 6,
        concurrency: 6,
        retry: { maximumAttempts: 1, initialIntervalMs: 50, backoffCoefficient: 1, maximumIntervalMs: 50 },
      });
      const stats = llm.stats();
      assert.ok(stats.rateLimited > 0, 'the endpoint did push back');
      assert.equal(summary.written, 6, JSON.stringify(await readFailures(outDir)));
      assert.equal(summary.failed, 0);
      assertDataset(await readDialogues(outDir), { count: 6, turns: 2, intents: ['problem_solving'] });
    } finally {
      llm.configure({ rateLimit: undefined });
    }
  });
});
