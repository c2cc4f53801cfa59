/** The test LLM server speaks the protocol the real `openai` client expects, faults included. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { judgeJsonSchema, judgeReplySchema, JUDGE_SCHEMA_NAME } from '../../src/method/judge';
import { responsesJsonSchema, skeletonJsonSchema } from '../../src/method/replies';
import { startLlmServer, type LlmServer, type LlmServerOptions } from '../llm-server/server';
import { loadScaled } from '../helpers/wait';

async function withServer(
  options: Partial<LlmServerOptions>,
  fn: (server: LlmServer, client: OpenAI) => Promise<void>,
) {
  const server = await startLlmServer(options);
  try {
    await fn(server, new OpenAI({ apiKey: options.apiKey ?? 'k', baseURL: server.url, maxRetries: 0 }));
  } finally {
    await server.close();
  }
}

const skeletonRequest = (n: number): ChatCompletionCreateParamsNonStreaming => ({
  model: 'test-model',
  messages: [{ role: 'user', content: `Number of user queries: ${n}` }],
  response_format: {
    type: 'json_schema',
    json_schema: { name: 'dialogue_skeleton', strict: true, schema: skeletonJsonSchema(n) },
  },
});

test('llm server: a json_schema skeleton request gets exactly N queries and usage', async () => {
  await withServer({}, async (_server, client) => {
    const reply = await client.chat.completions.create(skeletonRequest(5));
    const parsed = JSON.parse(reply.choices[0]!.message.content!) as { category: string; queries: string[] };
    assert.equal(parsed.queries.length, 5);
    assert.ok(parsed.category.length > 0);
    assert.ok(reply.usage!.prompt_tokens > 0 && reply.usage!.completion_tokens > 0);
    assert.equal(reply.choices[0]!.finish_reason, 'stop');
  });
});

test('llm server: a streamed responses request yields N responses and a usage chunk', async () => {
  await withServer({}, async (_server, client) => {
    const stream = await client.chat.completions.create({
      model: 'test-model',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
      stream_options: { include_usage: true },
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'dialogue_responses', strict: true, schema: responsesJsonSchema(3) },
      },
    });
    let content = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks++;
      content += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.ok(chunks > 3);
    assert.equal(finish, 'stop');
    assert.equal((JSON.parse(content) as { responses: string[] }).responses.length, 3);
    assert.ok(usage && usage.completion_tokens > 0);
  });
});

test('llm server: text-mode prompts are understood through their count markers', async () => {
  await withServer({}, async (_server, client) => {
    const reply = await client.chat.completions.create({
      model: 'test-model',
      messages: [{ role: 'user', content: 'Number of responses: 2' }],
    });
    assert.equal(
      (JSON.parse(reply.choices[0]!.message.content!) as { responses: string[] }).responses.length,
      2,
    );
  });
});

test('llm server: unknown models, wrong keys and unsupported formats get OpenAI errors', async () => {
  await withServer({ apiKey: 'right', supportJsonSchema: false }, async (server) => {
    const wrongKey = new OpenAI({ apiKey: 'wrong', baseURL: server.url, maxRetries: 0 });
    const rightKey = new OpenAI({ apiKey: 'right', baseURL: server.url, maxRetries: 0 });
    await assert.rejects(wrongKey.chat.completions.create(skeletonRequest(1)), OpenAI.AuthenticationError);
    await assert.rejects(
      rightKey.chat.completions.create({ ...skeletonRequest(1), model: 'nope' }),
      OpenAI.NotFoundError,
    );
    await assert.rejects(
      rightKey.chat.completions.create(skeletonRequest(1)),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /response_format/.test(e.message),
    );
  });
});

test('llm server: a rate-limit fault is a 429 with retry-after headers', async () => {
  await withServer({ faults: { rateLimit: 1 }, retryAfterSeconds: 3 }, async (_server, client) => {
    const error = await client.chat.completions.create(skeletonRequest(1)).catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.RateLimitError);
    assert.equal(error.headers.get('retry-after'), '3');
  });
});

test('llm server: content faults produce the shapes they name', async () => {
  const contentOf = async (fault: string) => {
    let text = '';
    let finish: string | null = null;
    await withServer({ faults: { [fault]: 1 } }, async (_server, client) => {
      const reply = await client.chat.completions.create(skeletonRequest(3));
      text = reply.choices[0]!.message.content!;
      finish = reply.choices[0]!.finish_reason;
    });
    return { text, finish };
  };
  assert.match((await contentOf('fenced')).text, /^```json\n\{/);
  assert.match((await contentOf('prose')).text, /^Sure! .*\n\{/);
  assert.equal((JSON.parse((await contentOf('wrongCount')).text) as { queries: string[] }).queries.length, 2);
  const truncated = await contentOf('truncated');
  assert.equal(truncated.finish, 'length');
  assert.throws(() => JSON.parse(truncated.text));
  const malformed = await contentOf('malformedJson');
  assert.throws(() => JSON.parse(malformed.text));
  assert.match((await contentOf('controlChars')).text, /\\u0000/);
});

test('llm server: a hung request is abandoned by the client and close() still returns', async () => {
  const server = await startLlmServer({ faults: { hang: 1 } });
  const client = new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
  await assert.rejects(
    client.chat.completions.create(skeletonRequest(1), { signal: AbortSignal.timeout(300) }),
  );
  const started = Date.now();
  await server.close();
  assert.ok(Date.now() - started < loadScaled(2_000));
});

test('llm server: a stream cut halfway never delivers a finish reason', async () => {
  await withServer({ faults: { streamCut: 1 } }, async (_server, client) => {
    let finish: string | null = null;
    try {
      const stream = await client.chat.completions.create({ ...skeletonRequest(4), stream: true });
      for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
    } catch {
      // the client may also see the socket close as an error
    }
    assert.equal(finish, null);
  });
});

test('llm server: the requests/min window admits the limit and answers 429 beyond it', async () => {
  // 5 a minute in one window of a minute: eight requests land in one window however slow the machine.
  await withServer({ rateLimit: { requestsPerMinute: 5, windowMs: 60_000 } }, async (server, client) => {
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => client.chat.completions.create(skeletonRequest(1))),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5);
    assert.equal(
      results.filter((r) => r.status === 'rejected' && r.reason instanceof OpenAI.RateLimitError).length,
      3,
    );
    assert.equal(server.stats().rateLimited, 3);
    assert.equal(server.stats().requests, 8);
  });
});

test('llm server: latency follows the configured mean', async () => {
  await withServer({ latency: { meanMs: 50, jitter: 0.3 } }, async (_server, client) => {
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = Date.now();
      await client.chat.completions.create(skeletonRequest(1));
      times.push(Date.now() - started);
    }
    times.sort((a, b) => a - b);
    const median = times[10]!;
    assert.ok(median >= 20 && median <= loadScaled(200), `median ${median} ms`);
  });
});

test('llm server: runs as its own process and stops on SIGTERM', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/llm-server/cli.ts', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const { url } = JSON.parse(line.toString()) as { url: string };
  const models = (await (await fetch(`${url}/models`)).json()) as { data: { id: string }[] };
  assert.deepEqual(
    models.data.map((m) => m.id),
    ['test-model'],
  );
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0);
});

test("llm server: a judge reply with no fault asked fits the judge's schema, whatever the turns score", async () => {
  await withServer({}, async (_server, client) => {
    // With one turn scored 3 to 10 at random, 200 replies all but surely include a turn of 10 (1 in 8).
    const replies = await Promise.all(
      Array.from({ length: 200 }, () =>
        client.chat.completions.create({
          model: 'test-model',
          messages: [{ role: 'user', content: 'Number of assistant turns: 1' }],
          response_format: {
            type: 'json_schema',
            json_schema: { name: JUDGE_SCHEMA_NAME, strict: true, schema: judgeJsonSchema(1) },
          },
        }),
      ),
    );
    const parsed = replies.map((r) =>
      judgeReplySchema(1).safeParse(JSON.parse(r.choices[0]!.message.content!)),
    );
    const bad = parsed.filter((p) => !p.success);
    assert.equal(bad.length, 0, JSON.stringify(bad[0]?.error?.issues));
    assert.ok(
      parsed.some((p) => p.success && p.data.turns[0]!.score === 10),
      'a turn scored 10 was drawn',
    );
  });
});
