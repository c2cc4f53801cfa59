import { proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '1 minute' });

/** Runs `n` no-op activities one after another. */
export async function sequentialNoops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await noop();
}

/** Runs `n` no-op activities, `window` of them at a time: Temporal's own ceiling on activities/s. */
export async function windowedNoops(n: number, window: number): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < n) {
      started++;
      await noop();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
}
