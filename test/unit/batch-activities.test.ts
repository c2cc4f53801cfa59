/** The batch activities against the test server's Batch API, with the real `openai` client. */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import OpenAI from 'openai';
import { createBatchActivities } from '../../src/activities';
import { splitLines } from '../../src/activities/batch-submit';
import { createStorageActivities } from '../../src/activities/storage';
import { readDialogueRecords, type StoredDialogueRecord } from '../../src/export/records';
import {
  fromRanges,
  toRanges,
  type BatchPlanInput,
  type CollectBatchResult,
  type SubmitBatchInput,
} from '../../src/run/batch';
import { StoreRegistry } from '../../src/storage/jsonl-store';
import { startLlmServer, type LlmServerSettings } from '../llm-server/server';
import { tempDir } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const run = (fn: (...args: never[]) => Promise<unknown>, input: unknown) =>
  new MockActivityEnvironment().run(fn as (input: unknown) => Promise<unknown>, input);

async function setup(options: LlmServerSettings = {}) {
  const server = await startLlmServer(options);
  const dir = await tempDir('cc-batch-act-');
  const openai = new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
  const batch = createBatchActivities({ openai, root: dir });
  const storage = new StoreRegistry({ fsync: false, root: dir });
  const submit = (
    stage: 'skeleton' | 'responses',
    indexes: number[],
    chunk = `${stage}.a1`,
  ): SubmitBatchInput => ({
    outDir: dir,
    runId: 'r1',
    intent: 'transaction',
    stage,
    chunk,
    indexes: toRanges(indexes),
    numTurns: 3,
    llm: {
      runId: 'r1',
      idleMs: 60_000,
      model: 'test-model',
      temperature: 0.7,
      maxTokens: 2_000,
      responseFormat: 'auto',
      rateLimit: {},
    },
    limits: { requestsPerFile: 50_000, bytesPerFile: 200_000_000 },
    plan: { seed: 'r1' },
  });
  /** Collects an ended batch of intent `transaction` of run `r1`; `plan` as the workflow passes it, if given. */
  const collect = (stage: 'skeleton' | 'responses', batchId: string, plan?: BatchPlanInput) =>
    run(batch.collectBatch, {
      outDir: dir,
      runId: 'r1',
      intent: 'transaction',
      stage,
      batchId,
      numTurns: 3,
      ...(plan && { plan }),
    }) as Promise<CollectBatchResult>;
  const ended = async (id: string) => {
    await waitFor(
      async () =>
        ['completed', 'failed', 'expired', 'cancelled'].includes(
          ((await run(batch.batchStatus, { batchId: id })) as { status: string }).status,
        ),
      20_000,
      `batch ${id} to end`,
      20,
    );
  };
  const close = async () => {
    await storage.closeAll();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { server, dir, batch, storage, submit, collect, ended, close };
}

test('batch lines: files split within the request and byte limits; index ranges round-trip', () => {
  const lines = ['a'.repeat(9), 'b'.repeat(9), 'c'.repeat(9)];
  assert.deepEqual(
    splitLines(lines, { requestsPerFile: 2, bytesPerFile: 1_000 }).map((f) => f.length),
    [2, 1],
  );
  assert.deepEqual(
    splitLines(lines, { requestsPerFile: 10, bytesPerFile: 20 }).map((f) => f.length),
    [2, 1],
  );
  assert.deepEqual(toRanges([5, 1, 2, 3, 9]), [
    [1, 4],
    [5, 6],
    [9, 10],
  ]);
  assert.deepEqual(fromRanges(toRanges([5, 1, 2, 3, 9])), [1, 2, 3, 5, 9]);
});

test('batch activities: skeletons then responses through batches, stored once; a second submission of a chunk reuses its batch', async () => {
  const t = await setup();
  try {
    const sk = (await run(t.batch.submitBatch, t.submit('skeleton', [0, 1, 2, 3]))) as {
      batches: { id: string; reused: boolean }[];
    };
    assert.equal(sk.batches.length, 1);
    const again = (await run(t.batch.submitBatch, t.submit('skeleton', [0, 1, 2, 3]))) as typeof sk;
    assert.deepEqual(again.batches, [{ ...sk.batches[0], reused: true }]);
    assert.equal(t.server.stats().batch.created, 1, 'no second batch for the same chunk');
    await t.ended(sk.batches[0]!.id);
    const got = await t.collect('skeleton', sk.batches[0]!.id);
    assert.deepEqual(got.succeeded, [[0, 4]]);
    assert.equal(got.usage.calls, 4);
    const rs = (await run(t.batch.submitBatch, t.submit('responses', [0, 1, 2, 3]))) as typeof sk;
    await t.ended(rs.batches[0]!.id);
    const back = await t.collect('responses', rs.batches[0]!.id);
    assert.deepEqual(back.succeeded, [[0, 4]]);
    const storage = createStorageActivities(t.storage);
    const store = (i: Parameters<typeof storage.storeBatchDialogues>[0]) => storage.storeBatchDialogues(i);
    const input = {
      outDir: t.dir,
      runId: 'r1',
      intent: 'transaction',
      batchId: rs.batches[0]!.id,
      model: 'test-model',
      plan: { seed: 'r1' },
    };
    assert.equal(((await run(store, input)) as { written: number }).written, 4);
    assert.equal(((await run(store, input)) as { written: number }).written, 0, 'stored once');
    const records: StoredDialogueRecord[] = [];
    for await (const r of readDialogueRecords(t.dir)) records.push(r);
    assert.deepEqual(
      records.map((r) => r.id).sort(),
      [0, 1, 2, 3].map((i) => `r1.transaction.${i}`),
    );
    assert.equal(records[0]!.conversation.length, 6);
    assert.equal(t.server.stats().requests, 0, 'no real-time call');
  } finally {
    await t.close();
  }
});

test('batch activities: failed and expired lines come back as failures naming their dialogue', async () => {
  const t = await setup({ batch: { expireBatches: 1, expireAfterLines: 2 } });
  try {
    const sk = (await run(t.batch.submitBatch, t.submit('skeleton', [0, 1, 2, 3, 4]))) as {
      batches: { id: string }[];
    };
    await t.ended(sk.batches[0]!.id);
    const got = await t.collect('skeleton', sk.batches[0]!.id);
    assert.equal(fromRanges(got.succeeded).length, 2);
    assert.equal(got.failed.length, 3);
    assert.ok(got.failed.every((f) => f.type === 'Batch.Expired' && !f.final));
  } finally {
    await t.close();
  }
});

test('batch activities: a skeleton line that sends its flow step as a query is refused as an echo, as a real-time call is', async () => {
  const t = await setup({ faults: { echoStep: 1 } });
  try {
    const sk = (await run(t.batch.submitBatch, t.submit('skeleton', [0, 1, 2]))) as {
      batches: { id: string }[];
    };
    await t.ended(sk.batches[0]!.id);
    const got = await t.collect('skeleton', sk.batches[0]!.id, { seed: 'r1' });
    assert.deepEqual(got.succeeded, []);
    assert.deepEqual(got.failed.map((f) => f.index).sort(), [0, 1, 2]);
    for (const f of got.failed) {
      assert.equal(f.type, 'Llm.InvalidOutput');
      assert.match(f.reason, /failed the echo check: queries\.0 repeats the information flow's step 1/);
      assert.equal(f.final, false, 'a later batch asks again');
    }
    // An input scheduled before the plan was passed has no steps to check against.
    assert.deepEqual((await t.collect('skeleton', sk.batches[0]!.id)).succeeded, [[0, 3]]);
  } finally {
    await t.close();
  }
});
