/**
 * Per-process rate control in front of the LLM endpoint: optional requests/min and tokens/min budgets,
 * and a shared cool-down after a 429 so one rate-limited call pauses its siblings instead of letting
 * them hammer the endpoint. Waiting callers keep heartbeating through `onWait`.
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

export class RateController {
  private requestBucket?: Bucket;
  private tokenBucket?: Bucket;
  private limitsKey = '';
  private coolDownUntil = 0;
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

  /** After a 429: nobody in this process calls again before `retryAfterMs` has passed. */
  coolDown(retryAfterMs: number): void {
    this.rateLimitedCount++;
    this.coolDownUntil = Math.max(this.coolDownUntil, Date.now() + retryAfterMs);
  }

  /** Waits until a call with about `estimatedTokens` may start. */
  async acquire(estimatedTokens: number, signal: AbortSignal, onWait: () => void): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      let wait = Math.max(0, this.coolDownUntil - Date.now());
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
