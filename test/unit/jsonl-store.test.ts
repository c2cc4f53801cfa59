import assert from 'node:assert/strict';
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DialogueRecord } from '../../src/run/schemas';
import { JsonlStore, StoreRegistry } from '../../src/storage/jsonl-store';
import { readJsonl } from '../helpers/output';
import { testRecord as record } from '../helpers/storage';
import { tempDir } from '../helpers/temporal';

test('jsonl store: writes one line per record and reads back equal objects', async () => {
  const dir = await tempDir();
  const store = await JsonlStore.open(dir);
  const records = [record('a', 'line\nbreak "quoted"'), record('b', '\u0000 control')];
  for (const r of records) assert.equal((await store.appendDialogue(r)).status, 'written');
  await store.close();
  assert.deepEqual(await readJsonl(join(dir, 'dialogs.jsonl')), records);
});

test('jsonl store: a repeated id is written once, sequentially or concurrently', async () => {
  const dir = await tempDir();
  const store = await JsonlStore.open(dir);
  assert.equal((await store.appendDialogue(record('x'))).status, 'written');
  assert.equal((await store.appendDialogue(record('x'))).status, 'duplicate');
  const results = await Promise.all([1, 2, 3].map(() => store.appendDialogue(record('y'))));
  assert.deepEqual(results.map((r) => r.status).sort(), ['duplicate', 'duplicate', 'written']);
  await store.close();
  assert.equal((await readJsonl(join(dir, 'dialogs.jsonl'))).length, 2);
});

test('jsonl store: ids survive a reopen, so a retried activity after a restart writes nothing', async () => {
  const dir = await tempDir();
  const first = await JsonlStore.open(dir);
  await first.appendDialogue(record('kept'));
  await first.close();
  const second = await JsonlStore.open(dir);
  assert.equal((await second.appendDialogue(record('kept'))).status, 'duplicate');
  assert.deepEqual(second.stats(), { dialogues: 1, failures: 0 });
  await second.close();
});

test('jsonl store: a torn last line is cut on open and its id can be written again', async () => {
  const dir = await tempDir();
  const store = await JsonlStore.open(dir);
  await store.appendDialogue(record('whole'));
  await store.close();
  const file = join(dir, 'dialogs.jsonl');
  await appendFile(file, JSON.stringify(record('torn')).slice(0, 40));
  const reopened = await JsonlStore.open(dir);
  assert.ok(reopened.repairedBytes > 0);
  assert.equal((await reopened.appendDialogue(record('torn'))).status, 'written');
  await reopened.close();
  const lines = await readJsonl<DialogueRecord>(file);
  assert.deepEqual(
    lines.map((r) => r.id),
    ['whole', 'torn'],
  );
});

test('jsonl store: a corrupt line in the middle stops open with the file and line number', async () => {
  const dir = await tempDir();
  await (await JsonlStore.open(dir)).close();
  await writeFile(
    join(dir, 'dialogs.jsonl'),
    `${JSON.stringify(record('a'))}\n{not json\n${JSON.stringify(record('b'))}\n`,
  );
  await assert.rejects(JsonlStore.open(dir), /dialogs\.jsonl: line 2/);
});

test('jsonl store: a second writer on the same directory is refused, naming the holder', async () => {
  const dir = await tempDir();
  const store = await JsonlStore.open(dir);
  await writeFile(
    join(dir, '.lock'),
    JSON.stringify({ pid: process.ppid, hostname: (await import('node:os')).hostname() }),
  );
  await assert.rejects(JsonlStore.open(dir), new RegExp(`in use by process ${process.ppid}`));
  await store.close();
});

test('jsonl store: a stale lock of a dead process is taken over', async () => {
  const dir = await tempDir();
  await (await JsonlStore.open(dir)).close();
  await writeFile(
    join(dir, '.lock'),
    JSON.stringify({ pid: 999_999, hostname: (await import('node:os')).hostname() }),
  );
  const store = await JsonlStore.open(dir);
  const lock = JSON.parse(await readFile(join(dir, '.lock'), 'utf8')) as { pid: number };
  assert.equal(lock.pid, process.pid);
  await store.close();
});

test('jsonl store: concurrent appends share write batches', async () => {
  const dir = await tempDir();
  const store = await JsonlStore.open(dir);
  await Promise.all(Array.from({ length: 500 }, (_, i) => store.appendDialogue(record(`r${i}`))));
  assert.ok(store.flushCount < 500, `${store.flushCount} batches for 500 records`);
  await store.close();
  assert.equal((await readJsonl(join(dir, 'dialogs.jsonl'))).length, 500);
});

test('jsonl store: failures go to their own file, independent of dialogues', async () => {
  const dir = await tempDir();
  const store = await JsonlStore.open(dir);
  const failure = {
    id: 'f',
    intent: 'i',
    info_flow: 'f',
    topic: 't',
    stage: 'skeleton' as const,
    type: 'Llm.Auth',
    reason: 'r',
    failed_at: 'now',
  };
  assert.equal((await store.appendFailure(failure)).status, 'written');
  assert.equal((await store.appendFailure(failure)).status, 'duplicate');
  assert.equal((await store.appendDialogue(record('f'))).status, 'written');
  await store.close();
  assert.equal((await readJsonl(join(dir, 'failures.jsonl'))).length, 1);
});

test('jsonl store: an output path that cannot be created fails naming it', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'file.txt'), 'x');
  await assert.rejects(JsonlStore.open(join(dir, 'file.txt', 'sub')), /file\.txt\/sub/);
});

test('jsonl store: the registry opens one store per directory for concurrent callers', async () => {
  const dir = await tempDir();
  const registry = new StoreRegistry({ root: dir });
  const [a, b] = await Promise.all([registry.get(dir), registry.get(`${dir}/.`)]);
  assert.equal(a, b);
  await registry.closeAll();
});

test('jsonl store: a reopen reads only what was appended after the saved index, and still knows every id', async () => {
  const dir = await tempDir();
  const first = await JsonlStore.open(dir);
  await Promise.all(Array.from({ length: 200 }, (_, i) => first.appendDialogue(record(`run.x.${i}`))));
  await first.close();
  const clean = await JsonlStore.open(dir);
  assert.equal(clean.scannedBytes, 0, 'a clean close leaves an index covering the whole file');
  assert.equal((await clean.appendDialogue(record('run.x.7'))).status, 'duplicate');
  await clean.close();
  // Records appended after the index was saved, as by a writer killed before it saved it again.
  const late = `${JSON.stringify(record('run.x.500'))}\n`;
  await appendFile(join(dir, 'dialogs.jsonl'), late);
  const crashed = await JsonlStore.open(dir);
  assert.equal(crashed.scannedBytes, Buffer.byteLength(late));
  assert.equal((await crashed.appendDialogue(record('run.x.500'))).status, 'duplicate');
  assert.equal((await crashed.appendDialogue(record('run.x.3'))).status, 'duplicate');
  assert.equal((await crashed.appendDialogue(record('run.x.201'))).status, 'written');
  await crashed.close();
  // A file replaced by another one (new inode): its saved index no longer applies, the whole file is read.
  const text = await readFile(join(dir, 'dialogs.jsonl'), 'utf8');
  const kept = text.split('\n').slice(0, 10).join('\n') + '\n';
  await writeFile(join(dir, 'replacement'), kept);
  await rename(join(dir, 'replacement'), join(dir, 'dialogs.jsonl'));
  const replaced = await JsonlStore.open(dir);
  assert.equal(replaced.scannedBytes, Buffer.byteLength(kept));
  assert.deepEqual(replaced.stats(), { dialogues: 10, failures: 0 });
  assert.equal((await replaced.appendDialogue(record('run.x.150'))).status, 'written');
  await replaced.close();
});
