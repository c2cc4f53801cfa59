import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findExecutable, startDevServer, TEMPORAL_INSTALL_HINT } from '../../src/client/dev-server';
import { tempDir } from '../helpers/temporal';

test('dev server: the binary is taken from the environment variable first, then PATH', async () => {
  const dir = await tempDir();
  const fake = join(dir, 'temporal');
  await writeFile(fake, '#!/bin/sh\n');
  await chmod(fake, 0o755);
  assert.equal(findExecutable('temporal', 'TEMPORAL_CLI_PATH', { TEMPORAL_CLI_PATH: fake, PATH: '' }), fake);
  assert.equal(findExecutable('temporal', 'TEMPORAL_CLI_PATH', { PATH: `/nonexistent:${dir}` }), fake);
  assert.equal(findExecutable('temporal', 'TEMPORAL_CLI_PATH', { PATH: '/nonexistent' }), undefined);
  assert.throws(
    () => findExecutable('temporal', 'TEMPORAL_CLI_PATH', { TEMPORAL_CLI_PATH: join(dir, 'missing') }),
    /TEMPORAL_CLI_PATH/,
  );
});

test('dev server: with no binary and no way to download one, start fails with the install hint instead of hanging', async () => {
  const dir = await tempDir();
  const started = Date.now();
  await assert.rejects(
    startDevServer({
      dbFile: join(dir, 'db'),
      stateFile: join(dir, 'state.json'),
      logFile: join(dir, 'log'),
      env: { PATH: '/nonexistent' },
      downloadTimeoutMs: 20_000,
    }),
    (error: Error) => error.message.includes(TEMPORAL_INSTALL_HINT),
  );
  assert.ok(Date.now() - started < 30_000);
});
