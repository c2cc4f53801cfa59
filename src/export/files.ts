/** What an export writes: its file names inside the output directory, and the lines of its lists. */
import type { DuplicateKind } from './dedup';

/** File names inside the output directory. */
export const EXPORT_FILES = {
  jsonl: 'train.jsonl',
  card: 'README.md',
  duplicates: 'duplicates.jsonl',
  filtered: 'filtered.jsonl',
  dataDir: 'data',
  shard: (index: number, count: number) =>
    `train-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.parquet`,
} as const;
export const SHARD_NAME = /^train-\d{5}-of-\d{5}\.parquet$/;

/** A line in duplicates.jsonl: a dialogue left out, and the kept one it repeats. */
export interface DuplicateLine {
  id: string;
  duplicate_of: string;
  kind: DuplicateKind;
  similarity: number;
}

/** A line in filtered.jsonl: a dialogue left out by a metric filter. */
export interface FilteredLine {
  id: string;
  filter: string;
  /** The dialogue's value; null for a judge filter on a dialogue without a verdict. */
  value: number | null;
}
