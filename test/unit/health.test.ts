import assert from 'node:assert/strict';
import { stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { State } from '@temporalio/worker';
import { HEALTH_MAX_AGE_MS, isHealthy, keepHealthFile } from '../../src/health';
import { runCli } from '../helpers/cli';
import { tempDir } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

test('health: the file is touched while the worker runs, and not once it stops', async () => {
  const file = join(await tempDir(), 'health');
  let state: State = 'INITIALIZED';
  const stop = keepHealthFile(file, { getState: () => state });
  try {
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(isHealthy(file), false, 'not healthy before the worker runs');
    state = 'RUNNING';
    await waitFor(() => isHealthy(file), 15_000, 'the health file to be written');
    // Once the worker drains, the file ages out.
    state = 'DRAINING';
    const old = new Date(Date.now() - HEALTH_MAX_AGE_MS - 1_000);
    await utimes(file, old, old);
    await new Promise((r) => setTimeout(r, 6_000));
    assert.equal(isHealthy(file), false, 'a draining worker does not refresh its file');
    assert.ok((await stat(file)).mtimeMs < Date.now() - HEALTH_MAX_AGE_MS);
  } finally {
    stop();
  }
});

test('health: `consistent-chat health` exits 0 for a fresh file, non-zero for a stale or missing one', async () => {
  const dir = await tempDir();
  const fresh = join(dir, 'fresh');
  const stale = join(dir, 'stale');
  await writeFile(fresh, '1\n');
  await writeFile(stale, '1\n');
  const old = new Date(Date.now() - HEALTH_MAX_AGE_MS - 5_000);
  await utimes(stale, old, old);
  const results = await Promise.all([
    runCli(['health'], { CONSISTENT_CHAT_HEALTH_FILE: fresh }),
    runCli(['health', '--file', stale]),
    runCli(['health', '--file', join(dir, 'missing')]),
  ]);
  assert.deepEqual(
    results.map((r) => r.code),
    [0, 1, 1],
    results.map((r) => r.stdout + r.stderr).join(' | '),
  );
  assert.match(results[1].stdout, /^unhealthy: /);
});
