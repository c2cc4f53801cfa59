import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createStorageActivities } from '../../src/activities/storage';
import type { StoreDialoguesInput } from '../../src/run/schemas';
import { ForbiddenDirectoryError, isWithin, resolveOutputRoot } from '../../src/storage/confine';
import { IdIndex } from '../../src/storage/id-index';
import { JsonlStore, MARKER_FILE, StoreRegistry } from '../../src/storage/jsonl-store';
import { readJsonl } from '../helpers/output';
import { snapshotTree, testRecord as record } from '../helpers/storage';
import { tempDir } from '../helpers/temporal';

const forbidden = (pattern: RegExp) => (error: unknown) =>
  error instanceof ForbiddenDirectoryError && pattern.test(error.message);

test('store confinement: directories outside the root, or reached through a symlink, are refused', async () => {
  const base = await tempDir();
  const root = await resolveOutputRoot(join(base, 'root'));
  const decoy = join(base, 'decoy');
  await mkdir(decoy);
  await writeFile(join(decoy, 'dialogs.jsonl'), 'precious\n');
  await symlink(decoy, join(root, 'link'));
  await mkdir(join(root, 'real'));
  const before = await snapshotTree(decoy);
  const registry = new StoreRegistry({ root });
  await assert.rejects(registry.get('/etc'), forbidden(/outside the worker's output root/));
  await assert.rejects(registry.get(`${root}/../decoy`), forbidden(/outside/));
  await assert.rejects(registry.get('relative/dir'), forbidden(/not an absolute path/));
  await assert.rejects(registry.get(join(root, 'link')), forbidden(/symlink/));
  await assert.rejects(registry.get(join(root, 'link', 'sub')), forbidden(/symlink/));
  // A parent that is a symlink is refused as well, even when the rest of the path is plain.
  await assert.rejects(registry.get(join(root, 'link', 'a', 'b')), forbidden(/symlink/));
  const ok = await registry.get(join(root, 'real', 'run1'));
  await ok.appendDialogue(record('r.i.0'));
  await registry.closeAll();
  assert.deepEqual(await snapshotTree(decoy), before, 'nothing outside the root was touched');
  assert.deepEqual((await readdir(decoy)).sort(), ['dialogs.jsonl']);
});

test('store confinement: the root may be named through a symlink to it', async () => {
  const base = await tempDir();
  const root = await resolveOutputRoot(join(base, 'root'));
  await symlink(root, join(base, 'alias'));
  const registry = new StoreRegistry({ root: await resolveOutputRoot(join(base, 'alias')) });
  const store = await registry.get(join(base, 'alias', 'run'));
  assert.equal((await store.appendDialogue(record('r.i.1'))).status, 'written');
  await registry.closeAll();
  assert.equal((await readJsonl(join(root, 'run', 'dialogs.jsonl'))).length, 1);
});

test('store confinement: a directory swapped for a symlink after it was opened is refused and never written through', async () => {
  const base = await tempDir();
  const root = await resolveOutputRoot(join(base, 'root'));
  const decoy = join(base, 'decoy');
  await mkdir(join(decoy, 'run'), { recursive: true });
  const before = await snapshotTree(decoy);
  const registry = new StoreRegistry({ root });
  const dir = join(root, 'parent', 'run');
  const store = await registry.get(dir);
  await store.appendDialogue(record('r.i.0'));
  // The parent becomes a link out of the root, after every check the store made when it opened.
  await rename(join(root, 'parent'), join(root, 'moved'));
  await symlink(decoy, join(root, 'parent'));
  await assert.rejects(registry.get(dir), forbidden(/no longer names/));
  // A write already under way when the swap happened goes through the directory descriptor: still inside.
  await assert.rejects(store.appendDialogue(record('r.i.1')));
  await registry.closeAll();
  assert.deepEqual(await snapshotTree(decoy), before, 'nothing outside the root was touched');
  assert.equal((await readJsonl(join(root, 'moved', 'run', 'dialogs.jsonl'))).length, 1);
});

test('store confinement: files it did not create are never adopted, truncated or overwritten', async () => {
  const root = await resolveOutputRoot(await tempDir());
  const foreign = join(root, 'foreign');
  await mkdir(foreign);
  // Someone else's file, with a torn last line the store would otherwise cut.
  await writeFile(join(foreign, 'dialogs.jsonl'), '{"id":"x"}\n{"id":"torn');
  const lockOnly = join(root, 'lock-only');
  await mkdir(lockOnly);
  await writeFile(join(lockOnly, '.lock'), 'not json');
  const before = await snapshotTree(root);
  const registry = new StoreRegistry({ root });
  await assert.rejects(registry.get(foreign), forbidden(/not written by this package/));
  await assert.rejects(registry.get(lockOnly), forbidden(/not written by this package/));
  assert.deepEqual(await snapshotTree(root), before);
  // A lock it cannot parse, in a directory of ours, is not overwritten either.
  const ours = join(root, 'ours');
  await (await JsonlStore.open(ours)).close();
  await writeFile(join(ours, '.lock'), '');
  await assert.rejects(registry.get(ours), forbidden(/not a lock this package wrote/));
  assert.equal(await readFile(join(ours, '.lock'), 'utf8'), '');
  await registry.closeAll();
});

test('store confinement: a directory marked for another run is refused', async () => {
  const root = await resolveOutputRoot(await tempDir());
  const registry = new StoreRegistry({ root });
  const activities = createStorageActivities(registry);
  await new MockActivityEnvironment().run((input: StoreDialoguesInput) => activities.storeDialogues(input), {
    outDir: join(root, 'd'),
    records: [record('run-a.x.0')],
  });
  const marker = JSON.parse(await readFile(join(root, 'd', MARKER_FILE), 'utf8')) as { runId: string };
  assert.equal(marker.runId, 'run-a');
  await registry.closeAll();
  const again = createStorageActivities(new StoreRegistry({ root }));
  await assert.rejects(
    new MockActivityEnvironment().run((input: StoreDialoguesInput) => again.storeDialogues(input), {
      outDir: join(root, 'd'),
      records: [record('run-b.x.0')],
    }),
    (error: Error & { type?: string; nonRetryable?: boolean }) =>
      error.type === 'Storage.ForbiddenDirectory' &&
      error.nonRetryable === true &&
      /run-a/.test(error.message),
  );
});

test('store lock: of processes opening one directory at once, exactly one holds it', async () => {
  const root = await resolveOutputRoot(await tempDir());
  const dir = join(root, 'contended');
  await (await JsonlStore.open(dir)).close();
  const script = `
    const { JsonlStore } = require(${JSON.stringify(resolve(__dirname, '../../src/storage/jsonl-store.ts'))});
    JsonlStore.open(${JSON.stringify(dir)}).then(
      async (s) => { console.log('held'); process.stdin.resume(); process.stdin.on('end', () => s.close()); },
      (e) => console.log('refused: ' + e.message),
    );`;
  // The holder keeps the lock until every process has answered (its stdin closes then), so all four
  // overlap however slowly a loaded machine starts them.
  const children = Array.from({ length: 4 }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    const answered = new Promise<void>((done) =>
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) done();
      }),
    );
    const exited = new Promise<string>((done) => child.on('exit', () => done(out.trim())));
    return { child, answered, exited };
  });
  await Promise.all(children.map((c) => c.answered));
  for (const c of children) c.child.stdin.end();
  const outputs = await Promise.all(children.map((c) => c.exited));
  assert.equal(outputs.filter((o) => o === 'held').length, 1, outputs.join('\n'));
  for (const o of outputs.filter((x) => x !== 'held')) assert.match(o, /refused: .*in use by process/);
});

test('store lock: a holder refreshes its lock, so another host never takes it over; a silent one expires', async () => {
  const dir = await tempDir();
  const store = await JsonlStore.open(dir, { lockHeartbeatMs: 100 });
  const lock = join(dir, '.lock');
  const old = new Date(Date.now() - 10 * 60_000);
  await utimes(lock, old, old);
  await new Promise((r) => setTimeout(r, 600));
  assert.ok((await stat(lock)).mtimeMs > Date.now() - 30_000, 'the heartbeat refreshed the mtime');
  await store.close();
  // Another host's lock, refreshed recently: refused. Left alone for longer than the bound: taken over.
  const other = JSON.stringify({ pid: 4242, hostname: `not-${hostname()}`, token: 't', startedAt: 'x' });
  await writeFile(lock, other);
  await assert.rejects(JsonlStore.open(dir), /locked by not-/);
  await utimes(lock, old, old);
  const taken = await JsonlStore.open(dir);
  assert.equal((JSON.parse(await readFile(lock, 'utf8')) as { pid: number }).pid, process.pid);
  await taken.close();
});

test('store index: a million ids of the package shape take a bitset per intent, not a string each', () => {
  const index = new IdIndex();
  for (let i = 0; i < 1_000_000; i++)
    assert.equal(index.add(`cc-run.intent_${i % 9}.${Math.floor(i / 9)}`), true);
  assert.equal(index.size, 1_000_000);
  assert.ok(index.approximateBytes() < 1_000_000, `${index.approximateBytes()} bytes`);
  assert.equal(index.add('cc-run.intent_3.7'), false);
  assert.equal(index.has('cc-run.intent_3.007'), false, 'another spelling is another id');
  assert.equal(index.add('cc-run.intent_3.007'), true);
  assert.equal(index.add('plain'), true);
  assert.equal(index.has('plain'), true);
  index.delete('cc-run.intent_3.7');
  assert.equal(index.has('cc-run.intent_3.7'), false);
  assert.equal(index.size, 1_000_001);
});

test('store confinement: opens racing a parent swapped between a directory and a symlink never write outside', async () => {
  const base = await tempDir();
  const root = await resolveOutputRoot(join(base, 'root'));
  const decoy = join(base, 'decoy');
  await mkdir(decoy);
  await writeFile(join(decoy, 'dialogs.jsonl'), 'precious\n');
  const before = await snapshotTree(decoy);
  await mkdir(join(root, 'p-dir'));
  await symlink(decoy, join(root, 'p-lnk'));
  let swapping = true;
  let swaps = 0;
  // Flips root/p between the real directory and the link out of the root, as fast as it can.
  const swapper = (async () => {
    const move = (from: string, to: string) =>
      rename(join(root, from), join(root, to)).then(
        () => true,
        () => false,
      );
    while (swapping) {
      if (await move('p-dir', 'p')) {
        await new Promise((r) => setTimeout(r, 1));
        await move('p', 'p-dir');
      }
      if (await move('p-lnk', 'p')) {
        swaps++;
        await new Promise((r) => setImmediate(r));
        await move('p', 'p-lnk');
      }
      // A directory the store created at root/p while it was free is moved out of the way.
      await move('p', `stray-${swaps}`);
    }
  })();
  let written = 0;
  let refused = 0;
  // At least 150 opens, and on until both outcomes and enough swaps were seen: how the two loops
  // interleave depends on the machine, not on the code under test.
  for (let i = 0; i < 150 || ((refused === 0 || written === 0 || swaps <= 10) && i < 5_000); i++) {
    const registry = new StoreRegistry({ root, fsync: false });
    try {
      const store = await registry.get(join(root, 'p', `run-${i}`));
      await store.appendDialogue(record(`r.i.${i}`));
      written++;
    } catch (error) {
      if (error instanceof ForbiddenDirectoryError) refused++;
      else if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && !/ENOENT/.test(String(error)))
        throw error;
    }
    await registry.closeAll();
  }
  swapping = false;
  await swapper;
  assert.ok(swaps > 10, `${swaps} swaps`);
  assert.ok(refused > 0 && written > 0, `${written} written, ${refused} refused`);
  assert.deepEqual(await snapshotTree(decoy), before, 'nothing outside the root was touched');
  // Every record written is somewhere below the root, in a plain directory.
  const tree = await snapshotTree(root);
  const files = Object.keys(tree).filter((k) => k.endsWith('dialogs.jsonl') && tree[k]!.startsWith('file'));
  let lines = 0;
  for (const f of files) lines += (await readJsonl(join(root, f))).length;
  assert.equal(lines, written);
});

test('store confinement: a child named with two leading dots is inside the root; a .. segment is not', async () => {
  const root = await resolveOutputRoot(await tempDir());
  for (const name of ['..x', '...', '..hidden.d']) assert.equal(isWithin(root, join(root, name)), true, name);
  assert.equal(isWithin(root, join(root, '..')), false);
  assert.equal(isWithin(root, `${root}/../x`), false);
  const store = await JsonlStore.open(join(root, '..x'), { root });
  try {
    assert.equal((await store.appendDialogue(record('r.a.0'))).status, 'written');
  } finally {
    await store.close();
  }
  await assert.rejects(JsonlStore.open(`${root}/../x`, { root }), ForbiddenDirectoryError);
});
