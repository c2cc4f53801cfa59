import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { STORAGE_FAILURE_TYPES, toStorageFailure } from '../../src/activities/errors';
import { LOCK_STALE_MS, LockLostError } from '../../src/storage/jsonl-store';
import { startStoreHolder } from '../helpers/store-holder';

const ids = async (dir: string) =>
  (await readFile(join(dir, 'dialogs.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { id: string }).id);

test('jsonl store: a holder whose lock was taken over by another host stops writing and leaves the new lock alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cc-takeover-'));
  const lockPath = join(dir, '.lock');
  // The old holder's heartbeat ticks often, so it would touch the lock soon after it wakes.
  const old = startStoreHolder(dir, 'host-a', 50);
  t.after(async () => {
    old.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  await old.ready;
  assert.deepEqual(await old.ask('append a-1'), { status: 'written' });

  // The old holder hangs (stopped) long enough for its lock to look dead to another host.
  old.child.kill('SIGSTOP');
  const longAgo = new Date(Date.now() - LOCK_STALE_MS - 10_000);
  await utimes(lockPath, longAgo, longAgo);
  // The new holder's own heartbeat stays quiet for the whole test: any touch of its lock is the old one's.
  const taker = startStoreHolder(dir, 'host-b', 3_600_000);
  t.after(() => taker.child.kill('SIGKILL'));
  await taker.ready;
  const newLock = await readFile(lockPath, 'utf8');
  assert.match(newLock, /"hostname":"host-b"/);
  assert.deepEqual(await taker.ask('append b-1'), { status: 'written' });
  const quiet = new Date(Math.floor(Date.now() / 1000) * 1000 - 5_000); // whole seconds: exact in mtime
  await utimes(lockPath, quiet, quiet);

  old.child.kill('SIGCONT');
  const refused = await old.ask('append a-2');
  assert.equal(refused.error, 'LockLostError', JSON.stringify(refused));
  assert.match(String(refused.message), /lost its lock .*stopped writing there/);
  assert.deepEqual(await old.ask('append a-3'), refused, 'it stays stopped');
  const indexPath = join(dir, '.dialogs.jsonl.index');
  const indexBefore = await readFile(indexPath, 'utf8').catch(() => 'absent');
  assert.deepEqual(await old.ask('close'), { closed: true });
  assert.equal(
    await readFile(indexPath, 'utf8').catch(() => 'absent'),
    indexBefore,
    'closing, the old holder saves no index over the new one',
  );

  assert.deepEqual(await taker.ask('append b-2'), { status: 'written' });
  assert.deepEqual(await ids(dir), ['a-1', 'b-1', 'b-2']);
  assert.equal(await readFile(lockPath, 'utf8'), newLock, "the new holder's lock is still there");
  assert.equal((await stat(lockPath)).mtimeMs, quiet.getTime(), 'and the old holder never touched it');
  assert.deepEqual(await taker.ask('close'), { closed: true });
});

test('storage activities: a lost lock fails the write as a retryable Storage.LockLost', () => {
  const failure = toStorageFailure(new LockLostError('lost')) as ApplicationFailure;
  assert.ok(failure instanceof ApplicationFailure);
  assert.equal(failure.type, STORAGE_FAILURE_TYPES.lockLost);
  assert.equal(failure.nonRetryable, false, 'a retry may land on the worker that holds the lock');
});
