/**
 * The streamed-completion reader, fed byte chunks cut at awkward places: what it keeps, where it
 * stops, and which errors it raises (they decide whether Temporal tries again; see errors.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { readChatStream } from '../../src/activities/chat-stream';
import { LLM_FAILURE_TYPES, toLlmFailure } from '../../src/activities/errors';

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
