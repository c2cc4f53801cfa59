import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createStorageActivities } from '../../src/activities/storage';
import type { StoreDialoguesResult } from '../../src/shared/schemas';
import { StoreRegistry } from '../../src/storage/jsonl-store';
import { testRecord as record } from '../helpers/storage';
import { tempDir } from '../helpers/temporal';

test('storage activity: names the ids it found already stored, except on a retry of its own write', async () => {
  const dir = await tempDir('cc-store-act-');
  const storage = new StoreRegistry({ fsync: false, root: dir });
  try {
    const activities = createStorageActivities(storage);
    const storeDialogues = (input: Parameters<typeof activities.storeDialogues>[0]) =>
      activities.storeDialogues(input);
    const first = await new MockActivityEnvironment({ attempt: 1 }).run(storeDialogues, {
      outDir: dir,
      records: [record('r1.transaction.0'), record('r1.transaction.1')],
    });
    assert.deepEqual(first, { written: 2, duplicates: 0, invalid: [], duplicateIds: [] });
    const again: StoreDialoguesResult = await new MockActivityEnvironment({ attempt: 1 }).run(
      storeDialogues,
      {
        outDir: dir,
        records: [record('r1.transaction.1'), record('r1.transaction.2')],
      },
    );
    assert.deepEqual(again.duplicateIds, ['r1.transaction.1']);
    assert.equal(again.written, 1);
    // A second attempt finds what its first attempt wrote before its completion was lost.
    const retry: StoreDialoguesResult = await new MockActivityEnvironment({ attempt: 2 }).run(
      storeDialogues,
      {
        outDir: dir,
        records: [record('r1.transaction.2'), record('r1.transaction.3')],
      },
    );
    assert.deepEqual(retry.duplicateIds, []);
    assert.equal(retry.written, 1);
  } finally {
    await storage.closeAll();
    await rm(dir, { recursive: true, force: true });
  }
});
