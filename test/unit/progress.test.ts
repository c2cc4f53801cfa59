import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createProgressView, formatStats, progressStats } from '../../src/client/progress';
import type { IntentProgress, RunProgress } from '../../src/shared/schemas';

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
