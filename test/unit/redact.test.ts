import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import { toLlmFailure } from '../../src/activities/errors';
import { preflightEndpoint } from '../../src/client/preflight';
import { redact, REDACTED } from '../../src/shared/redact';

describe('redact', () => {
  test('redact: credentials in URLs, query strings, headers and key shapes are replaced', () => {
    const cases: [string, string][] = [
      ['cannot reach https://user:hunter2@llm.example.com/v1', 'hunter2'],
      ['GET http://tok3n@host:8080/x failed', 'tok3n'],
      ['https://api.example.com/v1?api_key=abc123secret&model=x', 'abc123secret'],
      ['https://x.test/v1?foo=1&access_token=ya29.secretvalue', 'ya29.secretvalue'],
      ['Authorization: Bearer sk-live-0123456789abcdef', 'sk-live-0123456789abcdef'],
      ['Incorrect API key provided: sk-proj-AbCdEf0123456789xyz', 'sk-proj-AbCdEf0123456789xyz'],
      ['{"api_key": "abcdef-123456"}', 'abcdef-123456'],
      ['x-api-key: zzzzzzzzzz', 'zzzzzzzzzz'],
    ];
    for (const [input, secret] of cases) {
      const out = redact(input);
      assert.ok(!out.includes(secret), `${input} → ${out}`);
      assert.ok(out.includes(REDACTED), out);
    }
    const harmless = 'LLM endpoint error (500): upstream overloaded at https://llm.example.com/v1/chat';
    assert.equal(redact(harmless), harmless, 'text without secrets is untouched');
    assert.equal(redact('Bearer [redacted]'), 'Bearer [redacted]');
  });

  test('redact: LLM failures carry no credentials in message, cause or stack', () => {
    const error = new OpenAI.APIConnectionError({
      message: 'connect ECONNREFUSED for https://bob:s3cr3tpass@llm.internal/v1?api_key=k-123456789',
    });
    const failure = toLlmFailure(error);
    const everything = [failure.message, failure.stack, failure.cause?.message, failure.cause?.stack].join(
      '\n',
    );
    assert.ok(!everything.includes('s3cr3tpass'), everything);
    assert.ok(!everything.includes('k-123456789'), everything);
    assert.match(failure.message, /cannot reach the LLM endpoint/);
    assert.equal(failure.cause?.name, error.name);
    assert.equal(error.message.includes('s3cr3tpass'), true, 'the original error is left as it was');
  });

  test('redact: an unreachable endpoint whose URL holds a password is reported without it', async () => {
    const openai = new OpenAI({
      apiKey: 'sk-unit-0123456789',
      baseURL: 'http://bob:pw-s3cr3t@127.0.0.1:1/v1',
      maxRetries: 0,
    });
    await assert.rejects(preflightEndpoint(openai, 'm', 2_000), (error: Error) => {
      assert.match(error.message, /^--base-url: cannot reach http:\/\/\[redacted\]@127\.0\.0\.1:1\/v1/);
      assert.ok(!error.message.includes('pw-s3cr3t'));
      return true;
    });
  });
});
