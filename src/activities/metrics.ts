/**
 * The package's own Prometheus metrics. They go out through the SDK runtime's meter, so one exporter
 * (`--metrics-port`) serves them next to the SDK's `temporal_*` metrics. Emitted from activities and
 * worker code only: workflow code stays as it is (replay). Labels are bounded: a run id, an intent id,
 * a stage, an outcome type or a check name; never a dialogue id, prompt text or key.
 */
import { noopMetricMeter, type MetricMeter, type MetricTags } from '@temporalio/common';
import { priceFor } from '../shared/pricing';
import { LLM_FAILURE_TYPES } from './errors';
import type { Usage } from '../run/schemas';

/** Every metric name the package exports (the README's "Metrics" table and the dashboard use them). */
export const METRIC_NAMES = {
  dialoguesWritten: 'consistent_chat_dialogues_written',
  dialoguesFailed: 'consistent_chat_dialogues_failed',
  llmCalls: 'consistent_chat_llm_calls',
  llmTokens: 'consistent_chat_llm_tokens',
  llmCostUsd: 'consistent_chat_llm_cost_usd',
  llmRateLimited: 'consistent_chat_llm_rate_limited',
  llmCallsInFlight: 'consistent_chat_llm_calls_in_flight',
  rateLimiterWaitMs: 'consistent_chat_rate_limiter_wait_ms',
  replyCheckRejections: 'consistent_chat_reply_check_rejections',
  storageBatches: 'consistent_chat_storage_batches',
  storageBytes: 'consistent_chat_storage_bytes',
} as const;

export type LlmStage = 'skeleton' | 'responses' | 'judge' | 'topics';
/** `ok`, or the failure type the attempt ended with (`Llm.RateLimit`, `Llm.InvalidOutput`, …). */
export type CallOutcome = string;

export class PackageMetrics {
  private readonly written;
  private readonly failed;
  private readonly calls;
  private readonly tokens;
  private readonly cost;
  private readonly rateLimitedCalls;
  private readonly inFlight;
  private readonly limiterWait;
  private readonly rejections;
  private readonly batches;
  private readonly bytes;
  private inFlightNow = 0;

  constructor(meter: MetricMeter = noopMetricMeter) {
    const n = METRIC_NAMES;
    this.written = meter.createCounter(
      n.dialoguesWritten,
      undefined,
      'Dialogues newly written, by run and intent',
    );
    this.failed = meter.createCounter(n.dialoguesFailed, undefined, 'Dialogues written to failures.jsonl');
    this.calls = meter.createCounter(
      n.llmCalls,
      undefined,
      'HTTP calls to the endpoint, by stage and outcome',
    );
    this.tokens = meter.createCounter(
      n.llmTokens,
      undefined,
      'Tokens the endpoint reported, by stage and kind',
    );
    this.cost = meter.createHistogram(n.llmCostUsd, 'float', 'USD', 'Estimated cost per call (list prices)');
    this.rateLimitedCalls = meter.createCounter(n.llmRateLimited, undefined, 'Calls answered with a 429');
    // A gauge set from this process's count: the SDK's up-down counter is optional on its interface.
    this.inFlight = meter.createGauge(n.llmCallsInFlight, 'int', undefined, 'HTTP calls open now');
    this.limiterWait = meter.createHistogram(n.rateLimiterWaitMs, 'int', 'ms', 'Waits in the rate limiter');
    this.rejections = meter.createCounter(n.replyCheckRejections, undefined, 'Replies rejected, by check');
    this.batches = meter.createCounter(n.storageBatches, undefined, 'Storage activities, by kind');
    this.bytes = meter.createCounter(n.storageBytes, undefined, 'Bytes appended to the output files');
  }

  /** Marks an HTTP call open; the returned function closes it with its outcome. */
  callStarted(stage: LlmStage): (outcome: CallOutcome) => void {
    this.inFlight.set(++this.inFlightNow);
    let open = true;
    return (outcome) => {
      if (!open) return;
      open = false;
      this.inFlight.set(--this.inFlightNow);
      this.calls.add(1, { stage, outcome });
      if (outcome === RATE_LIMITED) this.rateLimitedCalls.add(1, { stage });
    };
  }

  /** Tokens of a call whose reply arrived, and their cost when the model has a list price. */
  usage(stage: LlmStage, model: string, usage: Usage): void {
    this.tokens.add(usage.promptTokens, { stage, kind: 'prompt' });
    this.tokens.add(usage.completionTokens, { stage, kind: 'completion' });
    const price = priceFor(model);
    if (price)
      this.cost.record(
        (usage.promptTokens * price.prompt + usage.completionTokens * price.completion) / 1_000_000,
        { stage },
      );
  }

  rateLimiterWaited(stage: LlmStage, ms: number): void {
    this.limiterWait.record(Math.max(0, Math.round(ms)), { stage });
  }

  replyRejected(stage: LlmStage, check: string): void {
    this.rejections.add(1, { stage, check });
  }

  /** One storage activity's result; `counts` by intent, bytes appended. */
  stored(kind: 'dialogues' | 'failures', run: string, counts: Map<string, number>, bytes: number): void {
    this.batches.add(1, { kind });
    if (bytes > 0) this.bytes.add(bytes, { kind });
    const counter = kind === 'dialogues' ? this.written : this.failed;
    for (const [intent, count] of counts)
      if (count > 0) counter.add(count, { run, intent } satisfies MetricTags);
  }
}

const RATE_LIMITED: string = LLM_FAILURE_TYPES.rateLimit;

/** Package metrics that record nothing (libraries and tests that pass no meter). */
export const noMetrics = new PackageMetrics();
