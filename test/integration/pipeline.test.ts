/**
 * The real pipeline: a real `temporal server start-dev`, real workers, the real `openai` client over
 * HTTP, against the OpenAI-compatible test server in test/llm-server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { generate, type GenerateOptions } from '../../src/client/generate';
import { INTENT_IDS } from '../../src/method/intents';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { assertDataset, readDialogues, readFailures } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { setConcurrencyUpdate } from '../../src/run/messages';

const API_KEY = 'sk-test-secret-key-0123456789';
let temporal: TestDevServer;
let llm: LlmServer;

before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({ apiKey: API_KEY, latency: { meanMs: 20, jitter: 0.5 } });
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

async function run(run: Partial<GenerateOptions['run']>, extra: Partial<GenerateOptions> = {}) {
  const outDir = await tempDir('cc-out-');
  const runId = unique('it');
  const result = await generate({
    run: {
      outDir,
      runId,
      model: 'test-model',
      retry: { maximumAttempts: 6, initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 1_000 },
      ...run,
    },
    temporal: { address: temporal.address, taskQueue: unique('tq') },
    llm: { baseURL: llm.url },
    env: { ...process.env, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: undefined },
    ...extra,
  });
  return { ...result, outDir, runId };
}

describe('pipeline', () => {
  test('pipeline: every requested dialogue lands once, with exact turns and strict alternation', async () => {
    llm.configure({ faults: {}, supportJsonSchema: true });
    const progress: number[] = [];
    const { summary, outDir, runId } = await run(
      { numDialogsPerIntent: 4, numTurnsPerDialog: 3, concurrency: 12 },
      {
        onProgress: (p) => progress.push(p.intents.reduce((s, i) => s + i.written, 0)),
        progressIntervalMs: 200,
      },
    );
    assert.equal(summary.written, 36);
    assert.equal(summary.failed, 0);
    assert.ok(summary.tokens.prompt > 0 && summary.tokens.completion > 0);
    assert.equal(summary.llmCalls, 72);
    assertDataset(await readDialogues(outDir), { count: 36, turns: 3, intents: INTENT_IDS });
    assert.deepEqual(await readFailures(outDir), []);
    assert.ok(progress.length > 0, 'progress was reported');

    // The API key never reaches Temporal: not in inputs, results or any event of any history.
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    try {
      for (const id of [runId, ...INTENT_IDS.map((i) => `${runId}.${i}`)]) {
        const history = await client.workflow.getHandle(id).fetchHistory();
        const text = JSON.stringify(history);
        assert.ok(!text.includes(API_KEY), `API key found in the history of ${id}`);
        assert.ok((history.events?.length ?? 0) < 10_000);
      }
    } finally {
      await client.connection.close();
    }
  });

  test('pipeline: an endpoint without json_schema support is served through the fallback modes', async () => {
    llm.configure({ faults: {}, supportJsonSchema: false, supportJsonObject: false });
    try {
      const { summary, outDir } = await run({
        numDialogsPerIntent: 2,
        numTurnsPerDialog: 2,
        intents: ['transaction', 'educational'],
      });
      assert.equal(summary.written, 4);
      assertDataset(await readDialogues(outDir), {
        count: 4,
        turns: 2,
        intents: ['transaction', 'educational'],
      });
    } finally {
      llm.configure({ supportJsonSchema: true, supportJsonObject: true });
    }
  });

  test('pipeline: with each LLM fault at 5% the run still delivers every dialogue', async () => {
    llm.configure({
      faults: {
        rateLimit: 0.05,
        serverError: 0.05,
        hang: 0.05,
        streamCut: 0.05,
        streamError: 0.05,
        malformedJson: 0.05,
        truncated: 0.05,
        fenced: 0.05,
        prose: 0.05,
        wrongCount: 0.05,
        controlChars: 0.05,
      },
      retryAfterSeconds: 1,
    });
    llm.resetStats();
    try {
      const { summary, outDir } = await run({
        numDialogsPerIntent: 6,
        numTurnsPerDialog: 3,
        concurrency: 18,
        timeouts: { startToCloseMs: 20_000, heartbeatMs: 2_000, idleMs: 2_000 },
        retry: {
          maximumAttempts: 20,
          initialIntervalMs: 100,
          backoffCoefficient: 1.5,
          maximumIntervalMs: 1_000,
        },
      });
      const stats = llm.stats();
      assert.equal(summary.written, 54, JSON.stringify(stats.faults));
      assert.equal(summary.failed, 0);
      assertDataset(await readDialogues(outDir), { count: 54, turns: 3, intents: INTENT_IDS });
      const injected = Object.values(stats.faults).reduce((a, b) => a + b, 0);
      assert.ok(injected > 0, 'faults were injected');
    } finally {
      llm.configure({ faults: {} });
    }
  });

  test('pipeline: an endpoint that always fails records every dialogue in failures.jsonl and stops retrying', async () => {
    llm.configure({ faults: {}, alwaysFail: 'serverError' });
    try {
      const { summary, outDir } = await run({
        numDialogsPerIntent: 3,
        numTurnsPerDialog: 2,
        intents: ['exploratory', 'simulation'],
        retry: { maximumAttempts: 2, initialIntervalMs: 50, backoffCoefficient: 1, maximumIntervalMs: 50 },
      });
      assert.equal(summary.written, 0);
      assert.equal(summary.failed, 6);
      const failures = await readFailures(outDir);
      assert.equal(failures.length, 6);
      assert.equal(new Set(failures.map((f) => f.id)).size, 6);
      for (const f of failures) {
        assert.equal(f.type, 'Llm.Unavailable');
        assert.match(f.reason, /50\d/);
        assert.ok(f.topic && f.info_flow && f.intent);
      }
      assert.deepEqual(await readDialogues(outDir), []);
    } finally {
      llm.configure({ alwaysFail: undefined });
    }
  });
  test('pipeline: the endpoint never has more calls in flight than the run allows, also after it is lowered', async () => {
    // Intents schedule beyond their share; the worker's gate for the run holds the bound.
    llm.configure({ faults: {}, supportJsonSchema: true, latency: { meanMs: 120, jitter: 0.3 } });
    llm.resetStats();
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    let watcher: Promise<void> | undefined;
    let maxAfterLowering = 0;
    try {
      const { summary } = await run(
        {
          numDialogsPerIntent: 14,
          numTurnsPerDialog: 2,
          concurrency: 6,
          intents: ['transaction', 'educational', 'exploratory'],
        },
        {
          onStarted: ({ runId }) => {
            watcher = (async () => {
              await waitFor(() => llm.stats().completed >= 16, 30_000, '16 calls done');
              assert.ok(llm.stats().maxInFlight <= 6, `${llm.stats().maxInFlight} calls in flight, bound 6`);
              assert.equal(llm.stats().maxInFlight, 6, 'the run used its whole bound');
              await client.workflow.getHandle(runId).executeUpdate(setConcurrencyUpdate, { args: [2] });
              // Calls admitted before the change finish; from then on the new bound holds.
              const at = llm.stats().completed;
              await waitFor(() => llm.stats().completed >= at + 8, 30_000, '8 more calls done');
              llm.resetStats();
              await waitFor(() => llm.stats().completed >= 10, 30_000, '10 calls at the new bound');
              maxAfterLowering = llm.stats().maxInFlight;
            })();
            watcher.catch(() => undefined); // awaited below, after the run
          },
        },
      );
      await watcher;
      assert.equal(summary.written, 42);
      assert.ok(
        maxAfterLowering >= 1 && maxAfterLowering <= 2,
        `${maxAfterLowering} calls in flight, bound 2`,
      );
    } finally {
      await client.connection.close();
      llm.configure({ latency: { meanMs: 20, jitter: 0.5 } });
    }
  });
});
