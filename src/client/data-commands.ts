/**
 * The dataset commands of the CLI: `export` (training formats, optional de-duplication) and `report`
 * (report.html with charts, and the same figures as a table on the terminal). They read a run's
 * directory only and need no Temporal server.
 */
import { relative } from 'node:path';
import { Option, type Command } from 'commander';
import { judgeFilters, parseMetricFilter } from '../export/filters';
import { EXPORT_FORMATS, type ExportFormat } from '../export/formats';
import { METRIC_NAMES } from '../method/metrics';
import { ConfigError } from '../shared/errors';

/** Parses a `(0, 1]` threshold flag; the error names the flag. */
export function thresholdFlag(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0 || value > 1)
    throw new ConfigError('--near-threshold', `must be a number above 0 and at most 1, got "${raw}"`);
  return value;
}

export function addDataCommands(program: Command): void {
  addExportCommand(program);
  program
    .command('report')
    .description(
      'write DIR/report.html (charts of coverage, lengths, tokens, failures, duplicates) and print the figures',
    )
    .argument('<dir>', 'output directory of the run (holds dialogs.jsonl)')
    .option('--near-threshold <t>', 'MinHash Jaccard similarity for near-duplicates, (0, 1] (default 0.8)')
    .action(async (dir: string, opts: { nearThreshold?: string }) => {
      const threshold = thresholdFlag(opts.nearThreshold);
      const { formatReportTable, writeReport } = await import('../report/report.js');
      const { path, stats } = await writeReport(dir, threshold === undefined ? {} : { threshold });
      process.stdout.write(`${formatReportTable(stats)}\nwrote ${relative(process.cwd(), path) || path}\n`);
    });
}

interface ExportFlags {
  format: ExportFormat;
  out?: string;
  system?: string;
  dedup?: boolean;
  nearThreshold?: string;
  filter: string[];
  minScore?: string;
  maxFlags?: string;
  license?: string;
  language?: string;
}

function addExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      "write a run's dialogues as openai / sharegpt JSONL or a Hugging Face dataset (Parquet + card)",
    )
    .argument('<dir>', 'output directory of the run (holds dialogs.jsonl)')
    .addOption(new Option('--format <format>', 'output format').choices(EXPORT_FORMATS).makeOptionMandatory())
    .option('--out <path>', 'output directory (default DIR/export/FORMAT); nothing is written outside it')
    .option('--system <text>', 'a system message put first in every dialogue')
    .option(
      '--dedup',
      'drop exact and near-duplicate dialogues (first kept; the rest listed in duplicates.jsonl)',
    )
    .option('--near-threshold <t>', 'MinHash Jaccard similarity for near-duplicates, (0, 1] (default 0.8)')
    .option(
      '--filter <expr>',
      `keep dialogues whose metric passes, e.g. "distinct_2.assistant>=0.6"; repeatable; OP is >= <= > <; METRIC one of ${METRIC_NAMES.join(', ')}`,
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--min-score <n>', 'keep dialogues the judge scored n or more, 1-10 (unjudged ones are left out)')
    .option(
      '--max-flags <n>',
      'keep dialogues the judge flagged at most n kinds of failure (unjudged ones are left out)',
    )
    .option('--license <id>', 'licence id in the dataset card (hf; default "unknown")')
    .option('--language <codes>', 'comma-separated language codes in the dataset card (hf; default "en")')
    .action(runExport);
}

async function runExport(dir: string, opts: ExportFlags): Promise<void> {
  const threshold = thresholdFlag(opts.nearThreshold);
  const filters = [
    ...opts.filter.map(parseMetricFilter),
    ...judgeFilters(
      wholeFlag('--min-score', opts.minScore, 1, 10),
      wholeFlag('--max-flags', opts.maxFlags, 0, 5),
    ),
  ];
  // Loaded here: Arrow and Parquet take a tenth of a second that other commands need not pay.
  const { exportDataset } = await import('../export/export.js');
  const result = await exportDataset({
    dir,
    format: opts.format,
    out: opts.out,
    system: opts.system,
    dedup: opts.dedup === true,
    dedupOptions: threshold === undefined ? undefined : { threshold },
    filters,
    license: opts.license,
    language: opts.language?.split(',').map((s) => s.trim()),
  });
  const shown = relative(process.cwd(), result.outDir) || '.';
  const dropped = opts.dedup
    ? `, ${result.duplicates.exact} exact and ${result.duplicates.near} near duplicates left out`
    : '';
  const removed = result.filtered.map((f) => `  filter ${f.filter}: ${f.removed} removed\n`).join('');
  process.stdout.write(
    `exported ${result.written} of ${result.read} dialogues as ${opts.format} to ${shown}${dropped}\n` +
      removed +
      result.files.map((f) => `  ${f}\n`).join(''),
  );
}

/** A whole-number flag within bounds, or undefined when not given; the error names the flag. */
function wholeFlag(flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(flag, `must be a whole number from ${min} to ${max}; got "${raw}"`);
  return value;
}
