/** A loop that runs `tick` every `intervalMs` until stopped. */
export interface Poller {
  /** Ends the loop, cutting the pause between two ticks short; resolves when the last tick is over. */
  stop(): Promise<void>;
}

/**
 * Runs `tick` at once and then every `intervalMs` until `stop()`. A tick that throws is skipped (the
 * next tick, or whatever the caller awaits beside the loop, says what went wrong); a tick running when
 * `stop()` is called is finished, never cut off.
 */
export function pollUntilStopped(intervalMs: number, tick: () => Promise<void>): Poller {
  let done = false;
  let wake = () => {};
  const loop = (async () => {
    while (!done) {
      await tick().catch(() => undefined);
      if (done) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  return {
    stop: () => {
      done = true;
      wake();
      return loop;
    },
  };
}
