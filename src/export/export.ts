/**
 * `consistent-chat export DIR --format openai|sharegpt|hf`: streams a run's dialogs.jsonl into a
 * training format. Every file is written as `<name>.partial` inside the output directory and renamed
 * into place at the end, so a failed export leaves the previous one intact, and nothing is written
 * outside that directory (its fixed file names cannot climb out of it; a symlinked `data/` is refused).
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { lstat, mkdir, readdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MetricsAccumulator, metricsOf, type MetricsSummary } from '../method/metrics';
import { ConfigError } from '../shared/errors';
import { datasetCard } from './card';
import {
  DEFAULT_DEDUP_OPTIONS,
  DuplicateIndex,
  dialogueText,
  type DedupOptions,
  type DuplicateKind,
} from './dedup';
import { describeFilter, firstFailedFilter, type MetricFilter } from './filters';
import { QualityAccumulator } from '../report/quality';
import { readCalibration } from '../report/stats';
import { EXPORT_FORMATS, toHfRow, toOpenAi, toShareGpt, type ExportFormat, type HfRow } from './formats';
import { writeParquetShards, type ParquetShardOptions } from './parquet';
import {
  checkRunDir,
  packageVersion,
  readDialogueRecords,
  readRunFile,
  type StoredDialogueRecord,
} from './records';

export interface ExportOptions {
  /** The run's output directory (holds dialogs.jsonl). */
  dir: string;
  format: ExportFormat;
  /** Output directory. @default `<dir>/export/<format>` */
  out?: string;
  /** A system message put first in every dialogue. */
  system?: string;
  /** Drop exact and near-duplicate dialogues (first occurrence kept); the dropped ones are listed. @default false */
  dedup?: boolean;
  dedupOptions?: Partial<DedupOptions>;
  /**
   * Keep only dialogues whose metrics pass every filter (src/export/filters.ts), applied before
   * de-duplication so a dropped dialogue is never the kept original. @default []
   */
  filters?: MetricFilter[];
  /** `license` of the dataset card (a Hub licence id). @default 'unknown' */
  license?: string;
  /** `language` of the dataset card. @default ['en'] */
  language?: string[];
  parquet?: Partial<ParquetShardOptions>;
}

export interface ExportResult {
  outDir: string;
  /** Files written, relative to outDir. */
  files: string[];
  /** Records read from dialogs.jsonl. */
  read: number;
  /** Records written. */
  written: number;
  duplicates: Record<DuplicateKind, number>;
  /** Each filter as written, with the dialogues it removed (those earlier filters had kept). */
  filtered: { filter: string; removed: number }[];
  /** The metrics of the rows written. */
  metrics: MetricsSummary;
}

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
const SHARD_NAME = /^train-\d{5}-of-\d{5}\.parquet$/;

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

const LICENSE_ID = /^[a-z0-9][a-z0-9.+-]{0,63}$/;
const LANGUAGE_CODE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

/** Checks every option before any file is read or written; errors name the flag. */
export async function checkExportOptions(options: ExportOptions): Promise<{ dir: string; out: string }> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(options.format))
    throw new ConfigError('--format', `must be one of ${EXPORT_FORMATS.join(', ')}, got "${options.format}"`);
  if (options.system !== undefined && options.system.trim() === '')
    throw new ConfigError('--system', 'must not be empty');
  const threshold = options.dedupOptions?.threshold;
  if (threshold !== undefined && !(threshold > 0 && threshold <= 1))
    throw new ConfigError('--near-threshold', `must be above 0 and at most 1, got ${threshold}`);
  if (options.license !== undefined && !LICENSE_ID.test(options.license))
    throw new ConfigError(
      '--license',
      `must be a Hub licence id like "mit" or "cc-by-4.0", got "${options.license}"`,
    );
  for (const code of options.language ?? [])
    if (!LANGUAGE_CODE.test(code))
      throw new ConfigError('--language', `must be language codes like "en" or "fr", got "${code}"`);
  const dir = resolve(options.dir);
  await checkRunDir(dir);
  const out = resolve(options.out ?? join(dir, 'export', options.format));
  const outInfo = await lstat(out).catch(() => undefined);
  if (outInfo && !outInfo.isDirectory() && !outInfo.isSymbolicLink())
    throw new ConfigError('--out', `${out} exists and is not a directory`);
  try {
    await mkdir(out, { recursive: true });
  } catch (error) {
    throw new ConfigError(
      '--out',
      `cannot create ${out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const real = await realpath(out);
  if (real === (await realpath(dir)))
    throw new ConfigError('--out', 'must not be the run directory itself (default: DIR/export/FORMAT)');
  if (options.format === 'hf') {
    const data = await lstat(join(real, EXPORT_FILES.dataDir)).catch(() => undefined);
    if (data && !data.isDirectory())
      throw new ConfigError('--out', `${join(real, EXPORT_FILES.dataDir)} exists and is not a directory`);
  }
  return { dir, out: real };
}

/** A JSONL file written with backpressure as `<path>.partial`. */
class JsonlWriter {
  private readonly stream: WriteStream;
  lines = 0;
  private error: Error | undefined;
  private constructor(readonly path: string) {
    this.stream = createWriteStream(`${path}.partial`, { flags: 'wx' });
    // Kept, and thrown by the next write or close, so an aborted or failed stream never crashes the process.
    this.stream.on('error', (error) => (this.error ??= error));
  }
  static async open(path: string): Promise<JsonlWriter> {
    await rm(`${path}.partial`, { force: true });
    return new JsonlWriter(path);
  }
  async write(value: unknown): Promise<void> {
    if (this.error) throw this.error;
    this.lines++;
    if (!this.stream.write(`${JSON.stringify(value)}\n`)) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    if (this.error) throw this.error;
    this.stream.end();
    await once(this.stream, 'finish');
  }
  async commit(): Promise<void> {
    await rename(`${this.path}.partial`, this.path);
  }
  async abort(): Promise<void> {
    this.stream.destroy();
    await rm(`${this.path}.partial`, { force: true });
  }
}

const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

export async function exportDataset(options: ExportOptions): Promise<ExportResult> {
  const { dir, out } = await checkExportOptions(options);
  const dedupOptions = { ...DEFAULT_DEDUP_OPTIONS, ...options.dedupOptions };
  const index = options.dedup ? new DuplicateIndex(dedupOptions) : undefined;
  const duplicates: Record<DuplicateKind, number> = { exact: 0, near: 0 };
  const dupWriter = index ? await JsonlWriter.open(join(out, EXPORT_FILES.duplicates)) : undefined;
  const filters = options.filters ?? [];
  const filtered = filters.map((f) => ({ filter: describeFilter(f), removed: 0 }));
  const filterWriter = filters.length ? await JsonlWriter.open(join(out, EXPORT_FILES.filtered)) : undefined;
  const metrics = new MetricsAccumulator();
  const quality = new QualityAccumulator();
  const counts = {
    perIntent: new Map<string, number>(),
    perFlow: new Map<string, number>(),
    perIntentFlow: new Map<string, number>(),
    models: new Map<string, number>(),
  };
  let read = 0;

  async function* kept(): AsyncGenerator<StoredDialogueRecord> {
    for await (const record of readDialogueRecords(dir)) {
      read++;
      const measured = metricsOf(record);
      const failed = firstFailedFilter(measured.metrics, filters, record.judge);
      if (failed) {
        const entry = filtered[failed.index]!;
        entry.removed++;
        const line: FilteredLine = { id: record.id, filter: entry.filter, value: failed.value };
        await filterWriter!.write(line);
        continue;
      }
      const match = index?.add(record.id, dialogueText(record.conversation));
      if (match) {
        duplicates[match.kind]++;
        const line: DuplicateLine = {
          id: record.id,
          duplicate_of: match.of,
          kind: match.kind,
          similarity: Math.round(match.similarity * 1000) / 1000,
        };
        await dupWriter!.write(line);
        continue;
      }
      bump(counts.perIntent, record.intent);
      bump(counts.perFlow, record.info_flow);
      bump(counts.perIntentFlow, `${record.intent} / ${record.info_flow}`);
      bump(counts.models, record.model);
      metrics.add(measured.metrics, record.conversation.length / 2, measured.stored);
      quality.add(record);
      yield record;
    }
  }

  const files: string[] = [];
  let written = 0;
  const partialShards: string[] = [];
  let jsonl: JsonlWriter | undefined;
  try {
    if (options.format === 'hf') {
      const dataDir = join(out, EXPORT_FILES.dataDir);
      await mkdir(dataDir, { recursive: true });
      for (const name of await readdir(dataDir))
        if (name.startsWith('shard-') && name.endsWith('.partial'))
          await rm(join(dataDir, name), { force: true });
      const rows = (async function* (): AsyncGenerator<HfRow> {
        for await (const record of kept()) yield toHfRow(record, options.system);
      })();
      const result = await writeParquetShards(
        rows,
        (i) => {
          const path = join(dataDir, `shard-${i}.parquet.partial`);
          partialShards.push(path);
          return path;
        },
        options.parquet,
      );
      written = result.rows;
      // The new shards replace every shard of an earlier export in this directory.
      for (const name of await readdir(dataDir))
        if (SHARD_NAME.test(name)) await rm(join(dataDir, name), { force: true });
      for (const [i, path] of partialShards.entries()) {
        const name = EXPORT_FILES.shard(i, partialShards.length);
        await rename(path, join(dataDir, name));
        files.push(`${EXPORT_FILES.dataDir}/${name}`);
      }
      partialShards.length = 0;
      // Written beside and renamed over: a symlink planted at README.md is replaced, never followed.
      const card = join(out, EXPORT_FILES.card);
      await rm(`${card}.partial`, { force: true });
      await writeFile(
        `${card}.partial`,
        datasetCard({
          run: await readRunFile(dir),
          generatorVersion: await packageVersion(),
          rows: written,
          shards: result.shards,
          ...counts,
          system: options.system,
          dedup: index ? { ...duplicates, threshold: dedupOptions.threshold } : undefined,
          filtered,
          metrics: metrics.summary(),
          quality: quality.summary(),
          calibration: await readCalibration(dir),
          license: options.license ?? 'unknown',
          language: options.language ?? ['en'],
        }),
        { flag: 'wx' },
      );
      await rename(`${card}.partial`, card);
      files.push(EXPORT_FILES.card);
    } else {
      jsonl = await JsonlWriter.open(join(out, EXPORT_FILES.jsonl));
      const shape = options.format === 'openai' ? toOpenAi : toShareGpt;
      for await (const record of kept()) await jsonl.write(shape(record, options.system));
      await jsonl.close();
      await jsonl.commit();
      written = jsonl.lines;
      files.push(EXPORT_FILES.jsonl);
    }
    if (dupWriter) {
      await dupWriter.close();
      await dupWriter.commit();
      files.push(EXPORT_FILES.duplicates);
    } else {
      // A list from an earlier --dedup export would no longer describe this one.
      await rm(join(out, EXPORT_FILES.duplicates), { force: true });
    }
    if (filterWriter) {
      await filterWriter.close();
      await filterWriter.commit();
      files.push(EXPORT_FILES.filtered);
    } else await rm(join(out, EXPORT_FILES.filtered), { force: true });
  } catch (error) {
    await jsonl?.abort();
    await dupWriter?.abort();
    await filterWriter?.abort();
    for (const path of partialShards) await rm(path, { force: true });
    throw error;
  }
  return { outDir: out, files, read, written, duplicates, filtered, metrics: metrics.summary() };
}
