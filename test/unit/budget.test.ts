import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateController } from '../../src/activities/rate-control';
import { HISTORY_BUDGET } from '../../src/shared/constants';
import {
  hasRoomForAnother,
  MAX_WINDOW_PER_WORKFLOW,
  splitConcurrency,
  storeBatchLength,
  utf8Bytes,
} from '../../src/workflows/budget';

test('budget: concurrency is split across intents, summing to the total', () => {
  const shares = splitConcurrency(16, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
  assert.equal(
    [...shares.values()].reduce((a, b) => a + b, 0),
    16,
  );
  assert.ok([...shares.values()].every((s) => s === 1 || s === 2));
  assert.deepEqual([...splitConcurrency(3, ['a', 'b', 'c', 'd']).values()], [1, 1, 1, 0]);
  assert.equal(splitConcurrency(1000, ['a']).get('a'), MAX_WINDOW_PER_WORKFLOW);
});

test('budget: a workflow stops taking dialogues before in-flight ones could overrun the history bounds', () => {
  const fresh = {
    historyLength: 10,
    historySize: 2_000,
    continueAsNewSuggested: false,
    finishedThisRun: 0,
    baseSize: 2_000,
  };
  assert.equal(hasRoomForAnother(fresh, 0), true);
  assert.equal(hasRoomForAnother({ ...fresh, continueAsNewSuggested: true }, 0), false);
  assert.equal(hasRoomForAnother({ ...fresh, historyLength: HISTORY_BUDGET.maxEvents - 10 }, 0), false);
  // A full window in flight must still fit: the projection counts every in-flight dialogue.
  assert.equal(
    hasRoomForAnother({ ...fresh, historyLength: HISTORY_BUDGET.maxEvents - 100 * 20 }, 100),
    false,
  );
  assert.equal(hasRoomForAnother({ ...fresh, historySize: HISTORY_BUDGET.maxBytes - 1000 }, 0), false);
  // Measured bytes per dialogue replace the initial guess once enough dialogues finished.
  const measured = { ...fresh, finishedThisRun: 100, historySize: 2_000 + 100 * 60_000 };
  assert.equal(hasRoomForAnother(measured, 40), false);
});

test('rate control: a requests/min budget spaces calls out', async () => {
  const rate = new RateController();
  rate.configure({ requestsPerMinute: 600 }); // 10 per second, burst of 10
  const signal = new AbortController().signal;
  const started = Date.now();
  for (let i = 0; i < 15; i++) await rate.acquire(1, signal, () => undefined);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 350, `15 calls at 10/s with a burst of 10 took only ${elapsed} ms`);
});

test('rate control: an occasional 429 holds back no sibling; dense 429s hold every caller', async () => {
  const rate = new RateController();
  rate.configure({});
  const signal = new AbortController().signal;
  for (let i = 0; i < 49; i++) rate.succeeded();
  rate.coolDown(5_000); // one 429 in 50 calls: the failing call waits on its own
  // `acquire` calls its wait callback each time it has to wait: none at all means no hold-back.
  let waits = 0;
  await rate.acquire(1, signal, () => waits++);
  assert.equal(waits, 0, 'the sibling did not wait');
  // Timed from before the 429s, so a stall between them and the call cannot shorten the wait seen.
  const started = Date.now();
  for (let i = 0; i < 20; i++) rate.coolDown(300); // now most recent calls were refused
  await rate.acquire(1, signal, () => waits++);
  assert.ok(Date.now() - started >= 250);
  assert.ok(waits >= 1, 'waiting callers heartbeat');
  assert.equal(rate.rateLimitedCount, 21);
});

test('rate control: random 429s at 6% of calls, unrelated to the rate, never slow the process', async () => {
  const rate = new RateController();
  rate.configure({});
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let refused = 0;
  for (let i = 0; i < 5_000; i++) {
    if (random() < 0.06) {
      rate.coolDown(1_000);
      refused++;
    } else rate.succeeded();
  }
  assert.ok(refused > 250, `${refused} random 429s`);
  assert.equal(rate.currentPace, undefined, 'no process-wide pace');
  let waits = 0;
  await rate.acquire(1, new AbortController().signal, () => waits++);
  assert.equal(waits, 0, 'no process-wide cool-down');
});

test('rate control: cancellation interrupts a wait', async () => {
  const rate = new RateController();
  rate.configure({});
  for (let i = 0; i < 50; i++) rate.coolDown(10_000);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('cancelled')), 50);
  await assert.rejects(
    rate.acquire(1, controller.signal, () => undefined),
    /cancelled/,
  );
});

test('rate control: after dense 429s the pace starts below what the endpoint accepted and paces calls', async () => {
  const rate = new RateController();
  rate.configure({});
  for (let i = 0; i < 10; i++) rate.succeeded(); // 10 accepted within the last second
  for (let i = 0; i < 40; i++) rate.coolDown(0); // then the endpoint pushes back hard
  const pace = rate.currentPace!;
  assert.ok(pace > 7 && pace < 10, `pace ${pace}/s`);
  const signal = new AbortController().signal;
  const started = Date.now();
  for (let i = 0; i < 6; i++) await rate.acquire(1, signal, () => undefined);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 450, `6 calls at ${pace.toFixed(1)}/s took ${elapsed} ms`);
  for (let i = 0; i < 100; i++) rate.succeeded();
  assert.ok(rate.currentPace! > pace, 'the pace grows back while 429s are rare');
});

test('budget: utf8Bytes matches Buffer.byteLength, surrogate pairs and 3-byte characters included', () => {
  for (const text of [
    '',
    'plain',
    'é',
    '語'.repeat(10),
    '😀 smile',
    'a\u0000b',
    '\ud83d',
    'x\udc00\ud83dy',
  ]) {
    assert.equal(utf8Bytes(text), Buffer.byteLength(text), JSON.stringify(text));
  }
});

test('budget: a storage batch stops at its byte bound, but always takes one record', () => {
  const mb = 1024 * 1024;
  assert.equal(storeBatchLength([600_000, 600_000, 600_000], 50, mb), 1);
  assert.equal(storeBatchLength([300_000, 300_000, 300_000, 300_000], 50, mb), 3);
  assert.equal(storeBatchLength([3 * mb], 50, mb), 1);
  assert.equal(storeBatchLength(Array(80).fill(100), 50, mb), 50);
  assert.equal(storeBatchLength([], 50, mb), 0);
});
