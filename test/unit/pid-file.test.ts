import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isRecordedServer, processStartTime, startDevServer } from '../../src/client/dev-server';
import { quietRuntime, tempDir } from '../helpers/temporal';
import { alive } from '../../src/shared/process';

const children: ChildProcess[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** A long-lived process with the given arguments in its command line; it is not a Temporal server. */
async function bystander(...args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', ...args], {
    stdio: 'ignore',
  });
  children.push(child);
  await new Promise<void>((resolve) => child.once('spawn', () => resolve()));
  return child;
}

describe('pid file', () => {
  test('pid file: a recorded pid counts as the server only with its command line, database and start time', async () => {
    const db = '/tmp/cc-pid/temporal.db';
    const lookalike = await bystander('server', 'start-dev', '--db-filename', db);
    const pid = lookalike.pid!;
    const startTime = processStartTime(pid);
    assert.ok(startTime, 'start time read from /proc');
    assert.equal(isRecordedServer({ pid, dbFile: db, startTime }), true);
    assert.equal(
      isRecordedServer({ pid, dbFile: db, startTime: String(Number(startTime) + 1) }),
      false,
      'pid reused',
    );
    assert.equal(
      isRecordedServer({ pid, dbFile: '/elsewhere/temporal.db', startTime }),
      false,
      'other database',
    );
    const unrelated = await bystander('--some', 'thing');
    assert.equal(isRecordedServer({ pid: unrelated.pid!, dbFile: db }), false, 'not a dev server');
    assert.equal(isRecordedServer({ pid: 1, dbFile: db }), false, 'never init');
    assert.equal(isRecordedServer({ pid: 2 ** 22 + 7, dbFile: db }), false, 'no such process');
  });

  test('pid file: a stale state file naming an unrelated live process does not get it killed', async () => {
    quietRuntime();
    const dir = await tempDir('cc-pid-');
    const dbFile = join(dir, 'temporal.db');
    const stateFile = join(dir, 'server.json');
    // The pid of a crashed server, reused since by some other program.
    const victim = await bystander('--not-temporal');
    await writeFile(
      stateFile,
      JSON.stringify({ pid: victim.pid, address: '127.0.0.1:1', uiUrl: 'http://127.0.0.1:2', dbFile }),
    );
    const server = await startDevServer({ dbFile, stateFile, logFile: join(dir, 'server.log') });
    try {
      assert.ok(alive(victim.pid!), 'the unrelated process lives');
      const state = JSON.parse(await readFile(stateFile, 'utf8')) as { pid: number; startTime?: string };
      assert.equal(state.pid, server.pid);
      assert.equal(state.startTime, processStartTime(server.pid), 'the new state records the start time');

      // A server left behind by a killed parent is recognised and stopped before a new one starts.
      const second = await startDevServer({ dbFile, stateFile, logFile: join(dir, 'server.log') });
      assert.equal(alive(server.pid), false, 'the left-behind server was stopped');
      await second.stop();
    } finally {
      await server.stop();
    }
    assert.ok(alive(victim.pid!), 'still alive at the end');
  });
});
