/**
 * Batch mode (issue 25): a real `temporal server start-dev`, real workers and the real `openai` client
 * against the test server's Batch API (test/llm-server/batches.ts).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { generate, type GenerateOptions } from '../../src/client/generate';
import { BATCH_ACTIVITY_ATTEMPTS } from '../../src/workflows/batch-intent';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { assertDataset, readDialogues, readFailures } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { generateArgs, runCli } from '../helpers/cli';

const API_KEY = 'sk-test-secret-key-batch-0123456789';
const BATCH_ACTIVITIES = new Set([
  'submitBatch',
  'batchStatus',
  'collectBatch',
  'cancelBatch',
  'clearStaging',
]);
const INTENTS = ['transaction', 'educational'] as const;
let temporal: TestDevServer;
let llm: LlmServer;

before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({ apiKey: API_KEY });
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

/** A batch run of two intents, polling every 50 ms to 200 ms so a test waits on the server, not on timers. */
async function batchRun(run: Partial<GenerateOptions['run']> = {}, extra: Partial<GenerateOptions> = {}) {
  const outDir = await tempDir('cc-batch-');
  const runId = unique('batch');
  const result = await generate({
    run: {
      outDir,
      runId,
      model: 'test-model',
      intents: [...INTENTS],
      numDialogsPerIntent: 5,
      numTurnsPerDialog: 3,
      mode: 'batch',
      batch: { pollInitialMs: 50, pollMaxMs: 200 },
      ...run,
    },
    temporal: { address: temporal.address, taskQueue: unique('tq') },
    llm: { baseURL: llm.url },
    env: { ...process.env, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: undefined },
    ...extra,
  });
  return { ...result, outDir, runId };
}

function reset(batch: Parameters<LlmServer['configure']>[0]['batch'] = {}) {
  llm.configure({
    faults: {},
    batch: { failLines: 0, expireBatches: 0, failValidationBatches: 0, hold: false, ...batch },
  });
  llm.resetStats();
}

describe('batch mode', () => {
  test('batch run: every dialogue is written once, through four batches and no real-time call; no staged file remains', async () => {
    reset();
    const { summary, outDir, runId } = await batchRun();
    assert.equal(summary.written, 10);
    assert.equal(summary.failed, 0);
    assertDataset(await readDialogues(outDir), { count: 10, turns: 3, intents: [...INTENTS] });
    assert.deepEqual(await readFailures(outDir), []);
    assert.equal(existsSync(join(outDir, '.batch')), false, 'the staged batch files are removed');
    const stats = llm.stats();
    assert.equal(stats.requests, 0, 'no real-time call');
    assert.equal(stats.batch.created, 4, 'one skeleton and one responses batch per intent');
    assert.equal(stats.batch.chat.requests, 20);
    assert.equal(summary.llmCalls, 20);
    assert.equal(summary.batch?.calls, 20);
    assert.ok((summary.batch?.tokens.prompt ?? 0) > 0);
    const intent = summary.intents[0]!;
    assert.deepEqual(intent.batch?.requests, { total: 10, completed: 10, failed: 0 });
    // Payloads stay in files: the intent's history holds ids and counts, a few events per batch and look.
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    try {
      const history = await client.workflow.getHandle(`${runId}.transaction`).fetchHistory();
      assert.ok((history.events?.length ?? 0) < 150, `${history.events?.length} events`);
      assert.ok(!JSON.stringify(history).includes('"queries"'), 'no skeleton in the history');
      // Every batch activity has a bounded retry policy: a fault no retry fixes cannot retry for ever.
      const scheduled = (history.events ?? []).flatMap((e) => {
        const a = e.activityTaskScheduledEventAttributes;
        return a && BATCH_ACTIVITIES.has(a.activityType?.name ?? '') ? [a] : [];
      });
      assert.ok(scheduled.length >= 4, `${scheduled.length} batch activities`);
      for (const a of scheduled)
        assert.equal(a.retryPolicy?.maximumAttempts, BATCH_ACTIVITY_ATTEMPTS, a.activityType?.name ?? '');
    } finally {
      await client.connection.close();
    }
  });

  test('batch run: failed lines go into a later batch of their stage and are written', async () => {
    reset({ failLines: 0.3 });
    const { summary, outDir } = await batchRun({
      batch: { pollInitialMs: 50, pollMaxMs: 200, maxAttempts: 8 },
    });
    assert.ok(llm.stats().batch.lines.failed > 0, 'some lines failed');
    assert.ok(llm.stats().batch.created > 4, 'the failed lines went into later batches');
    assert.equal(summary.written, 10);
    assert.equal((await readDialogues(outDir)).length, 10);
    assert.equal(llm.stats().requests, 0);
  });

  test("batch run: a skeleton that sends its flow's step as a query is refused as an echo, as in real time", async () => {
    reset();
    llm.configure({ faults: { echoStep: 1 } });
    const { summary, outDir } = await batchRun({
      batch: { pollInitialMs: 50, pollMaxMs: 200, maxAttempts: 2 },
    });
    assert.equal(summary.written, 0);
    const failures = await readFailures(outDir);
    assert.equal(failures.length, 10);
    for (const f of failures) {
      assert.equal(f.stage, 'skeleton');
      assert.equal(f.type, 'Llm.InvalidOutput');
      assert.match(f.reason, /echo check: queries\.0 repeats the information flow's step 1/);
    }
    assert.equal(llm.stats().batch.created, 4, 'two attempts per intent');
    assert.equal(llm.stats().requests, 0);
  });

  test('batch run: an expired batch keeps its answered lines, the rest go in the next batch', async () => {
    reset({ expireBatches: 1, expireAfterLines: 2 });
    const { summary, outDir } = await batchRun();
    assert.equal(llm.stats().batch.expired, 1);
    assert.equal(llm.stats().batch.created, 5);
    assert.equal(summary.written, 10);
    assertDataset(await readDialogues(outDir), { count: 10, turns: 3, intents: [...INTENTS] });
  });

  test('batch run: lines that fail every attempt are recorded in failures.jsonl', async () => {
    reset({ failLines: 1 });
    const { summary, outDir } = await batchRun({
      batch: { pollInitialMs: 50, pollMaxMs: 200, maxAttempts: 2 },
    });
    assert.equal(summary.written, 0);
    assert.equal(summary.failed, 10);
    const failures = await readFailures(outDir);
    assert.equal(failures.length, 10);
    assert.ok(failures.every((f) => f.stage === 'skeleton' && f.type === 'Llm.Unavailable'));
    assert.equal(llm.stats().batch.created, 4, 'two attempts per intent');
  });

  test("batch run: a failed batch cancels the wave's other batches and fails the run with one error naming the line, dialogue and field", async () => {
    // Three skeleton batches of 2, 2 and 1 requests; the provider keeps the good ones queued.
    reset({ failValidationBatches: 1, hold: true });
    const runId = unique('batch-invalid');
    const error = await batchRun({
      runId,
      intents: ['transaction'],
      batch: { pollInitialMs: 50, pollMaxMs: 200, requestsPerFile: 2 },
    }).then(
      () => assert.fail('the run completed'),
      (e: Error) => e,
    );
    assert.match(
      String((error.cause as Error | undefined)?.message),
      new RegExp(
        `failed validation: line 1 \\(dialogue ${runId}\\.transaction\\.\\d\\), field body\\.messages: `,
      ),
    );
    const stats = llm.stats().batch;
    assert.equal(stats.created, 3);
    assert.equal(stats.failed, 1);
    assert.equal(stats.cancelled, 2, 'the other two cancelled, none left running at the provider');
  });

  test('batch run: cancelling the run cancels its provider batches', async () => {
    reset({ hold: true });
    const runId = unique('batch-cancel');
    const outDir = await tempDir('cc-batch-cancel-');
    const started = generate({
      run: {
        outDir,
        runId,
        model: 'test-model',
        intents: [...INTENTS],
        numDialogsPerIntent: 3,
        numTurnsPerDialog: 3,
        mode: 'batch',
        batch: { pollInitialMs: 50, pollMaxMs: 200 },
      },
      temporal: { address: temporal.address, taskQueue: unique('tq') },
      llm: { baseURL: llm.url },
      env: { ...process.env, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: undefined },
    });
    const outcome = started.then(
      () => 'completed',
      (error: Error) => error.message,
    );
    await waitFor(() => llm.stats().batch.created >= 2, 60_000, 'both skeleton batches submitted');
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    try {
      await client.workflow.getHandle(runId).cancel();
      await outcome;
    } finally {
      await client.connection.close();
    }
    llm.configure({ batch: { hold: false } });
    await waitFor(() => llm.stats().batch.cancelled >= 2, 30_000, 'both provider batches cancelled');
  });

  test('batch run: past --batch-deadline the open batches are cancelled and the rest runs in real time', async () => {
    reset({ hold: true });
    const { summary, outDir } = await batchRun({
      batch: { pollInitialMs: 50, pollMaxMs: 200, deadlineMs: 1_500 },
    });
    assert.equal(summary.written, 10);
    assertDataset(await readDialogues(outDir), { count: 10, turns: 3, intents: [...INTENTS] });
    const stats = llm.stats();
    assert.equal(stats.batch.cancelled, 2, 'both skeleton batches cancelled at the deadline');
    assert.equal(stats.requests, 20, 'every call of the 10 dialogues in real time, once');
    assert.equal(summary.batch?.calls, 0);
  });

  test('batch run: a wave smaller than batch.minRequests runs in real time', async () => {
    reset();
    const { summary } = await batchRun({ batch: { pollInitialMs: 50, pollMaxMs: 200, minRequests: 6 } });
    assert.equal(summary.written, 10);
    assert.equal(llm.stats().batch.created, 0);
    assert.equal(llm.stats().requests, 20);
  });

  test('batch cli: mode batch in the config file runs in batches and prints the batch price apart; bad batch flags exit 2', async () => {
    reset();
    const out = await tempDir('cc-batch-cli-');
    const config = join(out, '..', `${unique('cfg')}.yaml`);
    await writeFile(config, 'mode: batch\nbatch:\n  pollInitialMs: 50\n  pollMaxMs: 200\n');
    const env = { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: temporal.address };
    const args = generateArgs(out, { dialogs: 2, turns: 2, intents: 'transaction' }, '--config', config);
    const result = await runCli(args, env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /2\/2 dialogues written, 0 failed/);
    assert.match(result.stdout, /batch: 4 calls .* at the batch price/);
    assert.equal(llm.stats().requests, 0);
    const bad = await runCli([...generateArgs(out, {}), '--batch', '--batch-attempts', '0'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--batch-attempts/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });
});

describe('batch mode across continue-as-new', () => {
  // The server suggests continue-as-new past 60 events: a few looks at a batch.
  let small: TestDevServer;
  before(async () => {
    small = await devServer({ 'limit.historyCount.suggestContinueAsNew': 60 });
  });
  after(async () => {
    await small?.dispose();
  });

  test("batch intent: continues as new while its batches run and carries them: none submitted twice, each dialogue once, the provider's counts whole", async () => {
    reset({ hold: true });
    const runId = unique('batch-can');
    const client = new Client({ connection: await Connection.connect({ address: small.address }) });
    try {
      const running = batchRun(
        { runId, intents: ['transaction'], numDialogsPerIntent: 6, numTurnsPerDialog: 2 },
        { temporal: { address: small.address, taskQueue: unique('tq') } },
      );
      const runs = async () => {
        let n = 0;
        for await (const _ of client.workflow.list({ query: `WorkflowId = '${runId}.transaction'` })) n++;
        return n;
      };
      // The skeleton batch is held: the intent can only poll it, and continues as new meanwhile.
      await waitFor(async () => (await runs()) >= 2, 120_000, 'the intent continued as new');
      llm.configure({ batch: { hold: false } });
      const { summary, outDir } = await running;
      assert.equal(summary.written, 6);
      assert.equal(summary.failed, 0);
      assertDataset(await readDialogues(outDir), { count: 6, turns: 2, intents: ['transaction'] });
      const stats = llm.stats();
      assert.equal(
        stats.batch.created,
        2,
        'one skeleton and one responses batch: the open one carried, not submitted again',
      );
      assert.equal(stats.requests, 0);
      const intent = summary.intents[0]!;
      assert.ok(intent.continuedAsNew >= 1, `continued as new ${intent.continuedAsNew} times`);
      assert.equal(intent.batch?.batches, 2);
      assert.deepEqual(
        intent.batch?.requests,
        { total: 12, completed: 12, failed: 0 },
        'counts not shown twice',
      );
      assert.equal(existsSync(join(outDir, '.batch')), false);
    } finally {
      await client.connection.close();
    }
  });
});
