/**
 * Mean words per user query and per assistant response of a run's dialogs.jsonl, counted as the reply
 * checks count words: `node --import tsx bench/dialogue-stats.ts OUT_DIR`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { wordCount } from '../src/method/replies';
import type { DialogueRecord } from '../src/run/schemas';

async function main(dir: string): Promise<void> {
  const text = await readFile(join(dir, 'dialogs.jsonl'), 'utf8');
  const records = text
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as DialogueRecord);
  const words = { user: [] as number[], assistant: [] as number[] };
  for (const r of records) for (const t of r.conversation) words[t.role].push(wordCount(t.value));
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  process.stdout.write(
    `${JSON.stringify({
      dialogues: records.length,
      queries: words.user.length,
      meanWordsPerQuery: Number(mean(words.user).toFixed(1)),
      responses: words.assistant.length,
      meanWordsPerResponse: Number(mean(words.assistant).toFixed(1)),
    })}\n`,
  );
}

void main(process.argv[2] ?? '.');
