import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
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

test('dev server: a start that loses its port to another process is retried on new ports', async () => {
  const real = process.env.TEMPORAL_CLI_PATH;
  assert.ok(real, 'TEMPORAL_CLI_PATH is set by scripts/setup.sh (npm test)');
  const dir = await tempDir();
  // Fails once the way the server does when a picked port was taken in between, then is the real CLI.
  const flaky = join(dir, 'temporal');
  await writeFile(
    flaky,
    `#!/bin/sh
if [ ! -e "${dir}/failed" ]; then
  touch "${dir}/failed"
  echo '{"level":"FATAL","message":"listen tcp 127.0.0.1:1: bind: address already in use"}'
  exit 1
fi
exec "${real}" "$@"
`,
  );
  await chmod(flaky, 0o755);
  const server = await startDevServer({
    stateFile: join(dir, 'state.json'),
    logFile: join(dir, 'log'),
    env: { TEMPORAL_CLI_PATH: flaky },
  });
  try {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.match(await readFile(join(dir, 'log'), 'utf8'), /address already in use/);
  } finally {
    await server.stop();
  }
});

test('dev server: a port that stays taken fails with the server’s own reason', async () => {
  const dir = await tempDir();
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const { port } = holder.address() as AddressInfo;
  try {
    await assert.rejects(
      startDevServer({
        stateFile: join(dir, 'state.json'),
        logFile: join(dir, 'log'),
        uiPort: port,
      }),
      (error: Error) =>
        error.message.includes('address already in use') && error.message.includes(join(dir, 'log')),
    );
  } finally {
    holder.close();
  }
});
