/**
 * The stall detector's arithmetic, on timings given by hand (no clock): the ceiling until it has learnt,
 * then `clamp(factor × p99, floor, ceiling)`, a longer allowance for a longer prompt, and calls cut as
 * stalled teaching it nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallWatch, StallDetector, StallError } from '../../src/activities/stall-detector';

const CEILING = 90_000;

/** One completed call: first token after `first` ms, then chunks `gap` ms apart. */
function call(detector: StallDetector, first: number, gap: number, promptTokens = 500, chunks = 5) {
  const timings = detector.timings('http://endpoint/v1', 'm');
  const watch = new CallWatch(timings, promptTokens, CEILING, 0);
  let now = first;
  watch.data(now);
  watch.firstToken(now);
  for (let i = 0; i < chunks; i++) watch.data((now += gap));
  watch.finish(now);
}

test('stall detector: the ceiling applies until enough calls were seen', () => {
  const detector = new StallDetector({ minSamples: 5 });
  const timings = detector.timings('http://endpoint/v1', 'm');
  for (let i = 0; i < 4; i++) call(detector, 1_000, 50);
  assert.equal(timings.firstTokenLimitMs(500, CEILING), undefined);
  assert.equal(timings.gapLimitMs(CEILING), undefined);
  const watch = new CallWatch(timings, 500, CEILING, 0);
  assert.equal(watch.deadline(), CEILING, 'unlearnt: the fixed idle timeout');
  assert.equal(watch.check(CEILING - 1), undefined);
  assert.ok(watch.check(CEILING) instanceof StallError);
  call(detector, 1_000, 50);
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 3_000);
});

test('stall detector: the limit is factor × p99 of recent calls, within the floor and the ceiling', () => {
  const detector = new StallDetector({ minSamples: 10, factor: 3, floorMs: 2_000 });
  const timings = detector.timings('http://endpoint/v1', 'm');
  // 99 calls at 1 s and one at 1.8 s: p99 (nearest rank) of 100 is the 99th value, 1 s.
  for (let i = 0; i < 99; i++) call(detector, 1_000, 100);
  call(detector, 1_800, 100);
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 3_000);
  call(detector, 1_900, 100); // now 2 of 101 above 1 s: the p99 moves up
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 5_400);
  // Gaps of 100 ms: 300 ms is under the floor.
  assert.equal(timings.gapLimitMs(CEILING), 2_000);
  assert.equal(timings.firstTokenLimitMs(500, 4_000), 4_000, 'never beyond the configured ceiling');
});

test('stall detector: a hung call is cut at the learnt limit; a slow but steady one is not', () => {
  const detector = new StallDetector({ minSamples: 5, floorMs: 100 });
  const timings = detector.timings('http://endpoint/v1', 'm');
  // An endpoint whose first token is quick but whose chunks come 3 s apart: that is its normal.
  for (let i = 0; i < 5; i++) call(detector, 200, 3_000);
  const steady = new CallWatch(timings, 500, CEILING, 0);
  steady.data(200);
  steady.firstToken(200);
  for (let t = 3_200; t <= 30_200; t += 3_000) {
    assert.equal(steady.check(t - 1), undefined, `a 3 s gap at ${t} ms is normal here`);
    steady.data(t);
  }
  const hung = new CallWatch(timings, 500, CEILING, 0);
  assert.equal(hung.check(599), undefined);
  const stalled = hung.check(600);
  assert.ok(stalled instanceof StallError, 'no first token after 3 × 200 ms');
  assert.equal(stalled.phase, 'first token');
  const midway = new CallWatch(timings, 500, CEILING, 0);
  midway.data(100);
  midway.firstToken(200);
  assert.equal(midway.check(200 + 8_999), undefined);
  assert.equal(midway.check(200 + 9_000)?.phase, 'between chunks');
});

test('stall detector: a prompt longer than the typical one gets a proportionally longer first token allowance', () => {
  const detector = new StallDetector({ minSamples: 5, floorMs: 100 });
  const timings = detector.timings('http://endpoint/v1', 'm');
  for (let i = 0; i < 10; i++) call(detector, 400, 20, 1_000);
  assert.equal(timings.firstTokenLimitMs(1_000, CEILING), 1_200);
  assert.equal(timings.firstTokenLimitMs(200, CEILING), 1_200, 'shorter prompts keep the learnt limit');
  assert.equal(timings.firstTokenLimitMs(20_000, CEILING), 24_000, '20 × the prompt, 20 × the allowance');
  assert.equal(timings.firstTokenLimitMs(1_000_000, CEILING), CEILING);
});

test('stall detector: hung calls teach it nothing (a gap is booked only for a completed stream), and endpoints learn apart', () => {
  const detector = new StallDetector({ minSamples: 3, floorMs: 0 });
  const timings = detector.timings('http://endpoint/v1', 'm');
  for (let i = 0; i < 3; i++) call(detector, 100, 10);
  const gapBefore = timings.gapLimitMs(CEILING);
  // Hung calls: no first token, or cut mid-reply (never finished): neither moves the limits.
  for (let i = 0; i < 10; i++) {
    const hung = new CallWatch(timings, 500, CEILING, 0);
    assert.ok(hung.check(CEILING));
    const cut = new CallWatch(timings, 500, CEILING, 0);
    cut.firstToken(100);
    cut.data(50_000);
  }
  assert.equal(timings.gapLimitMs(CEILING), gapBefore);
  assert.equal(detector.timings('http://endpoint/v1', 'other').firstTokenLimitMs(500, CEILING), undefined);
  assert.equal(detector.timings('http://other/v1', 'm').gapLimitMs(CEILING), undefined);
});

test('stall detector: an endpoint that slowed down for everyone is not cut forever: cuts beyond a fifth of the last calls relax the limits', () => {
  const detector = new StallDetector({ minSamples: 5, floorMs: 0 });
  const timings = detector.timings('http://endpoint/v1', 'm');
  for (let i = 0; i < 20; i++) call(detector, 100, 10);
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 300);
  // The endpoint now answers after 1 s: each call is cut. A random hang or four is no change of pace…
  const cutOne = () => {
    const watch = new CallWatch(timings, 500, CEILING, 0);
    assert.ok(watch.check(CEILING));
    watch.cut();
  };
  for (let i = 0; i < 4; i++) cutOne();
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 300);
  // …but each cut beyond four of the last 20 doubles the limits, until calls complete at the new pace.
  cutOne();
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 600);
  cutOne();
  cutOne();
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 2_400);
  assert.equal(timings.gapLimitMs(CEILING), 240);
  for (let i = 0; i < 5; i++) call(detector, 1_000, 10);
  // The last 20 now hold 7 cuts still; the p99 is the new pace: 8 × 3 × 1 s.
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 24_000);
  for (let i = 0; i < 13; i++) call(detector, 1_000, 10);
  // 2 cuts left among the last 20: no relaxation, the learnt pace alone.
  assert.equal(timings.firstTokenLimitMs(500, CEILING), 3_000);
});

test('stall detector: options are checked', () => {
  assert.throws(() => new StallDetector({ factor: 0 }));
  assert.throws(() => new StallDetector({ minSamples: 0 }));
  assert.throws(() => new StallDetector({ extra: 1 } as never));
  assert.deepEqual(new StallDetector().options, {
    factor: 3,
    quantile: 0.99,
    minSamples: 20,
    window: 500,
    floorMs: 2_000,
    relaxAboveCutShare: 0.2,
  });
});
