/**
 * The worker-side bound on a run's LLM calls in flight. Intent workflows schedule a few activities
 * beyond their share (`scheduleAhead`); those wait here, started and heartbeating, and take the slot a
 * finishing call frees at once, without waiting for a workflow to react to the completion and schedule
 * the next call. One gate per run and worker, shared by all the run's intents, so an intent near its
 * end leaves its slots to the others instead of holding them.
 */

/** A slot taken from a run's gate; `release` is idempotent. */
export interface GateSlot {
  release(): void;
}

interface Gate {
  limit: number;
  /** When the activity that set `limit` was scheduled: an older activity's limit does not replace it. */
  limitSince: number;
  holders: number;
  /** FIFO: the activity scheduled first calls first. */
  waiters: (() => void)[];
}

/** How often an activity waiting for a slot heartbeats, so the server knows it is alive. */
const WAIT_HEARTBEAT_MS = 1_000;

export class RunGates {
  private readonly gates = new Map<string, Gate>();

  /**
   * Waits for one of the run's `limit` slots on this worker. The run's concurrency can change while it
   * runs: the limit of the most recently scheduled activity (`scheduledAt`, ms) wins. Rejects when
   * `signal` aborts.
   */
  async acquire(
    key: string,
    limit: number,
    scheduledAt: number,
    signal: AbortSignal,
    onWait: () => void,
  ): Promise<GateSlot> {
    signal.throwIfAborted();
    let gate = this.gates.get(key);
    if (!gate) {
      gate = { limit, limitSince: scheduledAt, holders: 0, waiters: [] };
      this.gates.set(key, gate);
    }
    if (scheduledAt >= gate.limitSince) {
      gate.limit = Math.max(1, limit);
      gate.limitSince = scheduledAt;
    }
    // A raised limit lets waiters in now.
    this.wake(gate);
    if (gate.holders < gate.limit && gate.waiters.length === 0) {
      gate.holders++;
      return this.slot(key, gate);
    }
    await new Promise<void>((resolve, reject) => {
      const g = gate;
      const timer = setInterval(onWait, WAIT_HEARTBEAT_MS);
      const admit = () => {
        clearInterval(timer);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        clearInterval(timer);
        const at = g.waiters.indexOf(admit);
        if (at >= 0) g.waiters.splice(at, 1);
        this.forgetIfIdle(key, g);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      g.waiters.push(admit);
    });
    return this.slot(key, gate);
  }

  /** Calls in flight and waiting for a run on this worker (for tests and diagnostics). */
  state(key: string): { limit: number; holders: number; waiting: number } | undefined {
    const gate = this.gates.get(key);
    return gate && { limit: gate.limit, holders: gate.holders, waiting: gate.waiters.length };
  }

  private slot(key: string, gate: Gate): GateSlot {
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        gate.holders--;
        this.wake(gate);
        this.forgetIfIdle(key, gate);
      },
    };
  }

  /** Hands free slots to the longest-waiting callers; each admitted caller counts as a holder at once. */
  private wake(gate: Gate): void {
    while (gate.holders < gate.limit && gate.waiters.length > 0) {
      gate.holders++;
      gate.waiters.shift()!();
    }
  }

  private forgetIfIdle(key: string, gate: Gate): void {
    if (gate.holders === 0 && gate.waiters.length === 0 && this.gates.get(key) === gate)
      this.gates.delete(key);
  }
}
