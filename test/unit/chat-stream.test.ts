/**
 * The streamed-completion reader, fed byte chunks cut at awkward places: what it keeps, where it
 * stops, and which errors it raises (they decide whether Temporal tries again; see errors.test.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import OpenAI from 'openai';
import { readChatStream } from '../../src/activities/chat-stream';
import { LLM_FAILURE_TYPES, toLlmFailure } from '../../src/activities/errors';
import { nodeBody, nodeFetch } from '../../src/activities/node-fetch';
import { waitFor } from '../helpers/wait';

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] });

/** A Response whose body arrives as the given pieces of `text`, cut every `every` bytes. */
function response(text: string, every: number): Response {
  const bytes = new TextEncoder().encode(text);
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += every) pieces.push(bytes.slice(i, i + every));
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const piece of pieces) controller.enqueue(piece);
        controller.close();
      },
    }),
    { headers: { 'content-type': 'text/event-stream' } },
  );
}

const REPLY = [
  `data: ${chunk({ role: 'assistant', content: '' })}`,
  // Multi-byte characters, so that cuts fall inside them too.
  `data: ${chunk({ content: '{"category":"Café ' })}`,
  ': keep-alive comment',
  `data: ${chunk({ content: 'Planning ☕"}' })}`,
  `data: ${chunk({}, 'stop')}`,
  `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 7 } })}`,
  'data: [DONE]',
  '',
].join('\n\n');

test('chat stream: content, finish reason and usage survive any cut of the bytes', async () => {
  for (const every of [1, 2, 3, 7, 64, 100_000]) {
    let onData = 0;
    const reply = await readChatStream(response(REPLY, every), () => onData++);
    assert.deepEqual(reply, {
      content: '{"category":"Café Planning ☕"}',
      finishReason: 'stop',
      usage: { promptTokens: 12, completionTokens: 7 },
    });
    assert.ok(onData >= 1, 'every arrival of bytes is reported (the idle timer hangs on it)');
  }
});

test('chat stream: CRLF line endings read as LF', async () => {
  const reply = await readChatStream(response(REPLY.replace(/\n/g, '\r\n'), 5), () => undefined);
  assert.equal(reply.content, '{"category":"Café Planning ☕"}');
  assert.equal(reply.finishReason, 'stop');
});

test('chat stream: nothing after [DONE] is read', async () => {
  const text = `${REPLY}data: ${chunk({ content: 'late' }, 'length')}\n\n`;
  const reply = await readChatStream(response(text, 16), () => undefined);
  assert.equal(reply.content, '{"category":"Café Planning ☕"}');
  assert.equal(reply.finishReason, 'stop');
});

test('chat stream: a stream that ends early has no finish reason', async () => {
  const cut = REPLY.slice(0, REPLY.indexOf('Planning'));
  const reply = await readChatStream(response(cut, 9), () => undefined);
  assert.equal(reply.finishReason, null, 'the caller reports the reply as incomplete');
});

test('chat stream: an error event after the 200 is the client APIError, retryable', async () => {
  const text = [
    `data: ${chunk({ content: '{"cat' })}`,
    `data: ${JSON.stringify({ error: { message: 'CUDA out of memory', type: 'server_error' } })}`,
    `data: ${chunk({ content: 'never' }, 'stop')}`,
    '',
  ].join('\n\n');
  const error = await readChatStream(response(text, 11), () => undefined).then(
    () => assert.fail('the error event must throw'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof OpenAI.APIError);
  assert.match(error.message, /CUDA out of memory/);
  const failure = toLlmFailure(error);
  assert.equal(failure.type, LLM_FAILURE_TYPES.unavailable);
  assert.equal(failure.nonRetryable, false);
});

test('chat stream: an event that is not JSON is a retryable invalid reply', async () => {
  const text = `data: ${chunk({ content: 'ok' })}\n\ndata: {"choices": [\n\n`;
  const error = await readChatStream(response(text, 4), () => undefined).then(
    () => assert.fail('a broken event must throw'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SyntaxError);
  const failure = toLlmFailure(error);
  assert.equal(failure.type, LLM_FAILURE_TYPES.invalidOutput);
  assert.equal(failure.nonRetryable, false);
});

test('chat stream: the first token is reported once, at the first content (a role-only event or a comment is not one)', async () => {
  for (const every of [1, 5, 100_000]) {
    const order: string[] = [];
    let bytes = 0;
    await readChatStream(
      response(REPLY, every),
      () => bytes++,
      () => order.push(`token after ${bytes} arrivals`),
    );
    assert.equal(order.length, 1);
  }
  const events: string[] = [];
  const roleOnly = [`data: ${chunk({ role: 'assistant', content: '' })}`, ': keep-alive', ''].join('\n\n');
  await readChatStream(
    response(roleOnly, 4),
    () => undefined,
    () => events.push('token'),
  );
  assert.equal(events.length, 0, 'no content yet: still waiting for the first token');
  const finishOnly = [`data: ${chunk({}, 'stop')}`, 'data: [DONE]', ''].join('\n\n');
  await readChatStream(
    response(finishOnly, 4),
    () => undefined,
    () => events.push('token'),
  );
  assert.deepEqual(events, ['token'], 'an empty reply ends its wait at the finish reason');
});

/**
 * A local HTTP server that sends `text` in pieces of `every` bytes, each written apart (so that they
 * arrive as separate chunks), and destroys the socket after `cutAfter` bytes when given.
 */
async function serve(
  text: string,
  every: number,
  options: { status?: number; headers?: Record<string, string>; cutAfter?: number } = {},
): Promise<{ url: string; connections(): number; close(): Promise<void> }> {
  const bytes = Buffer.from(text);
  let connections = 0;
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(options.status ?? 200, { 'content-type': 'text/event-stream', ...options.headers });
    let at = 0;
    const next = () => {
      if (options.cutAfter !== undefined && at >= options.cutAfter) return void res.socket?.destroy();
      if (at >= bytes.length) return void res.end();
      res.write(bytes.subarray(at, (at += every)), () => setImmediate(next));
    };
    next();
  });
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    connections: () => connections,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const overNode = (baseURL: string) => new OpenAI({ apiKey: 'k', baseURL, maxRetries: 0, fetch: nodeFetch });
const ask = (openai: OpenAI) =>
  openai.chat.completions
    .create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true })
    .asResponse();

test('chat stream: over node-fetch.ts, content, finish reason and usage survive any cut of the bytes', async () => {
  for (const every of [1, 3, 7, 100_000]) {
    const server = await serve(REPLY, every);
    try {
      const response = await ask(overNode(server.url));
      assert.ok(nodeBody(response), 'read from the Node stream, not the web body');
      let onData = 0;
      const reply = await readChatStream(response, () => onData++);
      assert.deepEqual(reply, {
        content: '{"category":"Café Planning ☕"}',
        finishReason: 'stop',
        usage: { promptTokens: 12, completionTokens: 7 },
      });
      assert.ok(onData >= (every === 1 ? 10 : 1), 'every arrival of bytes is reported');
    } finally {
      await server.close();
    }
  }
});

test('chat stream: over node-fetch.ts, a connection cut mid-reply is a retryable error', async () => {
  const server = await serve(REPLY, 5, { cutAfter: REPLY.indexOf('Planning') });
  try {
    const error = await readChatStream(await ask(overNode(server.url)), () => undefined).then(
      () => assert.fail('a cut connection must throw'),
      (e: unknown) => e,
    );
    const failure = toLlmFailure(error);
    assert.equal(failure.type, LLM_FAILURE_TYPES.unavailable);
    assert.equal(failure.nonRetryable, false);
  } finally {
    await server.close();
  }
});

test('chat stream: over node-fetch.ts, a non-2xx answer is the client error class with its headers', async () => {
  const body = JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error' } });
  const server = await serve(body, 4, {
    status: 429,
    headers: { 'content-type': 'application/json', 'retry-after': '3' },
  });
  try {
    const error = await ask(overNode(server.url)).then(
      () => assert.fail('a 429 must throw'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof OpenAI.RateLimitError);
    assert.match(error.message, /slow down/);
    assert.equal(error.headers?.get('retry-after'), '3');
  } finally {
    await server.close();
  }
});

test('chat stream: over node-fetch.ts, a reply read to its [DONE] leaves its connection for the next call', async () => {
  const server = await serve(REPLY, 16);
  try {
    const openai = overNode(server.url);
    for (let i = 0; i < 3; i++) {
      const response = await ask(openai);
      const message = nodeBody(response)!;
      const reply = await readChatStream(response, () => undefined);
      assert.equal(reply.finishReason, 'stop');
      // The body's last bytes may still be in flight: the socket is free once they were read.
      await waitFor(() => message.readableEnded, 10_000, 'the rest of the body');
    }
    assert.equal(server.connections(), 1);
  } finally {
    await server.close();
  }
});

/** A loopback server answering with `handler`, closed after `use` (given the client's base URL). */
async function withServer(handler: RequestListener, use: (baseURL: string) => Promise<void>): Promise<void> {
  const server = createServer(handler);
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** Reads a reply and waits for its last bytes, so that its connection goes back to the agent. */
async function readToEnd(response: Response) {
  const message = nodeBody(response)!;
  const socket = message.socket; // let go of by the message once it ends
  const reply = await readChatStream(response, () => undefined);
  await waitFor(() => message.readableEnded, 10_000, 'the rest of the body');
  return { reply, socket };
}

const failureOf = (call: Promise<unknown>, what: string) =>
  call.then(
    () => assert.fail(what),
    (e: unknown) => e,
  );

test('chat stream: over node-fetch.ts, a kept-alive connection the server drops as the next call goes out is replaced, and only a reused one', async () => {
  // As llama.cpp when its 5 s keep-alive ends just as the next request arrives: it closes without answering.
  const served = new WeakSet<object>();
  let answered = 0;
  let dropped = 0;
  let dropFresh = false;
  const handler: RequestListener = (req, res) => {
    req.resume();
    if (served.has(req.socket) || dropFresh) {
      dropped++;
      return void req.socket.destroy();
    }
    served.add(req.socket);
    answered++;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(REPLY);
  };
  await withServer(handler, async (baseURL) => {
    const openai = overNode(baseURL);
    for (let call = 1; call <= 3; call++)
      assert.equal((await readToEnd(await ask(openai))).reply.finishReason, 'stop', `call ${call}`);
    assert.deepEqual(
      { answered, dropped },
      { answered: 3, dropped: 2 },
      'calls 2 and 3 met a dropped socket',
    );
    // A new connection closed without an answer may have been read: that one is the caller's to retry.
    dropFresh = true;
    const error = await failureOf(ask(openai), 'a fresh connection dropped must throw');
    assert.equal(toLlmFailure(error).type, LLM_FAILURE_TYPES.unavailable);
    assert.equal(dropped, 4, 'the kept-alive connection, then one new one, and no more');
  });
});

test('chat stream: over node-fetch.ts, a kept-alive connection dropped after the server worked on the request is not sent again', async () => {
  // The server may have been paid for what it did before it dropped the connection: Temporal's retry, not ours.
  const served = new WeakSet<object>();
  let handled = 0;
  const handler: RequestListener = (req, res) => {
    req.resume();
    handled++;
    if (served.has(req.socket)) return void setTimeout(() => req.socket.destroy(), 300);
    served.add(req.socket);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(REPLY);
  };
  await withServer(handler, async (baseURL) => {
    const openai = overNode(baseURL);
    await readToEnd(await ask(openai));
    const error = await failureOf(ask(openai), 'a connection dropped after 300 ms must throw');
    assert.equal(toLlmFailure(error).type, LLM_FAILURE_TYPES.unavailable);
    assert.equal(handled, 2, 'the second request was handled once');
  });
});

test("chat stream: over node-fetch.ts, an idle kept-alive connection is closed before the server's Keep-Alive timeout", async () => {
  const handler: RequestListener = (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'keep-alive': 'timeout=2' });
    res.end(REPLY);
  };
  await withServer(handler, async (baseURL) => {
    const { socket } = await readToEnd(await ask(overNode(baseURL)));
    // Node closes it a second before the hint; the server itself would keep it for a minute.
    await waitFor(() => socket.destroyed, 20_000, 'the idle connection closed by the client');
  });
});
