import assert from 'node:assert/strict';
import { readdir, readlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsonlStore, StoreRegistry } from '../../src/storage/jsonl-store';
import { testRecord as record } from '../helpers/storage';
import { tempDir } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

/** `dir` ('.') and files below it this process holds open, by name (Linux: /proc/self/fd). */
async function openFilesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === dir) names.push('.');
    else if (target.startsWith(`${dir}/`)) names.push(target.slice(dir.length + 1));
  }
  return names.sort();
}

test('store registry: a store idle for idleCloseMs is closed, its lock and files released, and opened again when asked', async () => {
  const root = await tempDir();
  const dir = join(root, 'run');
  const registry = new StoreRegistry({ root, fsync: false, idleCloseMs: 50 });
  try {
    const store = await registry.get(dir);
    assert.equal((await store.appendDialogue(record('r.a.0'))).status, 'written');
    await waitFor(() => registry.openDirs.length === 0, 10_000, 'the idle store to be closed');
    assert.equal(existsSync(join(dir, '.lock')), false, 'its lock is released');
    assert.deepEqual(await openFilesIn(dir), [], 'and no file of it stays open');
    const again = await registry.get(dir);
    assert.notEqual(again, store);
    assert.equal((await again.appendDialogue(record('r.a.0'))).status, 'duplicate');
    assert.equal((await again.appendDialogue(record('r.a.1'))).status, 'written');
    await assert.rejects(store.appendDialogue(record('r.a.2')), /is closed/);
  } finally {
    await registry.closeAll();
  }
});

test('store registry: a store used or writing within idleCloseMs stays open', async () => {
  const root = await tempDir();
  const dir = join(root, 'run');
  const idleCloseMs = 60 * 60_000;
  const registry = new StoreRegistry({ root, idleCloseMs });
  try {
    const store = await registry.get(dir);
    await registry.closeIdle(Date.now() + idleCloseMs / 2);
    assert.deepEqual(registry.openDirs, [dir], 'used recently');
    // A write in progress keeps it open however old its last use.
    const writing = store.appendDialogue(record('r.a.0'));
    assert.equal(store.busy, true);
    await registry.closeIdle(Date.now() + 2 * idleCloseMs);
    assert.deepEqual(registry.openDirs, [dir], 'still writing');
    assert.equal((await writing).status, 'written');
    await registry.closeIdle(Date.now() + 2 * idleCloseMs);
    assert.deepEqual(registry.openDirs, [], 'idle at last');
  } finally {
    await registry.closeAll();
  }
});

test('jsonl store: close releases the lock, the other file and the directory even when one step throws', async () => {
  const root = await tempDir();
  const dir = join(root, 'run');
  const store = await JsonlStore.open(dir, { root });
  await store.appendDialogue(record('r.a.0'));
  // A close that fails as it would on a lost disk; the real handle is closed by the test afterwards.
  const dialogues = (store as unknown as { dialogues: { close: () => Promise<void> } }).dialogues;
  const closeDialogues = dialogues.close.bind(dialogues);
  dialogues.close = () => Promise.reject(new Error('EIO: dialogs.jsonl'));
  await assert.rejects(store.close(), /EIO: dialogs.jsonl/);
  assert.equal(existsSync(join(dir, '.lock')), false, 'the lock is released');
  assert.deepEqual(await openFilesIn(dir), ['dialogs.jsonl'], 'only the failed file is left open');
  await closeDialogues();
  const reopened = await JsonlStore.open(dir, { root });
  assert.equal((await reopened.appendDialogue(record('r.a.0'))).status, 'duplicate');
  await reopened.close();
});
