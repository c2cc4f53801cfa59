/** Reads and checks a run's output files the way a dataset user would. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IntentId } from '../../src/method/intents';
import { BUILTIN_TAXONOMY, taxonomyIntent, type Taxonomy } from '../../src/method/taxonomy';
import { storedDialogueRecordSchema } from '../../src/export/records';
import { dialogueMetrics } from '../../src/method/metrics';
import type { DialogueRecord, FailureRecord } from '../../src/run/schemas';

export async function readJsonl<T>(file: string): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  assert.ok(text === '' || text.endsWith('\n'), `${file} ends with a partial line`);
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as T);
}

export const readDialogues = (dir: string) => readJsonl<DialogueRecord>(join(dir, 'dialogs.jsonl'));
export const readFailures = (dir: string) => readJsonl<FailureRecord>(join(dir, 'failures.jsonl'));

/**
 * Every record valid, ids unique, exact turn counts, strict alternation, non-empty values, all intents
 * present; the metrics a record carries are those of its own text.
 */
export function assertDataset(
  records: DialogueRecord[],
  expected: { count: number; turns: number; intents: readonly IntentId[]; taxonomy?: Taxonomy },
): void {
  assert.equal(records.length, expected.count, 'dialogue count');
  assert.equal(new Set(records.map((r) => r.id)).size, records.length, 'ids are unique');
  for (const record of records) {
    const parsed = storedDialogueRecordSchema.safeParse(record);
    assert.ok(parsed.success, `${record.id}: ${JSON.stringify(parsed.error?.issues)}`);
    if (parsed.data.metrics)
      assert.deepEqual(parsed.data.metrics, dialogueMetrics(record.conversation), `${record.id}: metrics`);
    assert.equal(record.conversation.length, expected.turns * 2, `${record.id}: turns`);
    record.conversation.forEach((turn, i) => {
      assert.equal(turn.role, i % 2 === 0 ? 'user' : 'assistant');
      assert.ok(turn.value.trim().length > 0);
    });
  }
  const names = new Set(records.map((r) => r.intent));
  for (const intent of expected.intents)
    assert.ok(
      names.has(taxonomyIntent(expected.taxonomy ?? BUILTIN_TAXONOMY, intent).name),
      `intent ${intent} present`,
    );
}
