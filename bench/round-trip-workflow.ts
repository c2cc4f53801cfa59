import { proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '1 minute' });

/** Runs `n` no-op activities one after another. */
export async function sequentialNoops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await noop();
}
