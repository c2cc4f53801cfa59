/** Runs the real Python dataset consumers (`datasets`, `pandas`; installed by scripts/setup.sh). */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const CONSUMERS = resolve(__dirname, 'consumers.py');
export const PYTHON = process.env.PYTHON ?? 'python3';

export interface LoaderView {
  loader: string;
  rows: number;
  columns: string[];
  row: Record<string, unknown>;
}

/** What `datasets` and `pandas` read from an export: per loader, row count, columns and one row. */
export async function loadWithConsumers(
  kind: 'jsonl' | 'hf',
  path: string,
  index: number,
): Promise<{ datasets: LoaderView[]; pandas: LoaderView[] }> {
  // Offline, with a cache of its own: the test must not reach the Hub or share a cache.
  const home = await mkdtemp(join(tmpdir(), 'cc-hf-home-'));
  const { stdout } = await promisify(execFile)(PYTHON, [CONSUMERS, kind, path, String(index)], {
    env: {
      ...process.env,
      HF_HOME: home,
      HF_DATASETS_OFFLINE: '1',
      HF_HUB_OFFLINE: '1',
      HF_HUB_DISABLE_TELEMETRY: '1',
    },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 180_000,
  });
  return JSON.parse(stdout) as { datasets: LoaderView[]; pandas: LoaderView[] };
}
