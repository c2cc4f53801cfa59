/**
 * Per-process rate control in front of the LLM endpoint: optional requests/min and tokens/min budgets;
 * a shared cool-down after a 429 so one rate-limited call pauses its siblings; and, once the endpoint
 * has said 429, an adaptive pace (multiplicative decrease on 429, slow increase on success) that
 * settles just under the endpoint's limit instead of bursting into it. Waiting callers keep
 * heartbeating through `onWait`.
 */
export interface RateLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

/** A token bucket refilled continuously; capacity is one minute's budget spread over `burstMs`. */
class Bucket {
  private tokens: number;
  private last = Date.now();
  constructor(
    private readonly perMinute: number,
    private readonly capacity: number,
  ) {
    this.tokens = capacity;
  }
  /** Milliseconds until `amount` is available (0 = take it now). */
  take(amount: number): number {
    const now = Date.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
    const need = Math.min(amount, this.capacity);
    if (this.tokens >= need) {
      this.tokens -= need;
      return 0;
    }
    return Math.ceil(((need - this.tokens) * 60_000) / this.perMinute);
  }
  /** Returns unused tokens (an estimate that was too high) or charges more. */
  adjust(delta: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + delta);
  }
}

/** How long a burst may be: a one-second slice of the per-minute budget, at least one request. */
const BURST_MS = 1_000;

/** Adaptive pacing after 429s: how fast the pace falls and grows back. */
const ADAPTIVE = {
  decrease: 0.85,
  increasePerSuccess: 0.003,
  minPerSecond: 1 / 60,
  decreaseEveryMs: 1_000,
} as const;

export class RateController {
  private requestBucket?: Bucket;
  private tokenBucket?: Bucket;
  private limitsKey = '';
  private coolDownUntil = 0;
  /** Requests per second once the endpoint has pushed back; undefined until the first 429. */
  private pace: number | undefined;
  private nextSlot = 0;
  private lastDecrease = 0;
  /** Start times of recent successful calls, to measure the rate the endpoint accepted. */
  private readonly recent: number[] = [];
  rateLimitedCount = 0;

  configure(limits: RateLimits): void {
    const key = `${limits.requestsPerMinute ?? ''}/${limits.tokensPerMinute ?? ''}`;
    if (key === this.limitsKey) return;
    this.limitsKey = key;
    const rpm = limits.requestsPerMinute;
    const tpm = limits.tokensPerMinute;
    this.requestBucket = rpm ? new Bucket(rpm, Math.max(1, (rpm * BURST_MS) / 60_000)) : undefined;
    this.tokenBucket = tpm ? new Bucket(tpm, Math.max(1, (tpm * BURST_MS) / 60_000) * 4) : undefined;
  }

  /** After a 429: nobody in this process calls again before `retryAfterMs` has passed, and the pace drops. */
  coolDown(retryAfterMs: number): void {
    const now = Date.now();
    this.rateLimitedCount++;
    this.coolDownUntil = Math.max(this.coolDownUntil, now + retryAfterMs);
    if (this.pace === undefined) {
      // Start just under the rate the endpoint accepted recently (over up to a minute).
      const accepted = this.recent.filter((t) => t > now - 60_000);
      const spanSeconds = Math.max(1, (now - (accepted[0] ?? now)) / 1000);
      this.pace = Math.max(ADAPTIVE.minPerSecond, (accepted.length / spanSeconds) * ADAPTIVE.decrease);
      this.lastDecrease = now;
    } else if (now - this.lastDecrease >= ADAPTIVE.decreaseEveryMs) {
      this.pace = Math.max(ADAPTIVE.minPerSecond, this.pace * ADAPTIVE.decrease);
      this.lastDecrease = now;
    }
  }

  /** After a successful call: remember it and let the pace grow back slowly. */
  succeeded(): void {
    const now = Date.now();
    this.recent.push(now);
    while (this.recent.length > 0 && this.recent[0]! < now - 60_000) this.recent.shift();
    if (this.pace !== undefined) this.pace *= 1 + ADAPTIVE.increasePerSuccess;
  }

  /** The adaptive pace in requests per second, once a 429 set it. */
  get currentPace(): number | undefined {
    return this.pace;
  }

  /** Waits until a call with about `estimatedTokens` may start. */
  async acquire(estimatedTokens: number, signal: AbortSignal, onWait: () => void): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const now = Date.now();
      let wait = Math.max(0, this.coolDownUntil - now);
      if (wait === 0 && this.pace !== undefined) {
        wait = Math.max(0, this.nextSlot - now);
        if (wait === 0) this.nextSlot = Math.max(now, this.nextSlot) + 1000 / this.pace;
      }
      if (wait === 0 && this.requestBucket) wait = this.requestBucket.take(1);
      if (wait === 0 && this.tokenBucket) {
        wait = this.tokenBucket.take(estimatedTokens);
        if (wait > 0) this.requestBucket?.adjust(1);
      }
      if (wait === 0) return;
      onWait();
      await sleep(Math.min(wait, 1_000), signal);
    }
  }

  /** Corrects the token budget once the real usage is known. */
  settle(estimatedTokens: number, actualTokens: number): void {
    this.tokenBucket?.adjust(estimatedTokens - actualTokens);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
