/**
 * Heartbeats on a timer while an activity waits on something slow (an upload, a download): a worker
 * that dies mid-way is noticed within the heartbeat timeout and the activity retried elsewhere.
 */
import { Context } from '@temporalio/activity';

export async function withHeartbeats<R>(work: () => Promise<R>): Promise<R> {
  const ctx = Context.current();
  const every = Math.max(200, Math.min(10_000, (ctx.info.heartbeatTimeoutMs ?? 30_000) / 3));
  const timer = setInterval(() => ctx.heartbeat(), every);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
