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

/**
 * Adaptive pacing. Only a dense run of 429s (a real limit, not an occasional one) slows the whole
 * process: the pace then starts just under the rate the endpoint accepted, falls while 429s stay
 * dense and grows back while they are rare. Dense is judged over the last `window` outcomes only once
 * there are that many: random 429s at 5% put 13 of 50 (the threshold) out of reach, while a real limit
 * refuses a third or more of the calls. Until then each refused call waits on its own Retry-After;
 * once a limit is known, the last `paceWindow` outcomes steer the pace.
 */
const ADAPTIVE = {
  window: 50,
  /** Once a real limit is known, the pace follows the last this many outcomes: it reacts faster. */
  paceWindow: 20,
  denseShare: 0.25,
  rareShare: 0.1,
  decrease: 0.7,
  decreaseEveryMs: 2_000,
  increasePerSuccess: 0.01,
  minPerSecond: 1 / 60,
} as const;

export class RateController {
  private requestBucket?: Bucket;
  private tokenBucket?: Bucket;
  private limitsKey = '';
  private coolDownUntil = 0;
  /** Requests per second once the endpoint has pushed back hard; undefined until then. */
  private pace: number | undefined;
  private nextSlot = 0;
  private lastDecrease = 0;
  /** Start times of recent successful calls, to measure the rate the endpoint accepted. */
  private readonly recent: number[] = [];
  /** The last outcomes, true for a 429. */
  private readonly outcomes: boolean[] = [];
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

  /** Share of 429s among the last outcomes: all `window` of them, or the last `paceWindow` once a limit was found. */
  private record(rateLimited: boolean): number {
    this.outcomes.push(rateLimited);
    if (this.outcomes.length > ADAPTIVE.window) this.outcomes.shift();
    const recent = this.pace === undefined ? this.outcomes : this.outcomes.slice(-ADAPTIVE.paceWindow);
    return recent.filter(Boolean).length / recent.length;
  }

  /**
   * After a 429. The call itself waits its Retry-After through Temporal's next retry delay; when 429s
   * are dense, every call in this process waits too and the pace drops.
   */
  coolDown(retryAfterMs: number): void {
    const now = Date.now();
    this.rateLimitedCount++;
    const share = this.record(true);
    if (this.outcomes.length < ADAPTIVE.window || share < ADAPTIVE.denseShare) return;
    this.coolDownUntil = Math.max(this.coolDownUntil, now + retryAfterMs);
    if (this.pace === undefined) {
      const accepted = this.recent.filter((t) => t > now - 60_000);
      const spanSeconds = Math.max(1, (now - (accepted[0] ?? now)) / 1000);
      this.pace = Math.max(ADAPTIVE.minPerSecond, (accepted.length / spanSeconds) * 0.9);
      this.lastDecrease = now;
    } else if (now - this.lastDecrease >= ADAPTIVE.decreaseEveryMs) {
      this.pace = Math.max(ADAPTIVE.minPerSecond, this.pace * ADAPTIVE.decrease);
      this.lastDecrease = now;
    }
  }

  /** After a successful call: remember it and let the pace grow back while 429s are rare. */
  succeeded(): void {
    const now = Date.now();
    this.recent.push(now);
    while (this.recent.length > 0 && this.recent[0]! < now - 60_000) this.recent.shift();
    const share = this.record(false);
    if (this.pace !== undefined && share < ADAPTIVE.rareShare) this.pace *= 1 + ADAPTIVE.increasePerSuccess;
  }

  /** The adaptive pace in requests per second, once dense 429s set it. */
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
