/**
 * OpenTelemetry traces of a real run: `generate` (embedded dev server and worker) with the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT pointing at a small OTLP/HTTP receiver on 127.0.0.1. The run, its
 * intents, each activity and each HTTP call to the endpoint arrive as spans of one trace, and no span
 * carries prompt text, reply text or the key.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../helpers/cli';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { readDialogues } from '../helpers/output';
import { tempDir } from '../helpers/temporal';
import { startLlmServer, type LlmServer } from '../llm-server/server';

const API_KEY = 'sk-test-tracing-key-0123456789';
let llm: LlmServer;
let receiver: OtlpReceiver;

before(async () => {
  // Some calls fail (bad replies, 500s) and are retried: their spans record the failures.
  llm = await startLlmServer({
    apiKey: API_KEY,
    recordRequests: 200,
    latency: { meanMs: 10 },
    faults: { wrongCount: 0.2, serverError: 0.1 },
  });
  receiver = await startOtlpReceiver();
});
after(async () => {
  await receiver?.close();
  await llm?.close();
});

test('tracing: a run, its intents, activities and HTTP calls arrive as one trace without prompt or reply text', async () => {
  const out = join(await tempDir('cc-tracing-'), 'run');
  const r = await runCli(
    [
      'generate',
      '--out',
      out,
      '--intents',
      'transaction,educational',
      '--dialogs-per-intent',
      '2',
      '--turns',
      '2',
    ],
    {
      OPENAI_API_KEY: API_KEY,
      OPENAI_BASE_URL: llm.url,
      OPENAI_MODEL: 'test-model',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'cc-tracing-test',
    },
  );
  assert.equal(r.code, 0, r.stderr);
  // generate flushes its spans before it exits: everything is here once it has.
  const names = receiver.spans.map((s) => s.name);
  const count = (name: string) => names.filter((n) => n === name).length;
  const [start] = receiver.spans.filter((s) => s.name === 'StartWorkflow:consistentChatRun');
  assert.ok(start, `the client's start of the run is a span: ${[...new Set(names)].join(', ')}`);
  assert.equal(count('RunWorkflow:consistentChatRun'), 1);
  assert.equal(count('StartChildWorkflow:consistentChatIntent'), 2);
  assert.ok(count('RunWorkflow:consistentChatIntent') >= 2);
  assert.ok(count('RunActivity:generateSkeleton') >= 4);
  assert.ok(count('RunActivity:generateResponses') >= 4);
  assert.ok(count('RunActivity:storeDialogues') >= 1);
  const { skeleton, responses } = llm.stats().stages;
  assert.equal(count('llm.http'), skeleton + responses, 'one span per HTTP call to the endpoint');
  // One trace, rooted at the start, each HTTP call inside its activity.
  const others = receiver.spans.filter((s) => s.traceId !== start.traceId).map((s) => s.name);
  assert.ok(others.length === 0, [...new Set(others)].join(', '));
  const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
  for (const span of receiver.spans.filter((s) => s.name === 'llm.http')) {
    assert.match(byId.get(span.parentSpanId ?? '')?.name ?? '', /^RunActivity:generate(Skeleton|Responses)$/);
    assert.match(String(span.attributes['llm.stage']), /^(skeleton|responses)$/);
  }
  // Nothing of what was said: prompts sent, replies stored, the key.
  const text = receiver.bodies.join('\n');
  const said = [
    ...llm.received().flatMap((req) => req.messages.map((m) => m.content)),
    ...(await readDialogues(out)).flatMap((d) => d.conversation.map((t) => t.value)),
  ];
  assert.ok(said.length > 0);
  for (const content of said)
    for (const line of content.split('\n').filter((l) => l.trim().length >= 24))
      assert.ok(
        !text.includes(JSON.stringify(line.trim()).slice(1, -1)),
        `a span carries ${JSON.stringify(line)}`,
      );
  assert.doesNotMatch(text, new RegExp(API_KEY));
  // Failures keep their type, not their text (a reply check's message quotes the reply).
  const exceptions = receiver.spans.flatMap((s) => s.events.filter((e) => e.name === 'exception'));
  assert.ok(exceptions.length > 0, 'failed attempts recorded');
  for (const e of exceptions) assert.deepEqual(Object.keys(e.attributes), ['exception.type']);
  assert.ok(receiver.spans.every((s) => !s.status?.message));
  assert.match(text, /cc-tracing-test/, 'OTEL_SERVICE_NAME names the service');
});

test('tracing: an OTLP protocol other than HTTP is one line naming the variable, exit 2', async () => {
  const out = join(await tempDir('cc-tracing-bad-'), 'run');
  const r = await runCli(
    ['generate', '--out', out, '--intents', 'transaction', '--dialogs-per-intent', '1'],
    {
      OPENAI_API_KEY: API_KEY,
      OPENAI_BASE_URL: llm.url,
      OPENAI_MODEL: 'test-model',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    },
  );
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^error: OTEL_EXPORTER_OTLP_PROTOCOL: only http\/protobuf and http\/json/);
});
