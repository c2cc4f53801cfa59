import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { processStartTime, startDevServer } from '../../src/client/dev-server';
import { serveUi } from '../../src/client/ui';
import { alive } from '../../src/shared/process';
import { tempDir } from '../helpers/temporal';

test("ui: a recorded server pid now held by another process is not taken for the run's server", async () => {
  const dir = await tempDir('cc-ui-');
  const stateDir = join(dir, '.temporal');
  await mkdir(stateDir);
  const dbFile = join(stateDir, 'temporal.db');
  // A run's history, as a finished generate leaves it: a database its server made, and stopped.
  const first = await startDevServer({
    dbFile,
    stateFile: join(stateDir, 'first.json'),
    logFile: join(stateDir, 'server.log'),
  });
  await first.stop();
  // The pid the state file names is alive, but it is a sleep, not the server (a reused pid).
  const other = spawn('sleep', ['600'], { stdio: 'ignore' });
  await once(other, 'spawn');
  try {
    await writeFile(
      join(stateDir, 'server.json'),
      JSON.stringify({
        pid: other.pid,
        address: '127.0.0.1:1',
        uiUrl: 'http://127.0.0.1:2',
        dbFile,
        startTime: processStartTime(other.pid!),
      }),
    );
    assert.ok(alive(other.pid!));
    const printed: string[] = [];
    await serveUi({ dir, until: Promise.resolve(), print: (line) => printed.push(line) });
    assert.ok(!printed.some((l) => /the run's server is up/.test(l)), printed.join('\n'));
    assert.match(printed.join('\n'), /^Temporal UI of /m, 'it started a server of its own');
  } finally {
    other.kill('SIGKILL');
  }
});
