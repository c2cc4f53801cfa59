import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Client } from '@temporalio/client';
import { readProgress, ReportAges } from '../../src/client/generate';
import { createProgressView, formatStats, progressStats } from '../../src/client/progress';
import { MIN_REPORT_INTERVAL_MS } from '../../src/workflows/intent';
import type { IntentProgress, RunProgress } from '../../src/run/schemas';

const intent = (over: Partial<IntentProgress>): IntentProgress => ({
  intent: 'transaction',
  planned: 100,
  written: 0,
  failed: 0,
  inFlight: 0,
  tokens: { prompt: 0, completion: 0 },
  llmCalls: 0,
  paused: false,
  concurrency: 4,
  status: 'running',
  continuedAsNew: 0,
  ...over,
});
const run = (intents: IntentProgress[]): RunProgress => ({
  runId: 'r1',
  outDir: '/tmp/r1',
  model: 'm',
  paused: false,
  concurrency: 8,
  intents,
});

test('progress: rate and ETA count only what finished since following began', () => {
  const p = run([
    intent({ written: 30, failed: 2, inFlight: 3 }),
    intent({ intent: 'educational', written: 8, inFlight: 5 }),
  ]);
  // 10 were done before; 30 more in 2 minutes = 15/min; 160 left → ETA 10m40s.
  const stats = progressStats(p, 0, 10, 120_000);
  assert.equal(stats.done, 40);
  assert.equal(stats.planned, 200);
  assert.equal(stats.inFlight, 8);
  assert.equal(stats.perMinute, 15);
  assert.equal(stats.etaMs, 640_000);
  assert.equal(formatStats(stats), 'elapsed 2m00s · 15/min · ETA 10m40s · 8 in flight');
  assert.equal(progressStats(p, 0, 40, 120_000).etaMs, undefined, 'no ETA before anything finished');
});

test('progress: dialogues in LLM stages beyond the run concurrency are shown waiting, not in flight', () => {
  // Intents schedule calls beyond their share; those wait in the worker's gate, not at the endpoint.
  const p = run([
    intent({ written: 1, inFlight: 9 }),
    intent({ intent: 'educational', written: 1, inFlight: 7 }),
  ]);
  const stats = progressStats(p, 0, 0, 60_000);
  assert.equal(stats.inFlight, 8, 'at most the run concurrency (8) at the endpoint');
  assert.equal(stats.waiting, 8);
  assert.match(formatStats(stats), / · 8 in flight, 8 waiting$/);
});

test('progress: a run with a judge shows the mean score so far over its intents', () => {
  const tally = (scores: Record<number, number>) => ({
    judged: Object.values(scores).reduce((a, b) => a + b, 0),
    failed: 0,
    scores: Array.from({ length: 10 }, (_, i) => scores[i + 1] ?? 0),
    flags: {},
  });
  const p = run([
    intent({ written: 3, judge: tally({ 8: 2, 5: 1 }) }),
    intent({ intent: 'educational', written: 1, judge: tally({ 10: 1 }) }),
  ]);
  assert.match(formatStats(progressStats(p, 0, 0, 60_000)), / · judge 7\.8 \(4 scored\)$/);
  assert.doesNotMatch(formatStats(progressStats(run([intent({ written: 3 })]), 0, 0, 60_000)), /judge/);
});

test('progress: the non-TTY line and the TTY bars show elapsed, rate, ETA and calls in flight', () => {
  for (const isTTY of [false, true]) {
    const stream = Object.assign(new PassThrough(), {
      isTTY,
      columns: 200,
      cursorTo: () => true,
      clearLine: () => true,
      moveCursor: () => true,
    });
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    const view = createProgressView(stream as unknown as NodeJS.WriteStream);
    view.update(run([intent({ written: 1, inFlight: 2 })]));
    view.stop();
    assert.match(text, /elapsed \d+s · [\d.]+\/min · ETA (\?|\S+) · 2 in flight/, `isTTY ${isTTY}: ${text}`);
  }
});

/** A client whose run and intents answer their progress queries with what `answers` holds now. */
function fakeClient(answers: { run: RunProgress; intents: Record<string, IntentProgress> }) {
  const asked: string[] = [];
  const client = {
    workflow: {
      getHandle: (id: string) => ({
        query: () => {
          asked.push(id);
          return Promise.resolve(id === 'r1' ? answers.run : answers.intents[id.split('.')[1]!]);
        },
      }),
    },
  };
  return { client: client as unknown as Client, asked };
}

test('progress: intents are asked directly when the run is paused or their last report is old', async (t) => {
  // The run holds the last report (3 written, 1 in flight); the intent itself has moved on.
  const reported = intent({ written: 3, inFlight: 1, llmCalls: 7 });
  const own = intent({ written: 4, inFlight: 0, llmCalls: 8, paused: true });
  const answers = { run: { ...run([reported]), paused: true }, intents: { transaction: own } };
  const { client, asked } = fakeClient(answers);

  // Paused: no more reports will come, so the intent is asked, by status and the view alike.
  assert.deepEqual((await readProgress(client, 'r1')).intents, [own]);
  assert.deepEqual((await readProgress(client, 'r1', new ReportAges())).intents, [own]);

  // Running: a fresh report serves, one older than the reporting interval does not.
  answers.run = run([reported]);
  answers.intents.transaction = { ...own, paused: false };
  t.mock.timers.enable({ apis: ['Date'], now: 0 });
  const ages = new ReportAges();
  await readProgress(client, 'r1', ages); // first sight: its age is unknown, so the intent is asked
  asked.length = 0;
  t.mock.timers.tick(MIN_REPORT_INTERVAL_MS - 1);
  assert.deepEqual((await readProgress(client, 'r1', ages)).intents, [reported]);
  assert.deepEqual(asked, ['r1'], 'one query while reports are fresh');
  t.mock.timers.tick(1);
  assert.deepEqual((await readProgress(client, 'r1', ages)).intents, [answers.intents.transaction]);
  assert.deepEqual(asked, ['r1', 'r1', 'r1.transaction']);
});
