/**
 * Batch mode across crashes (issue 25): a `worker` process SIGKILLed while it submits a batch (the
 * provider has created it, the worker never heard its id) and again while the workflow polls; the run
 * finishes on a new worker with exactly one batch per chunk and every dialogue written once. And
 * `generate --batch` itself (its own worker and server) SIGKILLed while it polls, then run again.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import OpenAI from 'openai';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import type { RunInput, RunSummary } from '../../src/run/schemas';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { generateArgs, spawnCli } from '../helpers/cli';
import { assertDataset, readDialogues } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const API_KEY = 'sk-batch-durability-key';
let llm: LlmServer;
let temporal: TestDevServer;

before(async () => {
  llm = await startLlmServer({ apiKey: API_KEY });
  temporal = await devServer();
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

function startWorker(taskQueue: string) {
  return spawnCli(
    ['worker', '--temporal-address', temporal.address, '--task-queue', taskQueue, '--out-root', tmpdir()],
    { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url },
  );
}

describe('batch durability', () => {
  test('batch durability: SIGKILLs during submission and during polling create no second batch', async () => {
    const outDir = await tempDir('cc-batch-kill-');
    const taskQueue = unique('batch-kill');
    const runId = unique('batch-kill');
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    llm.configure({ batch: { holdCreate: true, hold: false } });
    llm.resetStats();
    const input: RunInput = {
      runId,
      outDir,
      model: 'test-model',
      intents: ['transaction'],
      numDialogsPerIntent: 4,
      numTurnsPerDialog: 2,
      mode: 'batch',
      batch: { pollInitialMs: 50, pollMaxMs: 200 },
      timeouts: { startToCloseMs: 30_000, heartbeatMs: 2_000, idleMs: 5_000 },
    };
    let worker = startWorker(taskQueue);
    try {
      const handle = await client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input],
      });
      // The skeleton batch exists at the provider; the worker that created it is waiting for its id.
      await waitFor(() => llm.stats().batch.created === 1, 120_000, 'the skeleton batch created');
      worker.child.kill('SIGKILL');
      await worker.done;
      // The provider runs the batch meanwhile; once its lines are answered, the next batch is held.
      llm.configure({ batch: { holdCreate: false } });
      const provider = new OpenAI({ apiKey: API_KEY, baseURL: llm.url, maxRetries: 0 });
      await waitFor(
        async () => (await provider.batches.list()).data[0]?.status === 'completed',
        60_000,
        'the skeleton batch completed',
      );
      llm.configure({ batch: { hold: true } });
      worker = startWorker(taskQueue);
      // The retried submission finds the batch by its metadata; the responses batch is then created and
      // held in progress while the workflow polls it.
      await waitFor(() => llm.stats().batch.created === 2, 120_000, 'the responses batch created');
      worker.child.kill('SIGKILL');
      await worker.done;
      llm.configure({ batch: { hold: false } });
      worker = startWorker(taskQueue);
      const summary = (await handle.result()) as RunSummary;
      assert.equal(summary.written, 4);
      assert.equal(llm.stats().batch.created, 2, 'one skeleton and one responses batch, none twice');
      assert.equal(llm.stats().requests, 0, 'no real-time call');
      assertDataset(await readDialogues(outDir), { count: 4, turns: 2, intents: ['transaction'] });
    } finally {
      worker.child.kill('SIGKILL');
      await worker.done.catch(() => undefined);
      await client.connection.close();
    }
  });
});

describe('batch durability of the embedded mode', () => {
  test('batch durability: `generate --batch` SIGKILLed while it polls resumes when run again; one batch per chunk, each dialogue once', async () => {
    const outDir = await tempDir('cc-batch-resume-');
    const config = join(outDir, '..', `${unique('batch-resume')}.yaml`);
    await writeFile(config, 'mode: batch\nbatch:\n  pollInitialMs: 50\n  pollMaxMs: 200\n');
    const args = generateArgs(
      outDir,
      { dialogs: 4, turns: 2, intents: 'transaction,educational' },
      '--config',
      config,
    );
    const env = { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' };
    // The provider keeps the skeleton batches in progress: the run can only poll them.
    llm.configure({ batch: { hold: true, holdCreate: false } });
    llm.resetStats();
    const first = spawnCli(args, env);
    try {
      await waitFor(() => llm.stats().batch.created === 2, 120_000, 'both skeleton batches submitted');
      const looks = llm.stats().batch.looks;
      await waitFor(() => llm.stats().batch.looks >= looks + 4, 60_000, 'the run polling its batches');
    } finally {
      first.child.kill('SIGKILL');
    }
    await first.done;
    llm.configure({ batch: { hold: false } });
    const runFile = JSON.parse(await readFile(join(outDir, 'run.json'), 'utf8')) as { runId: string };
    const second = await spawnCli(args, env).done;
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, new RegExp(`resuming run ${runFile.runId}`));
    assert.match(second.stdout, /8\/8 dialogues written, 0 failed/);
    assertDataset(await readDialogues(outDir), {
      count: 8,
      turns: 2,
      intents: ['transaction', 'educational'],
    });
    const stats = llm.stats();
    assert.equal(stats.batch.created, 4, 'one skeleton and one responses batch per intent, none twice');
    assert.equal(stats.batch.chat.requests, 16, 'each request answered once');
    assert.equal(stats.requests, 0, 'no real-time call');
  });
});
