/**
 * One structured LLM call: streams the completion (heartbeating while tokens arrive), aborts when the
 * activity is cancelled, then parses and validates the JSON reply. Anything unusable becomes an
 * `ApplicationFailure` through `toLlmFailure`, so Temporal decides whether and when to try again.
 */
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { describeIssues, extractJson } from '../method/replies';
import { ApplicationFailure } from '@temporalio/common';
import { attemptUsageSchema, type AttemptUsage, type Usage } from '../run/schemas';
import { adaptToEndpoint, buildRequest, planAttempt, type AttemptPlan, type JsonCall } from './llm-request';
import { LLM_FAILURE_TYPES, invalidOutput, retryAfterMs, toLlmFailure } from './errors';
import type { RateController } from './rate-control';
import type { GateSlot, RunGates } from './run-gate';
import { readChatStream, type StreamedReply } from './chat-stream';
import { CallWatch, StallDetector, StallError } from './stall-detector';
import { noMetrics, type LlmStage, type PackageMetrics } from './metrics';
import { tracedHttpCall } from './http-span';
import { HEARTBEAT_THROTTLE_MS } from '../shared/constants';

export type { JsonCall } from './llm-request';

export interface LlmDeps {
  openai: OpenAI;
  rate: RateController;
  /** The per-run bound on calls in flight in this worker. */
  gates: RunGates;
  /** Counts of replies checked and rejected by kind, for the run's summary. */
  replyChecks?: ReplyCheckCounts;
  /** What this process learnt of each endpoint's normal timings. @default one detector per process, default options */
  stalls?: StallDetector;
  /** Where the calls' counts, tokens and waits go. @default none recorded */
  metrics?: PackageMetrics;
}

const processStalls = new StallDetector();

/** Replies that passed the schema and were then checked; `rejected` by `REPLY_CHECKS` kind. */
export interface ReplyCheckCounts {
  checked: number;
  rejected: Record<string, number>;
}

export interface JsonCallResult<T> {
  value: T;
  usage: Usage;
  /** Earlier attempts of this activity that failed: they were paid too. */
  failedAttempts: AttemptUsage;
}

const estimateTokens = (text: string) => Math.ceil(text.length / 4);

/**
 * One attempt of a structured call. Failed attempts are paid, so their use is kept in the activity's
 * heartbeat details (which the next attempt receives), returned with a success and attached to the
 * final failure's details for the workflow's books.
 */
export async function completeJson<T>(deps: LlmDeps, call: JsonCall<T>): Promise<JsonCallResult<T>> {
  const ctx = Context.current();
  const before = attemptUsageSchema.safeParse(ctx.info.heartbeatDetails);
  const paid: AttemptUsage = before.success
    ? before.data
    : { calls: 0, promptTokens: 0, completionTokens: 0 };
  const attempt: { usage?: Usage } = {};
  try {
    return { ...(await completeJsonAttempt(deps, call, paid, attempt)), failedAttempts: paid };
  } catch (error) {
    const total: AttemptUsage = {
      calls: paid.calls + 1,
      promptTokens: paid.promptTokens + (attempt.usage?.promptTokens ?? 0),
      completionTokens: paid.completionTokens + (attempt.usage?.completionTokens ?? 0),
    };
    ctx.heartbeat(total);
    if (!(error instanceof ApplicationFailure)) throw error;
    throw ApplicationFailure.create({
      type: error.type ?? undefined,
      message: error.message,
      nonRetryable: error.nonRetryable ?? undefined,
      // The SDK's Duration type comes from `ms`' template types, which the linter cannot resolve.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
      nextRetryDelay: error.nextRetryDelay,
      cause: error.cause,
      category: error.category ?? undefined,
      details: [total],
    });
  }
}

/** What one attempt keeps across its calls: the slot it holds, the 429s it waited out. */
interface AttemptRun {
  ctx: Context;
  paid: AttemptUsage;
  started: number;
  heartbeat: () => void;
  rateLimited: number;
  slot?: GateSlot;
}

/**
 * One attempt: admitted by the run's gate and the rate limiter, it calls the model until a reply
 * passes or a failure is not one to absorb within the attempt (see `recover`).
 */
async function completeJsonAttempt<T>(
  deps: LlmDeps,
  call: JsonCall<T>,
  paid: AttemptUsage,
  attempt: { usage?: Usage },
): Promise<Omit<JsonCallResult<T>, 'failedAttempts'>> {
  const ctx = Context.current();
  const plan = planAttempt(deps.openai.baseURL, call, ctx.info.attempt);
  deps.rate.configure(call.settings.rateLimit);
  const started = Date.now();
  const run: AttemptRun = {
    ctx,
    paid,
    started,
    heartbeat: quietHeartbeat(ctx, paid, started),
    rateLimited: 0,
  };
  try {
    for (;;) {
      await admit(deps, call, plan, run);
      const callDone = (deps.metrics ?? noMetrics).callStarted(call.stage);
      try {
        const result = await callModel(deps, call, plan, run, attempt);
        callDone('ok');
        return result;
      } catch (error) {
        callDone(ctx.cancellationSignal.aborted ? 'cancelled' : (toLlmFailure(error).type ?? 'unknown'));
        await recover(deps, call, plan, run, error);
      }
    }
  } finally {
    run.slot?.release();
  }
}

/** Waits for a place in the run's bound on calls in flight (kept across calls), then for the rate limiter. */
async function admit<T>(deps: LlmDeps, call: JsonCall<T>, plan: AttemptPlan, run: AttemptRun): Promise<void> {
  const { settings } = call;
  const { ctx } = run;
  if (settings.runConcurrency !== undefined)
    run.slot ??= await deps.gates.acquire(
      settings.runId,
      settings.runConcurrency,
      ctx.info.scheduledTimestampMs,
      ctx.cancellationSignal,
      run.heartbeat,
    );
  await takeRate(deps, call.stage, plan.estimated, ctx.cancellationSignal, run.heartbeat);
}

/** One call: streamed, its use counted and settled with the rate limiter, its reply parsed and checked. */
async function callModel<T>(
  deps: LlmDeps,
  call: JsonCall<T>,
  plan: AttemptPlan,
  run: AttemptRun,
  attempt: { usage?: Usage },
): Promise<Omit<JsonCallResult<T>, 'failedAttempts'>> {
  const { settings } = call;
  const reply = await tracedHttpCall(call.stage, settings.model, () =>
    streamCompletion(
      deps.openai,
      buildRequest(call, plan),
      run.ctx,
      new CallWatch(
        (deps.stalls ?? processStalls).timings(deps.openai.baseURL, settings.model),
        plan.promptTokens,
        settings.idleMs,
      ),
      run.heartbeat,
    ),
  );
  const usage = reply.usage ?? {
    promptTokens: plan.promptTokens,
    completionTokens: estimateTokens(reply.content),
  };
  attempt.usage = usage;
  deps.metrics?.usage(call.stage, settings.model, usage);
  deps.rate.settle(plan.estimated, usage.promptTokens + usage.completionTokens);
  deps.rate.succeeded();
  return { value: checkReply(deps, call, parseReply(call, reply)), usage };
}

/**
 * After a failed call: returns when the attempt should call again (the endpoint's quirk is learnt, or a
 * 429 was waited out), else throws what Temporal sees (the cancellation, or the mapped failure).
 */
async function recover<T>(
  deps: LlmDeps,
  call: JsonCall<T>,
  plan: AttemptPlan,
  run: AttemptRun,
  error: unknown,
): Promise<void> {
  const { ctx } = run;
  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
  if (adaptToEndpoint(call.settings, plan, error, ctx)) return;
  const failure = toLlmFailure(error);
  if (failure.type === LLM_FAILURE_TYPES.rateLimit && (await waitOutRateLimit(deps, run, error))) return;
  throw failure;
}

/** A 429 says "later", not "wrong": wait it out within this attempt, within its budget, so it costs no attempt. */
async function waitOutRateLimit(deps: LlmDeps, run: AttemptRun, error: unknown): Promise<boolean> {
  const delay = rateLimitDelay(error, ++run.rateLimited);
  deps.rate.coolDown(delay);
  if (Date.now() + delay - run.started > rateLimitBudgetMs(run.ctx)) return false;
  // The slot goes to a call that can use it meanwhile.
  run.slot?.release();
  run.slot = undefined;
  await waitHeartbeating(delay, run.ctx, run.paid);
  return true;
}

/**
 * Heartbeats with the paid usage, from `quietMs` into the attempt on. The SDK sends an activity's first
 * heartbeat at once and throttles the later ones to `HEARTBEAT_THROTTLE_MS`; each sent is an RPC and a
 * history update on the server. A call of a few seconds needs none (the heartbeat timeout is far), and
 * a cancellation still reaches a longer one within the throttle interval, as it reached the later beats.
 */
function quietHeartbeat(ctx: Context, paid: AttemptUsage, started: number): () => void {
  const quietMs = Math.min(HEARTBEAT_THROTTLE_MS, (ctx.info.heartbeatTimeoutMs ?? 30_000) / 2);
  return () => {
    if (Date.now() - started >= quietMs) ctx.heartbeat(paid);
  };
}

/** The process's rate limiter; a wait is recorded with its length. */
async function takeRate(
  deps: LlmDeps,
  stage: LlmStage,
  estimated: number,
  signal: AbortSignal,
  heartbeat: () => void,
): Promise<void> {
  const started = Date.now();
  let waited = false;
  await deps.rate.acquire(estimated, signal, () => {
    waited = true;
    heartbeat();
  });
  if (waited) deps.metrics?.rateLimiterWaited(stage, Date.now() - started);
}

/**
 * Streams one completion. The activity heartbeats on a timer while the call is within its limits, so a
 * cancellation reaches it within seconds even before the first token; a call far outside the endpoint's
 * learnt timings (`watch`, at most `idleMs` without data) is aborted here with a retryable
 * `StallError`, and a dead worker is caught by the heartbeat timeout.
 */
async function streamCompletion(
  openai: OpenAI,
  request: ChatCompletionCreateParamsStreaming,
  ctx: Context,
  watch: CallWatch,
  heartbeat: () => void,
): Promise<StreamedReply> {
  // One controller per call, fed by the activity's cancellation and the stall checks. Not
  // AbortSignal.any: Node 20 keeps such a signal alive until it aborts, and the openai client hangs a
  // listener on it, so every finished call would stay in memory.
  const abort = new AbortController();
  const onCancel = () => abort.abort(ctx.cancellationSignal.reason);
  if (ctx.cancellationSignal.aborted) onCancel();
  else ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
  let done = false;
  let deadlineTimer: NodeJS.Timeout | undefined;
  const armDeadline = () => {
    clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(confirmStall, Math.max(0, watch.deadline() - Date.now()));
  };
  // Bytes that arrived while this process was busy are read in the event loop's poll phase, after the
  // timers: look once more after it, so a worker's own pause does not read as the endpoint's.
  const confirmStall = () =>
    setImmediate(() => {
      if (done || abort.signal.aborted) return;
      const stalled = watch.check();
      if (stalled) {
        ctx.log.warn('LLM call cut as hung', { message: stalled.message });
        watch.cut();
        abort.abort(stalled);
      } else armDeadline();
    });
  const tick = Math.max(200, Math.min(2_000, (ctx.info.heartbeatTimeoutMs ?? 30_000) / 4));
  // The tick also re-reads the limits, which shrink as the detector learns during a long call.
  const heartbeats = setInterval(() => {
    if (watch.check()) confirmStall();
    else heartbeat();
  }, tick);
  armDeadline();
  try {
    // The client sends the request and raises its errors for a non-2xx answer; the body is read here.
    const response = await openai.chat.completions.create(request, { signal: abort.signal }).asResponse();
    const reply = await readChatStream(
      response,
      () => watch.data(),
      () => watch.firstToken(),
    );
    if (reply.finishReason !== null) watch.finish();
    return reply;
  } catch (error) {
    if (abort.signal.reason instanceof StallError && !ctx.cancellationSignal.aborted)
      throw abort.signal.reason;
    throw error;
  } finally {
    done = true;
    clearTimeout(deadlineTimer);
    clearInterval(heartbeats);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
  }
}

function parseReply<T>(call: JsonCall<T>, reply: StreamedReply): T {
  if (reply.finishReason === null) {
    throw toLlmFailure(new Error('the stream ended before the reply was complete'));
  }
  if (reply.finishReason === 'length') {
    throw invalidOutput(
      `reply cut at the token limit (${reply.content.length} chars, finish_reason "length")`,
    );
  }
  if (reply.finishReason === 'content_filter') {
    throw invalidOutput('reply stopped by the content filter');
  }
  let json: unknown;
  try {
    json = extractJson(reply.content);
  } catch (error) {
    throw invalidOutput(`${call.schemaName}: ${(error as Error).message}`, error);
  }
  const parsed = call.schema.safeParse(json);
  if (!parsed.success) {
    throw invalidOutput(
      `${call.schemaName} reply does not fit: ${describeIssues(parsed.error)}`,
      parsed.error,
    );
  }
  return parsed.data;
}

function checkReply<T>(deps: LlmDeps, call: JsonCall<T>, value: T): T {
  if (!call.check) return value;
  const problem = call.check(value);
  if (problem) deps.metrics?.replyRejected(call.stage, problem.check);
  if (deps.replyChecks) {
    deps.replyChecks.checked++;
    if (problem)
      deps.replyChecks.rejected[problem.check] = (deps.replyChecks.rejected[problem.check] ?? 0) + 1;
  }
  if (problem)
    throw invalidOutput(`${call.schemaName} failed the ${problem.check} check: ${problem.message}`);
  return value;
}

/** Longest time one attempt spends waiting out 429s before it lets Temporal retry. @default 10 minutes */
export const MAX_RATE_LIMIT_WAIT_MS = 10 * 60_000;

/** Half the attempt's start-to-close time (the other half is for the call), at most `MAX_RATE_LIMIT_WAIT_MS`. */
function rateLimitBudgetMs(ctx: Context): number {
  return Math.min(MAX_RATE_LIMIT_WAIT_MS, (ctx.info.startToCloseTimeoutMs || 60_000) / 2);
}

/** The endpoint's Retry-After, else 1, 2, 4 … 30 s, with jitter so waiting callers do not return together. */
function rateLimitDelay(error: unknown, times: number): number {
  const said = retryAfterMs((error as { headers?: Headers }).headers);
  const base = said ?? Math.min(30_000, 1_000 * 2 ** (times - 1));
  return Math.round(base * (1 + Math.random() * 0.2));
}

async function waitHeartbeating(ms: number, ctx: Context, paid: AttemptUsage): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    // With the paid usage: the last heartbeat's details are what the next attempt starts from.
    ctx.heartbeat(paid);
    await ctx.sleep(Math.min(1_000, end - Date.now()));
  }
}
