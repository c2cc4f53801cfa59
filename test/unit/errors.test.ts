import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import OpenAI from 'openai';
import { LLM_FAILURE_TYPES, retryAfterMs, toLlmFailure } from '../../src/activities/errors';

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
