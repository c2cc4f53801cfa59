/**
 * What a normal call of an endpoint+model looks like in this worker process, learnt as the run goes, so
 * that a hung call is cut after a few times the normal instead of the fixed idle timeout (`idleMs`).
 *
 * Two timings per call: the time to the first token (from sending the request; prefill grows with the
 * prompt, so it is kept with the prompt's size) and the longest gap between two arrivals of bytes after
 * it. A call's longest gap, not every gap, is the sample: rare pauses that most calls meet once (a
 * batch preempted, a slow endpoint's steady pace) are then part of the normal. The limit is
 * `clamp(factor × p99, floorMs, ceiling)`, with the ceiling (`idleMs`) alone until `minSamples` calls
 * were seen. Calls cut as stalled are not samples, so hangs do not teach the detector that hangs are normal.
 */
import { z } from 'zod';

export const stallDetectorOptionsSchema = z
  .object({
    /** A call is cut beyond this multiple of the learnt quantile. @default 3 */
    factor: z.number().min(1).max(100).default(3),
    /** The quantile of the samples that is "normal". @default 0.99 */
    quantile: z.number().gt(0).max(1).default(0.99),
    /** Samples (calls) before the detector adapts; until then the ceiling applies. @default 20 */
    minSamples: z.number().int().min(1).max(100_000).default(20),
    /** Most recent samples kept per endpoint+model and timing. @default 500 */
    window: z.number().int().min(1).max(100_000).default(500),
    /** Never cut a call sooner than this, whatever was learnt (event-loop pauses, GC). @default 2,000 ms */
    floorMs: z.number().int().min(0).max(3_600_000).default(2_000),
    /**
     * When more than this share of the last 20 calls that ended (completed or cut) were cut, the
     * endpoint may have changed pace (slowed down for everyone, a queue formed): each cut beyond the
     * share doubles the limits, up to the ceiling, until completed calls bring the share down and their
     * timings into the samples. Without it, a slower endpoint would have every call cut, and cut calls
     * teach nothing; doubling, rather than falling back to the ceiling, keeps a few hangs that
     * cluster among the last retries of a run from costing the ceiling each. @default 0.2
     */
    relaxAboveCutShare: z.number().min(0).max(1).default(0.2),
  })
  .strict();
export type StallDetectorOptions = z.output<typeof stallDetectorOptionsSchema>;
export type StallDetectorSettings = z.input<typeof stallDetectorOptionsSchema>;

/** A fixed-size window of the most recent values, with a cached sorted copy for quantiles. */
class RecentSamples {
  private readonly values: number[] = [];
  private next = 0;
  private sorted: number[] | undefined;

  constructor(private readonly size: number) {}

  get count(): number {
    return this.values.length;
  }

  add(value: number): void {
    if (this.values.length < this.size) this.values.push(value);
    else this.values[this.next] = value;
    this.next = (this.next + 1) % this.size;
    this.sorted = undefined;
  }

  /** Nearest-rank quantile: with fewer than 1/(1−q) samples it is the largest one. */
  quantile(q: number): number {
    this.sorted ??= [...this.values].sort((a, b) => a - b);
    const rank = Math.min(this.sorted.length, Math.max(1, Math.ceil(q * this.sorted.length)));
    return this.sorted[rank - 1] ?? 0;
  }
}

/** How many of the last calls that ended decide whether the limits are relaxed. */
const OUTCOMES = 20;

/** Timings of one endpoint+model. */
export class EndpointTimings {
  private readonly firstToken: RecentSamples;
  private readonly promptTokens: RecentSamples;
  private readonly longestGap: RecentSamples;
  /** The last calls that ended, 1 for cut and 0 for completed. */
  private readonly outcomes: number[] = [];
  private cuts = 0;

  constructor(private readonly options: StallDetectorOptions) {
    this.firstToken = new RecentSamples(options.window);
    this.promptTokens = new RecentSamples(options.window);
    this.longestGap = new RecentSamples(options.window);
  }

  /** A call ended: completed, or cut as stalled. */
  recordOutcome(cut: boolean): void {
    this.outcomes.push(cut ? 1 : 0);
    this.cuts += cut ? 1 : 0;
    if (this.outcomes.length > OUTCOMES) this.cuts -= this.outcomes.shift()!;
  }

  /** A call's time from its request to its first token, and the prompt it sent. */
  recordFirstToken(ms: number, promptTokens: number): void {
    this.firstToken.add(ms);
    this.promptTokens.add(promptTokens);
  }

  /** A completed stream's longest gap between arrivals after its first token. */
  recordLongestGap(ms: number): void {
    this.longestGap.add(ms);
  }

  /** 1, or 2^(cuts beyond the allowed share of the last calls that ended). */
  private get relax(): number {
    const excess = this.cuts - Math.floor(this.options.relaxAboveCutShare * OUTCOMES);
    return excess > 0 ? 2 ** excess : 1;
  }

  /**
   * How long a call of `promptTokens` may wait for its first token, from its request; undefined until
   * learnt. A prompt longer than the typical (median) one gets an allowance scaled in proportion:
   * prefill is at most linear in the prompt beyond a fixed cost, so this over-allows rather than cuts a
   * long prefill.
   */
  firstTokenLimitMs(promptTokens: number, ceilingMs: number): number | undefined {
    if (this.firstToken.count < this.options.minSamples) return undefined;
    const typical = Math.max(1, this.promptTokens.quantile(0.5));
    const scale = Math.max(1, promptTokens / typical);
    return this.clamp(
      this.options.factor * this.relax * this.firstToken.quantile(this.options.quantile) * scale,
      ceilingMs,
    );
  }

  /** How long a call may go without bytes once its first token came; undefined until learnt. */
  gapLimitMs(ceilingMs: number): number | undefined {
    if (this.longestGap.count < this.options.minSamples) return undefined;
    return this.clamp(
      this.options.factor * this.relax * this.longestGap.quantile(this.options.quantile),
      ceilingMs,
    );
  }

  private clamp(ms: number, ceilingMs: number): number {
    return Math.round(Math.min(ceilingMs, Math.max(this.options.floorMs, ms)));
  }
}

/** The timings of every endpoint+model this process calls. */
export class StallDetector {
  readonly options: StallDetectorOptions;
  private readonly byEndpoint = new Map<string, EndpointTimings>();

  constructor(settings: StallDetectorSettings = {}) {
    this.options = stallDetectorOptionsSchema.parse(settings);
  }

  timings(baseURL: string, model: string): EndpointTimings {
    const key = `${baseURL}|${model}`;
    let timings = this.byEndpoint.get(key);
    if (!timings) this.byEndpoint.set(key, (timings = new EndpointTimings(this.options)));
    return timings;
  }
}

/** Raised when a call waits far longer than the endpoint's normal: treated as hung, retryable. */
export class StallError extends Error {
  constructor(
    readonly phase: 'first token' | 'between chunks',
    readonly waitedMs: number,
    readonly limitMs: number,
  ) {
    super(
      `${phase === 'first token' ? `no first token from the LLM endpoint after ${waitedMs} ms` : `no data from the LLM endpoint for ${waitedMs} ms between chunks`} (limit ${limitMs} ms): the call is treated as hung`,
    );
    this.name = 'StallError';
  }
}

/**
 * Watches one streamed call: `data()` on every arrival of bytes, `firstToken()` once the first token
 * came. `check(now)` tells whether the call is past its limit; `finish()` books the call's timings
 * (only for a completed stream). The limit is read from the timings at each check, so a call started
 * before the detector learnt benefits from what it learnt since.
 */
export class CallWatch {
  private readonly started: number;
  private lastData: number;
  private tokenAt: number | undefined;
  private longestGap = 0;

  constructor(
    private readonly timings: EndpointTimings,
    private readonly promptTokens: number,
    private readonly ceilingMs: number,
    now = Date.now(),
  ) {
    this.started = now;
    this.lastData = now;
  }

  data(now = Date.now()): void {
    if (this.tokenAt !== undefined && now - this.lastData > this.longestGap)
      this.longestGap = now - this.lastData;
    this.lastData = now;
  }

  firstToken(now = Date.now()): void {
    if (this.tokenAt !== undefined) return;
    this.tokenAt = now;
    this.lastData = now;
    this.timings.recordFirstToken(now - this.started, this.promptTokens);
  }

  /** The moment the call is due to be cut unless bytes (or, before its first token, the token) arrive. */
  deadline(): number {
    return this.limit().deadline;
  }

  /** A `StallError` when the call is past its deadline at `now`. */
  check(now = Date.now()): StallError | undefined {
    const { deadline, phase, since, limitMs } = this.limit();
    return now < deadline ? undefined : new StallError(phase, now - since, limitMs);
  }

  /**
   * Until learnt, the ceiling counts from the last bytes in either phase, as the fixed idle timeout
   * did; once learnt, the first token's limit counts from the request and the gap's from the last bytes.
   */
  private limit(): { deadline: number; phase: StallError['phase']; since: number; limitMs: number } {
    if (this.tokenAt === undefined) {
      const limitMs = this.timings.firstTokenLimitMs(this.promptTokens, this.ceilingMs);
      if (limitMs !== undefined)
        return { deadline: this.started + limitMs, phase: 'first token', since: this.started, limitMs };
      return {
        deadline: this.lastData + this.ceilingMs,
        phase: 'first token',
        since: this.lastData,
        limitMs: this.ceilingMs,
      };
    }
    const limitMs = this.timings.gapLimitMs(this.ceilingMs) ?? this.ceilingMs;
    return { deadline: this.lastData + limitMs, phase: 'between chunks', since: this.lastData, limitMs };
  }

  /** Books the longest gap of a stream that completed. */
  finish(now = Date.now()): void {
    this.timings.recordOutcome(false);
    if (this.tokenAt === undefined) return;
    this.data(now);
    this.timings.recordLongestGap(this.longestGap);
  }

  /** Books a cut: it is no sample, but too many of them relax the learnt limits. */
  cut(): void {
    this.timings.recordOutcome(true);
  }
}
