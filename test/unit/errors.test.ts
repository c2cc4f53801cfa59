import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import OpenAI from 'openai';
import { LLM_FAILURE_TYPES, retryAfterMs, toLlmFailure } from '../../src/activities/errors';
import { nodeFetch } from '../../src/activities/node-fetch';

const apiError = (status: number, headers: Record<string, string> = {}) =>
  OpenAI.APIError.generate(
    status,
    { error: { message: `status ${status}` } },
    undefined,
    new Headers(headers),
  );

test('errors: 429 is retryable with the next delay from retry-after', () => {
  const failure = toLlmFailure(apiError(429, { 'retry-after': '7' }));
  assert.equal(failure.type, LLM_FAILURE_TYPES.rateLimit);
  assert.equal(failure.nonRetryable, false);
  assert.equal(failure.nextRetryDelay, 7000);
  assert.ok(failure.cause instanceof OpenAI.RateLimitError);
});

test('errors: retry-after-ms wins over retry-after, and HTTP dates are understood', () => {
  assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' })), 250);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now), 5000);
  assert.equal(retryAfterMs(new Headers({})), undefined);
});

test('errors: 401 and 403 are non-retryable auth failures', () => {
  for (const status of [401, 403]) {
    const failure = toLlmFailure(apiError(status));
    assert.equal(failure.type, LLM_FAILURE_TYPES.auth);
    assert.equal(failure.nonRetryable, true);
  }
});

test('errors: 400, 404 (unknown model) and 422 are non-retryable bad requests', () => {
  for (const status of [400, 404, 422]) {
    const failure = toLlmFailure(apiError(status));
    assert.equal(failure.type, LLM_FAILURE_TYPES.badRequest, String(status));
    assert.equal(failure.nonRetryable, true);
  }
});

test('errors: 5xx, timeouts and connection errors are retryable', () => {
  for (const error of [
    apiError(500),
    apiError(502),
    apiError(503),
    new OpenAI.APIConnectionTimeoutError(),
    new OpenAI.APIConnectionError({ message: 'refused' }),
  ]) {
    const failure = toLlmFailure(error);
    assert.equal(failure.type, LLM_FAILURE_TYPES.unavailable);
    assert.equal(failure.nonRetryable, false);
  }
});

test('errors: bad JSON is retryable invalid output; existing failures pass through', () => {
  assert.equal(toLlmFailure(new SyntaxError('Unexpected token')).type, LLM_FAILURE_TYPES.invalidOutput);
  const original = ApplicationFailure.create({ type: 'Llm.InvalidOutput', message: 'x' });
  assert.equal(toLlmFailure(original), original);
});

const openAiError = (status: number, message: string, code: string | null = null) =>
  OpenAI.APIError.generate(status, { error: { message, code } }, undefined, new Headers());

test('errors: 413 and context-length 400s are non-retryable Llm.ContextLength', () => {
  for (const error of [
    openAiError(413, 'Request entity too large'),
    openAiError(400, "This model's maximum context length is 4096 tokens", 'context_length_exceeded'),
    openAiError(400, 'the request exceeds the available context size, try increasing it'),
  ]) {
    const failure = toLlmFailure(error);
    assert.equal(failure.type, LLM_FAILURE_TYPES.contextLength, error.message);
    assert.equal(failure.nonRetryable, true);
  }
});

test('errors: a content-policy 400 is a non-retryable Llm.ContentPolicy, apart from systemic bad requests', () => {
  for (const error of [
    openAiError(
      400,
      'Your request was rejected as a result of our safety system.',
      'content_policy_violation',
    ),
    openAiError(
      400,
      "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
      'content_filter',
    ),
  ]) {
    const failure = toLlmFailure(error);
    assert.equal(failure.type, LLM_FAILURE_TYPES.contentPolicy, error.message);
    assert.equal(failure.nonRetryable, true);
  }
  assert.equal(
    toLlmFailure(openAiError(404, 'The model `x` does not exist', 'model_not_found')).type,
    LLM_FAILURE_TYPES.badRequest,
  );
});

/** A loopback server whose every request gets `reply`; closed after `use`. */
async function withServer(
  reply: (req: IncomingMessage, res: ServerResponse) => void,
  use: (url: string) => Promise<void>,
): Promise<void> {
  const server = createServer(reply);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** What a call through the real openai client with this `fetch` throws. */
async function clientError(baseURL: string, fetch?: typeof globalThis.fetch): Promise<unknown> {
  const client = new OpenAI({ apiKey: 'sk-test', baseURL, maxRetries: 0, ...(fetch && { fetch }) });
  return client.models.list().then(
    () => assert.fail('the call succeeded'),
    (error: unknown) => error,
  );
}

const assertRetryable = (error: unknown, what: string) => {
  const failure = toLlmFailure(error);
  assert.equal(failure.nonRetryable, false, `${what}: ${String(error)}`);
  assert.notEqual(failure.type, LLM_FAILURE_TYPES.localFault, what);
};

const assertLocalFault = (error: unknown, what: string) => {
  const failure = toLlmFailure(error);
  assert.equal(failure.type, LLM_FAILURE_TYPES.localFault, `${what}: ${String(error)}`);
  assert.equal(failure.nonRetryable, true, what);
};

test("errors: the worker's own TypeErrors and the like are non-retryable Llm.LocalFault, thrown directly or inside fetch", async () => {
  const undef = undefined as unknown as { x: number };
  assertLocalFault(
    (() => {
      try {
        return undef.x;
      } catch (error) {
        return error;
      }
    })(),
    'reading a property of undefined',
  );
  assertLocalFault(new RangeError('index 9 of 3'), 'a RangeError');
  // Node's own argument checks: a TypeError with a code that is not the network's.
  assertLocalFault(
    (() => {
      try {
        return Buffer.from(undefined as unknown as string);
      } catch (error) {
        return error;
      }
    })(),
    'ERR_INVALID_ARG_TYPE',
  );
  // The past endless retry: the client's fetch refused the upload's body; the client wraps that in an
  // APIConnectionError, whose cause is our TypeError.
  const refused = await clientError('http://127.0.0.1:9/v1', () =>
    Promise.reject(new TypeError('fetch: this request body type is not supported')),
  );
  assert.ok(refused instanceof OpenAI.APIConnectionError);
  assertLocalFault(refused, 'a TypeError inside fetch');
});

test('errors: network failures of undici and node:http stay retryable, TypeErrors among them', async () => {
  // Nothing listens: undici's "TypeError: fetch failed" (cause ECONNREFUSED), wrapped by the client.
  let closedPort = '';
  await withServer(
    (_req, res) => res.end(),
    (url) => Promise.resolve(void (closedPort = url)),
  );
  assertRetryable(await clientError(closedPort), 'connection refused through the global fetch');
  assertRetryable(await clientError(closedPort, nodeFetch), 'connection refused through nodeFetch');
  const cutBody = (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"data": [');
    setTimeout(() => res.socket?.destroy(), 20);
  };
  await withServer(cutBody, async (url) => {
    // A body cut mid-way: undici says "TypeError: terminated" (cause UND_ERR_SOCKET) as the client reads it.
    const viaUndici = await clientError(url);
    assert.ok(viaUndici instanceof TypeError, String(viaUndici));
    assertRetryable(viaUndici, 'a body cut mid-way, read through undici');
    assertRetryable(await clientError(url, nodeFetch), 'a body cut mid-way, read through nodeFetch');
  });
  // A connection closed before any answer: node:http's "socket hang up" (ECONNRESET).
  await withServer(
    (req) => req.socket.destroy(),
    async (url) => {
      assertRetryable(await clientError(url, nodeFetch), 'socket hang up through nodeFetch');
      assertRetryable(await clientError(url), 'connection reset through the global fetch');
    },
  );
  assertRetryable(
    new TypeError('fetch failed', { cause: Object.assign(new Error('read'), { code: 'ETIMEDOUT' }) }),
    'fetch failed, timed out',
  );
});
