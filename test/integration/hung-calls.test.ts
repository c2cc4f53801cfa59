/**
 * Issue 20 §2 and §3 (books): the LLM activity against the test server over HTTP with the real openai
 * client, in Temporal's mock activity context. Once the stall detector has learnt an endpoint, a hung
 * call is cut far before the configured ceiling (and retryable); an endpoint that is slow but steady, or
 * a long prompt's long prefill, is not cut. A 429 wait keeps the paid usage in the heartbeat details.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { Info } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import OpenAI from 'openai';
import { RateController } from '../../src/activities/rate-control';
import { RunGates } from '../../src/activities/run-gate';
import { createGenerateSkeleton } from '../../src/activities/skeleton';
import { StallDetector, type StallDetectorSettings } from '../../src/activities/stall-detector';
import type { LlmDeps } from '../../src/activities/llm-call';
import { LLM_FAILURE_TYPES } from '../../src/activities/errors';
import { planDialogue, skeletonMessages } from '../../src/method';
import type { AttemptUsage, SkeletonInput, SkeletonResult } from '../../src/run/schemas';
import { startLlmServer, type LlmServer, type LlmServerOptions } from '../llm-server/server';
import { waitFor } from '../helpers/wait';

/** The configured ceiling (`idleMs`): a call that reaches it was not cut by the detector. */
const CEILING_MS = 60_000;

let llm: LlmServer;
before(async () => {
  llm = await startLlmServer({});
});
after(async () => {
  await llm?.close();
});

let index = 0;
function input(topic?: string): SkeletonInput {
  const plan = planDialogue({ runId: 'hung', seed: 'hung', intent: 'transaction', index: index++ });
  return {
    plan: topic === undefined ? plan : { ...plan, topic },
    numTurns: 2,
    llm: {
      runId: 'hung',
      idleMs: CEILING_MS,
      model: 'test-model',
      temperature: 0.9,
      maxTokens: 400,
      responseFormat: 'json_schema',
      rateLimit: {},
    },
  };
}

/** A fresh endpoint (the server reconfigured) and a fresh detector, so each test learns on its own. */
function setup(server: Partial<LlmServerOptions>, detector: StallDetectorSettings) {
  llm.configure({ latency: { meanMs: 0 }, tokensPerChunk: 8, faults: {}, ...server });
  llm.resetStats();
  const deps: LlmDeps = {
    openai: new OpenAI({ apiKey: 'k', baseURL: llm.url, maxRetries: 0 }),
    rate: new RateController(),
    gates: new RunGates(),
    stalls: new StallDetector(detector),
  };
  const timings = deps.stalls!.timings(deps.openai.baseURL, 'test-model');
  const call = (given: SkeletonInput = input(), info: Partial<Info> = {}): Promise<SkeletonResult> =>
    new MockActivityEnvironment({ attempt: 1, startToCloseTimeoutMs: 300_000, ...info }).run(
      createGenerateSkeleton(deps),
      given,
    );
  return { deps, timings, call };
}

async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await promise.then(
    () => assert.fail('the call succeeded'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ApplicationFailure, String(error));
  return error;
}

describe('hung calls', () => {
  test('hung calls: once learnt, a hung connection and a reply stalled mid-stream are cut far before the ceiling, retryably', async () => {
    const { timings, call } = setup({ latency: { meanMs: 20 } }, { minSamples: 5 });
    for (let i = 0; i < 5; i++) await call();
    assert.ok(timings.firstTokenLimitMs(100, CEILING_MS) !== undefined, 'learnt after 5 calls');

    llm.configure({ faults: { hang: 1 } });
    let started = Date.now();
    const hung = await failure(call());
    const hungMs = Date.now() - started;
    assert.equal(hung.type, LLM_FAILURE_TYPES.unavailable);
    assert.equal(hung.nonRetryable, false, 'Temporal tries again');
    assert.match(hung.message, /no first token .*treated as hung/);
    // The limit is the 2 s floor here; a third of the ceiling leaves room for a loaded machine.
    assert.ok(hungMs < CEILING_MS / 3, `cut after ${hungMs} ms, ceiling ${CEILING_MS} ms`);
    assert.equal(llm.stats().faults.hang, 1);

    llm.configure({ faults: { stall: 1 } });
    started = Date.now();
    const stalled = await failure(call());
    const stalledMs = Date.now() - started;
    assert.equal(stalled.nonRetryable, false);
    assert.match(stalled.message, /between chunks .*treated as hung/);
    assert.ok(stalledMs < CEILING_MS / 3, `cut after ${stalledMs} ms, ceiling ${CEILING_MS} ms`);
  });

  test('hung calls: no abort on an endpoint that is slow but steady (long gaps are its normal)', async () => {
    // Two or three chunks per reply, 1.5 s apart; the first token comes at once. The floor (50 ms) is
    // far below the gaps: only what was learnt of this endpoint's gaps (not of its first tokens) keeps
    // these calls alive.
    const gapMs = 1_500;
    const { timings, call } = setup(
      { latency: { meanMs: 5, tokensPerSecond: (40 * 1000) / gapMs }, tokensPerChunk: 40 },
      { minSamples: 5, floorMs: 50 },
    );
    await Promise.all(Array.from({ length: 5 }, () => call()));
    const learnt = timings.gapLimitMs(CEILING_MS);
    assert.ok(learnt !== undefined && learnt >= 3 * gapMs * 0.8, `gap limit ${learnt} ms`);
    // A cut call would fail its attempt: every one of these succeeds, with one request each.
    const results = await Promise.all(Array.from({ length: 10 }, () => call()));
    assert.equal(results.length, 10);
    assert.equal(llm.stats().requests, 15);
    assert.equal(llm.stats().completed, 15);
  });

  test('hung calls: no abort on a long prefill (a prompt 40 times the typical one, 40 times the first-token time)', async () => {
    const typical = input();
    const promptTokens = (i: SkeletonInput) =>
      skeletonMessages(i.plan, i.numTurns).reduce(
        (n, m) => n + (typeof m.content === 'string' ? m.content.length : 0),
        0,
      ) / 4;
    // The prompt is read at a pace that makes a typical first token come after about 100 ms.
    const rate = promptTokens(typical) / 0.1;
    const { timings, call } = setup(
      { latency: { meanMs: 0, prefillTokensPerSecond: rate } },
      { minSamples: 5, floorMs: 50 },
    );
    await call(typical);
    for (let i = 0; i < 4; i++) await call();
    const normal = timings.firstTokenLimitMs(promptTokens(typical), CEILING_MS);
    assert.ok(normal !== undefined, 'learnt');
    const long = input(
      `a topic told at length;${' detail'.repeat(Math.ceil((160 * promptTokens(typical)) / 7))}`,
    );
    const longTokens = promptTokens(long);
    assert.ok(longTokens > 38 * promptTokens(typical), `${longTokens} prompt tokens`);
    // Unscaled, the limit would cut this call: its prefill alone is ~40 × the typical first token.
    assert.ok(normal < (longTokens / rate) * 1000, `limit for a typical prompt ${normal} ms`);
    const started = Date.now();
    const result = await call(long);
    assert.equal(result.skeleton.queries.length, 2);
    assert.ok(Date.now() - started >= (longTokens / rate) * 1000 * 0.9, 'the prefill took its time');
    assert.equal(llm.stats().requests, 6, 'one request per call');
  });

  test('books: during a 429 wait the heartbeat keeps the paid usage of earlier attempts', async () => {
    const { deps } = setup({ alwaysFail: 'rateLimit', retryAfterSeconds: 1 }, {});
    const paid: AttemptUsage = { calls: 2, promptTokens: 300, completionTokens: 120 };
    const env = new MockActivityEnvironment({
      attempt: 3,
      heartbeatDetails: paid,
      startToCloseTimeoutMs: 300_000,
    });
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));
    const running = env.run(createGenerateSkeleton(deps), input());
    try {
      // Two 429s waited out: a worker that dies now leaves these details to the next attempt.
      await waitFor(
        () => (llm.stats().byStatus['429'] ?? 0) >= 2 && beats.length >= 2,
        30_000,
        'two 429 waits',
      );
      const seen = [...beats];
      for (const details of seen) assert.deepEqual(details, paid);
    } finally {
      env.cancel();
      await running.catch(() => undefined);
      llm.configure({ alwaysFail: undefined });
    }
  });
});
