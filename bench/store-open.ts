/**
 * `npm run bench:store`: the store's open time and memory on a large `dialogs.jsonl`, as after a crash.
 *
 * Writes a file of N records (default 1,000,000, realistic size: 6 turns), adds a torn last line as a
 * killed writer leaves it, then in a fresh process opens the store on it, appends records (new and
 * repeated ids) and closes; reports open time, RSS before and after the open, the index's own bytes and
 * the append results. The file is written once and kept (`--keep`) or removed.
 *
 *   npm run bench:store                         1,000,000 records
 *   npm run bench:store -- --records 100000     smaller
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { appendFile, mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { JsonlStore } from '../src/storage/jsonl-store';
import type { DialogueRecord } from '../src/run/schemas';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    turns: { type: 'string', default: '6' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
});

const RUN = 'cc-20261123-120000-abcdef';
const INTENTS = ['transaction', 'educational', 'problem_solving', 'planning', 'recommendation'] as const;

function record(i: number, turns: number): DialogueRecord {
  const intent = INTENTS[i % INTENTS.length]!;
  const conversation: DialogueRecord['conversation'] = [];
  for (let t = 0; t < turns; t++) {
    conversation.push({
      role: 'user',
      value: `Question ${t + 1} of dialogue ${i}: how would I go about the next step of this, given what you said?`,
    });
    conversation.push({
      role: 'assistant',
      value: `Answer ${t + 1} of dialogue ${i}. `.padEnd(
        320,
        'Here is a careful, concrete explanation with the steps in order. ',
      ),
    });
  }
  return {
    id: `${RUN}.${intent}.${Math.floor(i / INTENTS.length)}`,
    category: `Category ${i % 97}`,
    conversation,
    intent: 'Transaction Interaction',
    info_flow: 'User Needs → Solutions',
    topic: `Topic number ${i % 1013}`,
    model: 'gpt-4o-mini',
  };
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

async function child(dir: string, records: number, turns: number): Promise<void> {
  const rssBefore = process.memoryUsage().rss;
  const start = performance.now();
  const store = await JsonlStore.open(dir);
  const openMs = performance.now() - start;
  const rssAfter = process.memoryUsage().rss;
  const appendStart = performance.now();
  const results = await Promise.all(
    Array.from({ length: 1000 }, (_, k) => store.appendDialogue(record(records - 500 + k, turns))),
  );
  const appendMs = performance.now() - appendStart;
  const written = results.filter((r) => r.status === 'written').length;
  const stats = store.stats();
  const indexBytes = store.indexBytes();
  await store.close();
  process.stdout.write(
    JSON.stringify({
      openMs: Math.round(openMs),
      repairedBytes: store.repairedBytes,
      scannedMB: mb(store.scannedBytes),
      rssBeforeOpenMB: mb(rssBefore),
      rssAfterOpenMB: mb(rssAfter),
      rssGrowthMB: mb(rssAfter - rssBefore),
      indexBytes,
      idsAfterAppend: stats.dialogues,
      append1000Ms: Math.round(appendMs),
      appendWritten: written,
      appendDuplicates: results.length - written,
    }),
  );
}

async function main(): Promise<void> {
  const records = Number(args.records);
  const turns = Number(args.turns);
  const dir = args.dir ?? join(tmpdir(), `cc-bench-store-${process.pid}`);
  if (args.child) return child(dir, records, turns);

  await mkdir(dir, { recursive: true });
  const file = join(dir, 'dialogs.jsonl');
  const exists = await stat(file).then(
    (s) => s.size > 0,
    () => false,
  );
  if (!exists) {
    // The store creates the directory's marker; the records are then written as it would write them.
    await (await JsonlStore.open(dir, { fsync: false })).close();
    const writeStart = performance.now();
    const out = createWriteStream(file, { flags: 'a' });
    for (let i = 0; i < records; i++) {
      if (!out.write(`${JSON.stringify(record(i, turns))}\n`))
        await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
    process.stderr.write(`wrote ${records} records in ${Math.round(performance.now() - writeStart)} ms\n`);
  }
  const measure = async (label: string) => {
    // A writer killed mid-line: the open must cut this without reading the file.
    await appendFile(file, JSON.stringify(record(records + 10_000, turns)).slice(0, 700));
    const size = (await stat(file)).size;
    const result = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        __filename,
        '--child',
        '--dir',
        dir,
        '--records',
        String(records),
        '--turns',
        String(turns),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    if (result.status !== 0) throw new Error(`child failed: ${result.status}`);
    return { label, records, fileMB: mb(size), ...(JSON.parse(result.stdout) as object) };
  };
  const results = [await measure('open with no saved index (the whole file is read)')];
  // Records written after the index was last saved, then a crash: the next open reads only those.
  await appendFile(
    file,
    Array.from({ length: 1000 }, (_, k) => `${JSON.stringify(record(records + 20_000 + k, turns))}\n`).join(
      '',
    ),
  );
  results.push(await measure('open after a crash, with the saved index (1,000 records after it)'));
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  if (!args.keep && !args.dir) await rm(dir, { recursive: true, force: true });
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
