/**
 * One structured LLM call: streams the completion (heartbeating while tokens arrive), aborts when the
 * activity is cancelled, then parses and validates the JSON reply. Anything unusable becomes an
 * `ApplicationFailure` through `toLlmFailure`, so Temporal decides whether and when to try again.
 */
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import type {
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { z } from 'zod';
import { describeIssues, extractJson, type ReplyProblem } from '../method/replies';
import { ApplicationFailure } from '@temporalio/common';
import { attemptUsageSchema, type AttemptUsage, type LlmCallSettings, type Usage } from '../run/schemas';
import { LLM_FAILURE_TYPES, invalidOutput, retryAfterMs, toLlmFailure } from './errors';
import type { RateController } from './rate-control';
import type { GateSlot, RunGates } from './run-gate';
import { readChatStream, type StreamedReply } from './chat-stream';
import { CallWatch, StallDetector, StallError } from './stall-detector';
import { noMetrics, type LlmStage, type PackageMetrics } from './metrics';
import { tracedHttpCall } from './http-span';
import { HEARTBEAT_THROTTLE_MS } from '../shared/constants';

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

type FormatMode = 'json_schema' | 'json_object' | 'text';
const FORMAT_FALLBACK: Record<FormatMode, FormatMode | undefined> = {
  json_schema: 'json_object',
  json_object: 'text',
  text: undefined,
};

/** What this process learnt about each endpoint+model: the structured-output mode and token parameter it takes. */
interface EndpointQuirks {
  format: FormatMode;
  tokenParam: 'max_tokens' | 'max_completion_tokens';
}
const quirksByEndpoint = new Map<string, EndpointQuirks>();

const FORMAT_REJECTED = /response_format|json_schema|json_object|structured output|guided/i;
const MAX_TOKENS_REJECTED = /max_tokens.*max_completion_tokens|unsupported parameter.*max_tokens/i;

export interface JsonCall<T> {
  /** The method's stage, for metrics. */
  stage: LlmStage;
  settings: LlmCallSettings;
  messages: ChatCompletionMessageParam[];
  schemaName: string;
  jsonSchema: Record<string, unknown>;
  schema: z.ZodType<T>;
  /** Checks a well-formed reply for what real models get wrong (method/replies.ts). */
  check?: (value: T) => ReplyProblem | undefined;
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

async function completeJsonAttempt<T>(
  deps: LlmDeps,
  call: JsonCall<T>,
  paid: AttemptUsage,
  attempt: { usage?: Usage },
): Promise<Omit<JsonCallResult<T>, 'failedAttempts'>> {
  const ctx = Context.current();
  const { settings } = call;
  const key = `${deps.openai.baseURL}|${settings.model}`;
  const quirks: EndpointQuirks = {
    format:
      settings.responseFormat === 'auto'
        ? (quirksByEndpoint.get(key)?.format ?? 'json_schema')
        : settings.responseFormat,
    tokenParam: quirksByEndpoint.get(key)?.tokenParam ?? 'max_tokens',
  };
  // A reply cut at the token limit is retried with more room (up to twice the limit).
  const maxTokens = Math.round(settings.maxTokens * Math.min(2, 1 + 0.25 * (ctx.info.attempt - 1)));
  const promptChars = call.messages.reduce(
    (sum, m) => sum + (typeof m.content === 'string' ? m.content.length : 0),
    0,
  );
  const estimated = Math.ceil(promptChars / 4) + maxTokens;

  deps.rate.configure(settings.rateLimit);
  const started = Date.now();
  const heartbeat = quietHeartbeat(ctx, paid, started);
  let rateLimited = 0;
  let slot: GateSlot | undefined;
  try {
    for (;;) {
      if (settings.runConcurrency !== undefined)
        slot ??= await deps.gates.acquire(
          settings.runId,
          settings.runConcurrency,
          ctx.info.scheduledTimestampMs,
          ctx.cancellationSignal,
          heartbeat,
        );
      await takeRate(deps, call.stage, estimated, ctx.cancellationSignal, heartbeat);
      const callDone = (deps.metrics ?? noMetrics).callStarted(call.stage);
      try {
        const reply = await tracedHttpCall(call.stage, settings.model, () =>
          streamCompletion(
            deps.openai,
            buildRequest(call, quirks, maxTokens),
            ctx,
            new CallWatch(
              (deps.stalls ?? processStalls).timings(deps.openai.baseURL, settings.model),
              Math.ceil(promptChars / 4),
              settings.idleMs,
            ),
            heartbeat,
          ),
        );
        const usage = reply.usage ?? {
          promptTokens: Math.ceil(promptChars / 4),
          completionTokens: estimateTokens(reply.content),
        };
        attempt.usage = usage;
        deps.metrics?.usage(call.stage, settings.model, usage);
        deps.rate.settle(estimated, usage.promptTokens + usage.completionTokens);
        deps.rate.succeeded();
        const value = checkReply(deps, call, parseReply(call, reply));
        callDone('ok');
        return { value, usage };
      } catch (error) {
        callDone(ctx.cancellationSignal.aborted ? 'cancelled' : (toLlmFailure(error).type ?? 'unknown'));
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
        const status = (error as { status?: number }).status;
        const message = error instanceof Error ? error.message : '';
        // A 400 about an unsupported feature costs nothing: adapt and ask again within this attempt.
        if (status === 400 && settings.responseFormat === 'auto' && FORMAT_REJECTED.test(message)) {
          const next = FORMAT_FALLBACK[quirks.format];
          if (next) {
            ctx.log.warn('endpoint rejected the response format; falling back', {
              from: quirks.format,
              to: next,
            });
            quirks.format = next;
            quirksByEndpoint.set(key, { ...quirks });
            continue;
          }
        }
        if (status === 400 && quirks.tokenParam === 'max_tokens' && MAX_TOKENS_REJECTED.test(message)) {
          quirks.tokenParam = 'max_completion_tokens';
          quirksByEndpoint.set(key, { ...quirks });
          continue;
        }
        const failure = toLlmFailure(error);
        if (failure.type === LLM_FAILURE_TYPES.rateLimit) {
          const delay = rateLimitDelay(error, ++rateLimited);
          deps.rate.coolDown(delay);
          // A 429 says "later", not "wrong": wait it out within this attempt so it costs no attempt.
          if (Date.now() + delay - started <= rateLimitBudgetMs(ctx)) {
            // The slot goes to a call that can use it meanwhile.
            slot?.release();
            slot = undefined;
            await waitHeartbeating(delay, ctx, paid);
            continue;
          }
        }
        throw failure;
      }
    }
  } finally {
    slot?.release();
  }
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

function buildRequest<T>(
  call: JsonCall<T>,
  quirks: EndpointQuirks,
  maxTokens: number,
): ChatCompletionCreateParamsStreaming {
  const request: ChatCompletionCreateParamsStreaming = {
    model: call.settings.model,
    messages: call.messages,
    temperature: call.settings.temperature,
    stream: true,
    stream_options: { include_usage: true },
    [quirks.tokenParam]: maxTokens,
  };
  if (quirks.format === 'json_schema') {
    request.response_format = {
      type: 'json_schema',
      json_schema: { name: call.schemaName, strict: true, schema: call.jsonSchema },
    };
  } else if (quirks.format === 'json_object') {
    request.response_format = { type: 'json_object' };
  }
  return request;
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
