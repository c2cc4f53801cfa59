import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli';
import { packageMessages, type Message } from '../helpers/messages';
import { redact, REDACTED } from '../../src/shared/redact';

// The redaction's own patterns are not messages.
const MESSAGES = packageMessages(['shared/redact.ts']);

/** Values a message may carry, each with the secrets inside it. */
const SECRET_VALUES: readonly { value: string; secrets: string[] }[] = [
  { value: 'https://bob:pw-Hunter2x@llm.example/v1', secrets: ['pw-Hunter2x'] },
  { value: 'sk-proj-Ab12Cd34Ef56Gh78', secrets: ['Ab12Cd34Ef56Gh78'] },
  {
    value: '{"refresh_token": "rt-Zz9Yy8Xx7", "token": "tk-Qq1Ww2Ee3", "max_tokens": 800}',
    secrets: ['rt-Zz9Yy8Xx7', 'tk-Qq1Ww2Ee3'],
  },
  {
    value: 'https://auth.example/cb?token=qpTok3nValue&refresh_token=qpR3freshValue&model=m',
    secrets: ['qpTok3nValue', 'qpR3freshValue'],
  },
  { value: 'Authorization: Bearer eyJhbGciOi.J9xPayload', secrets: ['eyJhbGciOi.J9xPayload'] },
  { value: 'OPENAI_API_KEY=envS3cretKey', secrets: ['envS3cretKey'] },
  { value: "{'api_key': 'ak-Plain-Key-42'}", secrets: ['ak-Plain-Key-42'] },
];

// A value is its own word in a message: "run ${id}d" with an id glued to prose is never a secret's place.
const fill = (message: Message, value: string) => message.parts.join(` ${value} `);

/** Whether `parts` appear in `text` in order, each whole. */
function keepsParts(text: string, parts: string[]): boolean {
  let at = 0;
  for (const part of parts) {
    const found = text.indexOf(part, at);
    if (found < 0) return false;
    at = found + part.length;
  }
  return true;
}

describe('redact over every message', () => {
  test('redact: the package has messages to check', () => {
    // Guards the collection itself: a broken walk over src/ would pass every test below.
    assert.ok(MESSAGES.length > 500, `${MESSAGES.length} messages`);
    assert.ok(MESSAGES.some((m) => fill(m, 'x').startsWith('OPENAI_API_KEY: is set but empty')));
  });

  test('redact: no message of the package is changed when it carries no secret', () => {
    const changed: string[] = [];
    for (const message of MESSAGES)
      for (const value of ['value', '42', '/tmp/run-1/dialogs.jsonl', 'three plain words']) {
        const text = fill(message, value);
        if (redact(text) !== text) changed.push(`${message.where}: ${text} → ${redact(text)}`);
      }
    assert.deepEqual(changed, []);
  });

  test('redact: every message loses the secrets put in it and keeps its own words', () => {
    const leaks: string[] = [];
    for (const message of MESSAGES.filter((m) => m.parts.length > 1))
      for (const { value, secrets } of SECRET_VALUES) {
        const text = fill(message, value);
        const out = redact(text);
        if (secrets.some((s) => out.includes(s)) || !out.includes(REDACTED))
          leaks.push(`${message.where}: secret left in ${out}`);
        if (!keepsParts(out, message.parts)) leaks.push(`${message.where}: words lost in ${out}`);
      }
    assert.deepEqual(leaks, []);
  });

  test('redact: token and refresh_token are redacted as JSON fields and query parameters', () => {
    assert.equal(
      redact('{"token": "abc", "refresh_token":"def", "max_tokens": 800}'),
      '{"token": "[redacted]", "refresh_token":"[redacted]", "max_tokens": 800}',
    );
    assert.equal(
      redact('GET /cb?refresh_token=abc&token=def&model=m'),
      'GET /cb?refresh_token=[redacted]&token=[redacted]&model=m',
    );
    assert.equal(redact('OPENAI_API_KEY=hunter'), 'OPENAI_API_KEY=[redacted]');
    assert.equal(redact('x-api-key: zzzzzzzzzz'), 'x-api-key: [redacted]');
    assert.equal(redact('api_key: Xy7_abcdef was refused'), 'api_key: [redacted] was refused');
  });

  test('redact: prose after a secret-like name stays', () => {
    for (const prose of [
      'OPENAI_API_KEY: is set but empty: set the key',
      'OPENAI_API_KEY: no LLM endpoint configured',
      'codec server on http://127.0.0.1:1 (bearer token required)',
      'Bearer tokens are sent by the UI',
    ])
      assert.equal(redact(prose), prose);
  });

  test('redact: the CLI prints an empty key error with its words', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cc-redact-'));
    try {
      const result = await runCli(['generate', '--out', join(dir, 'out'), '--model', 'm'], {
        OPENAI_API_KEY: '',
        OPENAI_BASE_URL: '',
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^error: OPENAI_API_KEY: is set but empty: set the key/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
