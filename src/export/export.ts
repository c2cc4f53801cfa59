/**
 * `consistent-chat export DIR --format openai|sharegpt|hf`: streams a run's dialogs.jsonl into a
 * training format. Every file is written as `<name>.partial` inside the output directory and renamed
 * into place at the end, so a failed export leaves the previous one intact, and nothing is written
 * outside that directory (its fixed file names cannot climb out of it; a symlinked `data/` is refused).
 */
import { lstat, mkdir, readdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { MetricsSummary } from '../method/metrics';
import { ConfigError } from '../shared/errors';
import { readCalibration } from '../report/stats';
import { datasetCard } from './card';
import { DEFAULT_DEDUP_OPTIONS, type DedupOptions, type DuplicateKind } from './dedup';
import { EXPORT_FILES, SHARD_NAME } from './files';
import type { MetricFilter } from './filters';
import { EXPORT_FORMATS, toHfRow, toOpenAi, toShareGpt, type ExportFormat, type HfRow } from './formats';
import { JsonlWriter } from './jsonl-writer';
import { writeParquetShards, type ParquetShardOptions } from './parquet';
import { checkRunDir, packageVersion, readRunFile } from './records';
import { Selection } from './selection';

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

export { EXPORT_FILES, type DuplicateLine, type FilteredLine } from './files';

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

export async function exportDataset(options: ExportOptions): Promise<ExportResult> {
  const { dir, out } = await checkExportOptions(options);
  const dedup = options.dedup ? { ...DEFAULT_DEDUP_OPTIONS, ...options.dedupOptions } : undefined;
  const selection = await Selection.open(options.filters ?? [], dedup, (name) =>
    JsonlWriter.open(join(out, name)),
  );
  const files: string[] = [];
  const partialShards: string[] = [];
  let jsonl: JsonlWriter | undefined;
  let written: number;
  try {
    if (options.format === 'hf') {
      const hf = await writeHfExport(dir, out, options, selection, partialShards);
      written = hf.rows;
      files.push(...hf.files);
    } else {
      jsonl = await JsonlWriter.open(join(out, EXPORT_FILES.jsonl));
      const shape = options.format === 'openai' ? toOpenAi : toShareGpt;
      for await (const record of selection.kept(dir)) await jsonl.write(shape(record, options.system));
      await jsonl.close();
      await jsonl.commit();
      written = jsonl.lines;
      files.push(EXPORT_FILES.jsonl);
    }
    await selection.commitLists(out, files);
  } catch (error) {
    await jsonl?.abort();
    await selection.abort();
    for (const path of partialShards) await rm(path, { force: true });
    throw error;
  }
  const { read, duplicates, filtered } = selection;
  return { outDir: out, files, read, written, duplicates, filtered, metrics: selection.metrics.summary() };
}

/**
 * The `hf` format: the kept records as Parquet shards under `data/` (replacing an earlier export's),
 * then the dataset card. `partial` holds the shards' paths while they are written (for the caller to
 * remove on failure), and is emptied once they are in place. Returns the rows and the files written.
 */
async function writeHfExport(
  dir: string,
  out: string,
  options: ExportOptions,
  selection: Selection,
  partial: string[],
): Promise<{ rows: number; files: string[] }> {
  const dataDir = join(out, EXPORT_FILES.dataDir);
  await mkdir(dataDir, { recursive: true });
  for (const name of await readdir(dataDir))
    if (name.startsWith('shard-') && name.endsWith('.partial'))
      await rm(join(dataDir, name), { force: true });
  const rows = (async function* (): AsyncGenerator<HfRow> {
    for await (const record of selection.kept(dir)) yield toHfRow(record, options.system);
  })();
  const result = await writeParquetShards(
    rows,
    (i) => {
      const path = join(dataDir, `shard-${i}.parquet.partial`);
      partial.push(path);
      return path;
    },
    options.parquet,
  );
  // The new shards replace every shard of an earlier export in this directory.
  for (const name of await readdir(dataDir))
    if (SHARD_NAME.test(name)) await rm(join(dataDir, name), { force: true });
  const files: string[] = [];
  for (const [i, path] of partial.entries()) {
    const name = EXPORT_FILES.shard(i, partial.length);
    await rename(path, join(dataDir, name));
    files.push(`${EXPORT_FILES.dataDir}/${name}`);
  }
  partial.length = 0;
  await writeCard(dir, out, options, selection, { rows: result.rows, shards: result.shards });
  return { rows: result.rows, files: [...files, EXPORT_FILES.card] };
}

/** The dataset card, written beside and renamed over: a symlink planted at README.md is replaced, never followed. */
async function writeCard(
  dir: string,
  out: string,
  options: ExportOptions,
  selection: Selection,
  written: { rows: number; shards: number },
): Promise<void> {
  const card = join(out, EXPORT_FILES.card);
  await rm(`${card}.partial`, { force: true });
  const { dedup } = selection;
  await writeFile(
    `${card}.partial`,
    datasetCard({
      run: await readRunFile(dir),
      generatorVersion: await packageVersion(),
      rows: written.rows,
      shards: written.shards,
      ...selection.counts,
      system: options.system,
      dedup: dedup ? { ...selection.duplicates, threshold: dedup.threshold } : undefined,
      filtered: selection.filtered,
      metrics: selection.metrics.summary(),
      quality: selection.quality.summary(),
      calibration: await readCalibration(dir),
      license: options.license ?? 'unknown',
      language: options.language ?? ['en'],
    }),
    { flag: 'wx' },
  );
  await rename(`${card}.partial`, card);
}
