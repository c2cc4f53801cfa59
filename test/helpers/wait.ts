import { cpus, loadavg } from 'node:os';
import type { Client } from '@temporalio/client';

/** Polling for a state reached by other processes, with a bound that names what never happened. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor(
  predicate: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  everyMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Holds calls past the first `admit` until `release()`: a test can then look at a run mid-way as long
 * as it likes, however slow the machine, instead of hoping a delay lands it in the right moment.
 */
export function callGate(admit: number): {
  /** The hook for a fake activity: resolves at once for the first `admit` calls, then on `release()`. */
  pass: () => Promise<void>;
  release: () => void;
  /** Calls admitted and not yet returned from `pass`, plus those held. */
  readonly held: number;
} {
  let admitted = 0;
  let held = 0;
  let open = false;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  return {
    pass: async () => {
      if (open || ++admitted <= admit) return;
      held++;
      await released;
      held--;
    },
    release: () => {
      open = true;
      release();
    },
    get held() {
      return held;
    },
  };
}

/** Activities scheduled or running in these workflows, as the server sees them (0 once a paused run is quiet). */
export async function pendingActivities(client: Client, workflowIds: readonly string[]): Promise<number> {
  let pending = 0;
  for (const id of workflowIds) {
    try {
      pending += (await client.workflow.getHandle(id).describe()).raw.pendingActivities?.length ?? 0;
    } catch {
      // Not started yet: nothing of it is pending.
    }
  }
  return pending;
}

/**
 * `ms` on an idle machine, scaled by the load of the machine the tests share: for the few bounds that
 * are the point of a test (a call must not hang), never for waiting on a state.
 */
export function loadScaled(ms: number): number {
  return ms * Math.max(1, loadavg()[0]! / cpus().length);
}
