/** The test LLM server speaks the OpenAI Batch API to the real `openai` client, faults included. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { skeletonJsonSchema } from '../../src/method/replies';
import { startLlmServer, type LlmServer, type LlmServerSettings } from '../llm-server/server';
import { waitFor } from '../helpers/wait';

async function withServer(
  options: LlmServerSettings,
  fn: (server: LlmServer, client: OpenAI) => Promise<void>,
) {
  const server = await startLlmServer(options);
  try {
    await fn(server, new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 }));
  } finally {
    await server.close();
  }
}

const line = (id: string, model = 'test-model') =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model,
      messages: [{ role: 'user', content: 'Number of user queries: 3' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'dialogue_skeleton', strict: true, schema: skeletonJsonSchema(3) },
      },
    },
  });

async function submit(client: OpenAI, ids: string[], metadata?: Record<string, string>): Promise<Batch> {
  const file = await client.files.create({
    file: await toFile(Buffer.from(ids.map((id) => line(id)).join('\n') + '\n'), 'in.jsonl'),
    purpose: 'batch',
  });
  return client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    metadata,
  });
}

async function settled(client: OpenAI, id: string): Promise<Batch> {
  let batch = await client.batches.retrieve(id);
  const ends = new Set(['completed', 'failed', 'expired', 'cancelled']);
  await waitFor(
    async () => ends.has((batch = await client.batches.retrieve(id)).status),
    20_000,
    `batch ${id} to end`,
    20,
  );
  return batch;
}

const lines = async (client: OpenAI, fileId: string | null | undefined) =>
  fileId
    ? (await (await client.files.content(fileId)).text())
        .split('\n')
        .filter(Boolean)
        .map(
          (l) =>
            JSON.parse(l) as {
              custom_id: string;
              response: { status_code: number; body: { choices: { message: { content: string } }[] } } | null;
              error: { code: string } | null;
            },
        )
    : [];

test('llm server batches: a batch completes with every line answered by the chat logic, apart from real-time stats', async () => {
  await withServer({}, async (server, client) => {
    const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
    const created = await submit(client, ids, { run: 'x' });
    assert.equal(created.status, 'validating');
    const batch = await settled(client, created.id);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.request_counts, { total: 12, completed: 12, failed: 0 });
    assert.deepEqual(batch.metadata, { run: 'x' });
    const out = await lines(client, batch.output_file_id);
    assert.deepEqual(out.map((l) => l.custom_id).sort(), [...ids].sort());
    assert.notDeepEqual(
      out.map((l) => l.custom_id),
      ids,
      'output order is not input order',
    );
    const reply = JSON.parse(out[0]!.response!.body.choices[0]!.message.content) as {
      queries: string[];
    };
    assert.equal(reply.queries.length, 3);
    assert.equal(server.stats().requests, 0);
    assert.equal(server.stats().batch.chat.stages.skeleton, 12);
  });
});

test('llm server batches: failed lines go to the error file and count as failed', async () => {
  await withServer({ batch: { failLines: 0.5 } }, async (_server, client) => {
    const batch = await settled(
      client,
      (
        await submit(
          client,
          Array.from({ length: 20 }, (_, i) => `r${i}`),
        )
      ).id,
    );
    assert.equal(batch.status, 'completed');
    const errors = await lines(client, batch.error_file_id);
    assert.ok(errors.length > 0 && errors.length < 20);
    assert.equal(batch.request_counts!.failed, errors.length);
    assert.ok(errors.every((e) => e.response?.status_code === 500));
  });
});

test('llm server batches: an expired batch keeps what it answered and lists the rest as batch_expired', async () => {
  await withServer({ batch: { expireBatches: 1, expireAfterLines: 3 } }, async (_server, client) => {
    const batch = await settled(client, (await submit(client, ['a', 'b', 'c', 'd', 'e'])).id);
    assert.equal(batch.status, 'expired');
    assert.equal((await lines(client, batch.output_file_id)).length, 3);
    const errors = await lines(client, batch.error_file_id);
    assert.deepEqual(
      errors.map((e) => e.error?.code),
      ['batch_expired', 'batch_expired'],
    );
    assert.equal(
      (await settled(client, (await submit(client, ['f'])).id)).status,
      'completed',
      'only the next batch expires',
    );
  });
});

test('llm server batches: failed validation names the line and field; list pages with after; cancel ends in cancelled', async () => {
  await withServer({ batch: { failValidationBatches: 1 } }, async (server, client) => {
    const failed = await settled(client, (await submit(client, ['a'])).id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.errors?.data?.[0]?.line, 1);
    assert.equal(failed.errors?.data?.[0]?.param, 'body.messages');
    server.configure({ batch: { hold: true } });
    const held = await submit(client, ['b'], { chunk: '2' });
    await client.batches.cancel(held.id);
    server.configure({ batch: { hold: false } });
    assert.equal((await settled(client, held.id)).status, 'cancelled');
    const seen: string[] = [];
    for await (const b of client.batches.list({ limit: 1 })) seen.push(b.id);
    assert.deepEqual(seen, [held.id, failed.id], 'newest first, every page');
  });
});
