/** The client's one polling loop: progress for `generate`, and for `judge DIR`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pollUntilStopped } from '../../src/client/poll';

test('poll: ticks at once, and stop() ends the pause between ticks instead of waiting it out', async () => {
  let ticks = 0;
  let first!: () => void;
  const firstTick = new Promise<void>((resolve) => (first = resolve));
  // A pause no run of this test waits for: if stop() did not cut it short, the test would time out.
  const poller = pollUntilStopped(24 * 60 * 60_000, () => {
    ticks += 1;
    first();
    return Promise.resolve();
  });
  await firstTick;
  await poller.stop();
  assert.equal(ticks, 1);
});

test('poll: a tick that throws is skipped and the loop goes on', async () => {
  let calls = 0;
  let thirdCall!: () => void;
  const third = new Promise<void>((resolve) => (thirdCall = resolve));
  const poller = pollUntilStopped(1, () => {
    calls += 1;
    if (calls === 3) thirdCall();
    return calls < 3 ? Promise.reject(new Error('the run is completing')) : Promise.resolve();
  });
  await third;
  await poller.stop();
  assert.ok(calls >= 3);
});

test('poll: a tick running when stop() is called is finished, not cut off', async () => {
  let release!: () => void;
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let finished = false;
  const poller = pollUntilStopped(1, async () => {
    started();
    await new Promise<void>((resolve) => (release = resolve));
    finished = true;
  });
  await running;
  const stopped = poller.stop();
  release();
  await stopped;
  assert.equal(finished, true);
});
