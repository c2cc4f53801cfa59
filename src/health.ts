/**
 * A liveness file for container health checks: touched every few seconds while the worker is RUNNING, so
 * `consistent-chat health` (or any check of its age) tells a polling worker from a stopped, draining or
 * failed one. Images without curl or a Temporal CLI need nothing else.
 */
import { statSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import type { Worker } from '@temporalio/worker';

/** How often a running worker touches its health file. */
export const HEALTH_INTERVAL_MS = 5_000;
/** A health file older than this means the worker is not running. @default 30 s */
export const HEALTH_MAX_AGE_MS = 30_000;

/** Starts touching `path` while `worker` runs; returns the function that stops it. */
export function keepHealthFile(path: string, worker: Pick<Worker, 'getState'>): () => void {
  const touch = async () => {
    if (worker.getState() !== 'RUNNING') return;
    const now = new Date();
    await utimes(path, now, now).catch(() => writeFile(path, `${process.pid}\n`));
  };
  void touch().catch(() => undefined);
  const timer = setInterval(() => void touch().catch(() => undefined), HEALTH_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** True when `path` was touched within `maxAgeMs`. */
export function isHealthy(path: string, maxAgeMs = HEALTH_MAX_AGE_MS, now = Date.now()): boolean {
  try {
    return now - statSync(path).mtimeMs < maxAgeMs;
  } catch {
    return false;
  }
}
