/**
 * Synthetic run directories for export and report tests and the export benchmark: valid dialogs.jsonl
 * records (every intent and its flows, varied texts of paper-like lengths), a run.json, and optionally
 * failures.jsonl. Written streaming, so a million records take no memory.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INFO_FLOWS, INTENTS, INTENT_IDS, TOPICS } from '../../src/method';
import type { DialogueRecord, FailureRecord } from '../../src/run/schemas';

const WORDS = (
  'time person year way day thing man world life hand part child eye woman place work week case point ' +
  'government company number group problem fact garden budget recipe engine travel visa laptop battery ' +
  'sleep running lesson history planet river mountain music guitar novel contract refund invoice flight ' +
  'hotel kitchen window printer network password backup schedule meeting project deadline exam teacher'
).split(' ');

/** A small deterministic PRNG (mulberry32) so synthetic files are the same every time. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function sentence(rand: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  return `${out.join(' ')}.`;
}

/** Record `i` of a synthetic run: intent by i, flow and topic by i, texts by a seeded PRNG. */
export function syntheticRecord(i: number, runId = 'synthetic', turns = 3): DialogueRecord {
  const rand = prng(i + 1);
  const intent = INTENT_IDS[i % INTENT_IDS.length]!;
  const flows = INTENTS[intent].infoFlows;
  const flow = flows[Math.floor(i / INTENT_IDS.length) % flows.length]!;
  const topics = TOPICS[intent];
  const conversation = Array.from({ length: turns }, () => [
    { role: 'user' as const, value: sentence(rand, 14 + Math.floor(rand() * 12)) },
    { role: 'assistant' as const, value: sentence(rand, 45 + Math.floor(rand() * 30)) },
  ]).flat();
  return {
    id: `${runId}.${intent}.${Math.floor(i / INTENT_IDS.length)}`,
    category: `Category ${i % 17}`,
    conversation,
    intent: INTENTS[intent].name,
    info_flow: INFO_FLOWS[flow]!.name,
    topic: topics[Math.floor(i / INTENT_IDS.length) % topics.length]!,
    model: 'synthetic-model',
  };
}

/** Writes a run directory of `count` records (or the given ones) with its run.json. */
export async function writeSyntheticRun(
  dir: string,
  options: { count?: number; records?: DialogueRecord[]; failures?: FailureRecord[]; turns?: number } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const stream = createWriteStream(join(dir, 'dialogs.jsonl'));
  const write = async (record: DialogueRecord) => {
    if (!stream.write(`${JSON.stringify(record)}\n`)) await once(stream, 'drain');
  };
  if (options.records) for (const r of options.records) await write(r);
  else
    for (let i = 0; i < (options.count ?? 0); i++)
      await write(syntheticRecord(i, 'synthetic', options.turns));
  stream.end();
  await once(stream, 'finish');
  if (options.failures)
    await writeFile(
      join(dir, 'failures.jsonl'),
      options.failures.map((f) => `${JSON.stringify(f)}\n`).join(''),
    );
  const count = options.records?.length ?? options.count ?? 0;
  await writeFile(
    join(dir, 'run.json'),
    JSON.stringify({
      runId: 'synthetic',
      createdAt: '2026-01-01T00:00:00.000Z',
      input: {
        runId: 'synthetic',
        outDir: dir,
        model: 'synthetic-model',
        intents: [...INTENT_IDS],
        numDialogsPerIntent: Math.ceil(count / INTENT_IDS.length),
        numTurnsPerDialog: options.turns ?? 3,
        temperature: 0.9,
      },
    }),
  );
}
