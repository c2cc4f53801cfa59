/**
 * The dataset card (`README.md`) of an `hf` export: the YAML header the Hugging Face Hub reads
 * (configs with data_files, license, language, task categories, size category) and the run's facts.
 */
import { stringify } from 'yaml';
import { METRIC_NAMES, PAPER_BANDS, type MetricsSummary } from '../method/metrics';
import type { RunFileInfo } from './records';
import type { QualityStats } from '../report/quality';
import type { JudgeCalibration } from '../run/schemas';

export interface CardFacts {
  run: RunFileInfo | undefined;
  generatorVersion: string;
  rows: number;
  shards: number;
  perIntent: Map<string, number>;
  perFlow: Map<string, number>;
  perIntentFlow: Map<string, number>;
  models: Map<string, number>;
  system: string | undefined;
  dedup: { exact: number; near: number; threshold: number } | undefined;
  /** Each `--filter` as written, with the rows it removed. @default [] */
  filtered?: { filter: string; removed: number }[];
  /** The metrics of the rows written. */
  metrics?: MetricsSummary;
  /** The judge's verdicts on the rows written. */
  quality?: QualityStats;
  /** How well the run's judge separated the calibration set (summary.json), when it was calibrated. */
  calibration?: JudgeCalibration;
  license: string;
  language: string[];
}

/** The Hub's size buckets. */
export function sizeCategory(rows: number): string {
  const buckets: [number, string][] = [
    [1e3, 'n<1K'],
    [1e4, '1K<n<10K'],
    [1e5, '10K<n<100K'],
    [1e6, '100K<n<1M'],
    [1e7, '1M<n<10M'],
    [1e8, '10M<n<100M'],
    [1e9, '100M<n<1B'],
  ];
  return buckets.find(([limit]) => rows < limit)?.[1] ?? 'n>1T';
}

/** Run settings worth publishing: the input less local paths and queue names. */
const PRIVATE_INPUT_FIELDS = new Set(['outDir', 'storageTaskQueue', 'paused']);
/** Summarised, not embedded: the full method is tens of KB (every topic of every intent, used or not). */
const METHOD_FIELDS = new Set(['taxonomy', 'prompts']);
/** Longest setting value shown as it is; longer ones are cut with a pointer to run.json. */
const MAX_SETTING_CHARS = 200;

interface TaxonomyShape {
  intents?: { id?: string; name?: string; infoFlows?: string[]; topics?: unknown[] }[];
  infoFlows?: Record<string, { name?: string }>;
}

/**
 * The taxonomy as the card tells it: the intents this dataset holds with their flows and topic counts,
 * and one line for the rest. The files themselves are named: the run's directory holds them.
 */
function methodSection(
  input: Record<string, unknown>,
  used: Map<string, number>,
  methodHash: unknown,
): string[] {
  const taxonomy = input.taxonomy as TaxonomyShape | undefined;
  if (!taxonomy?.intents && !input.prompts) return [];
  const lines = ['## Taxonomy and prompts', ''];
  if (taxonomy?.intents) {
    const flowName = (id: string) => taxonomy.infoFlows?.[id]?.name ?? id;
    const inData = taxonomy.intents.filter((i) => used.has(i.name ?? '') || used.has(i.id ?? ''));
    lines.push(
      `The run's taxonomy has ${taxonomy.intents.length} intents and ${Object.keys(taxonomy.infoFlows ?? {}).length} information flows; ` +
        `this dataset draws on ${inData.length} of the intents:`,
      '',
      '| intent | information flows | topics in the list |',
      '|---|---|---:|',
      ...inData.map(
        (i) =>
          `| ${cell(i.name ?? i.id ?? '')} | ${cell((i.infoFlows ?? []).map(flowName).join(', '))} | ${i.topics?.length ?? 0} |`,
      ),
      '',
    );
  }
  lines.push(
    "The full taxonomy and the prompt templates are in the run's output directory: [`taxonomy.yaml`](../../taxonomy.yaml) " +
      `and [\`prompts/\`](../../prompts) (links that hold beside a default export, \`DIR/export/hf\`)${typeof methodHash === 'string' ? `; method hash \`${cell(methodHash)}\`` : ''}.`,
    '',
  );
  return lines;
}

const settingValue = (v: unknown) => {
  const json = JSON.stringify(v);
  return json.length > MAX_SETTING_CHARS
    ? `\`${cell(json.slice(0, MAX_SETTING_CHARS))}…\` (see run.json)`
    : `\`${cell(json)}\``;
};

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function countTable(title: string, counts: Map<string, number>): string {
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return [`| ${title} | dialogues |`, '|---|---:|', ...rows.map(([k, v]) => `| ${cell(k)} | ${v} |`)].join(
    '\n',
  );
}

const fixed = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(v < 2 ? 3 : 1));

/** The judge's scores of the exported rows: how many were judged, by whom, and their distribution. */
export function qualitySection(quality: QualityStats, rows: number): string[] {
  if (quality.tally.judged === 0) return [];
  const flags = Object.entries(quality.tally.flags).map(([flag, n]) => `\`${flag}\` ${n}`);
  return [
    '## Judge scores',
    '',
    `${quality.tally.judged} of ${rows} rows carry a consistency score from ${quality.models.map(cell).join(', ')} (1-10: how well`,
    "the assistant keeps to the user's facts and its own earlier answers), mean",
    `${quality.mean!.toFixed(2)}. Flags named: ${flags.join(', ') || 'none'}.`,
    '',
    '| score | rows |',
    '|---:|---:|',
    ...quality.tally.scores.flatMap((n, i) => (n ? [`| ${i + 1} | ${n} |`] : [])),
    '',
  ];
}

/** The run's judge on the calibration set: how far its scores can be trusted. */
export function calibrationSection(c: JudgeCalibration): string[] {
  const auc = c.auc === undefined ? 'not measurable' : c.auc.toFixed(2);
  const gap = c.gap === undefined ? 'not measurable' : `${c.gap.toFixed(1)} points`;
  return [
    '## Judge calibration',
    '',
    `Before the first dialogue, the judge ${cell(c.model)} scored the calibration set of consistent-chat (${c.dialogues}`,
    `dialogues: consistent ones and ${c.planted} twins with one planted failure each${c.unscored ? `; ${c.unscored} went unscored` : ''}).`,
    `AUC ${auc} (the chance that a consistent dialogue scores above a planted one; 0.5 is chance), score gap`,
    `${gap}; ${c.flagged} of ${c.planted} planted failures named by their flag.`,
    ...(c.nearChance
      ? [
          '',
          '**Near chance:** this judge barely tells consistent dialogues from planted failures; its scores say little.',
        ]
      : []),
    '',
  ];
}

/** The metrics of the exported rows, the paper's means beside the word counts. */
export function metricsSection(summary: MetricsSummary): string[] {
  const { queryWords, responseWords } = PAPER_BANDS;
  const rows = METRIC_NAMES.map((name) => {
    const m = summary.metrics[name];
    const nulls = m.nulls ? ` (${m.nulls} without a value)` : '';
    return `| \`${name}\`${nulls} | ${fixed(m.mean)} | ${fixed(m.p10)} | ${fixed(m.p50)} | ${fixed(m.p90)} |`;
  });
  return [
    '## Dialogue metrics',
    '',
    'Computed from the text alone, no model: distinct-n is distinct word n-grams over all n-grams of one',
    "side's turns; self-repetition is the share of a response's word trigrams an earlier response of the",
    'dialogue already used; a restated query repeats half of an earlier query. Per dialogue, over the rows',
    `written; ${summary.stored} of ${summary.dialogues} rows carried them from generation, the rest were computed at export.`,
    '',
    '| metric | mean | p10 | median | p90 |',
    '|---|---:|---:|---:|---:|',
    ...rows,
    '',
    '| words per text, all rows | this dataset | paper (arXiv 2506.03558) |',
    '|---|---:|---:|',
    `| user query | ${summary.pooled.wordsPerQuery.toFixed(1)} | ${queryWords.low}–${queryWords.high} |`,
    `| assistant response | ${summary.pooled.wordsPerResponse.toFixed(1)} | ${responseWords.low}–${responseWords.high} |`,
    '',
  ];
}

/** Columns of the `hf` rows, and how to load them: the same in every card. */
const COLUMNS_AND_LOADING = [
  '## Columns',
  '',
  '| column | type | content |',
  '|---|---|---|',
  '| `id` | string | `<runId>.<intent>.<index>`, unique |',
  '| `messages` | list of {`role`, `content`} | the dialogue (`system` first when given, then `user` and `assistant` alternating) |',
  '| `category` | string | the core-topic label the model wrote |',
  '| `intent` | string | interaction intent |',
  '| `info_flow` | string | information flow the user side follows |',
  '| `topic` | string | the topic of the plan (the leaf, in runs with topic expansion) |',
  '| `model` | string | the model that wrote the dialogue |',
  "| `topic_path` | list of string, or null | the leaf topic's path from its seed topic (runs with topic expansion) |",
  '| `attributes` | string (a JSON object), or null | the user attributes the dialogue was planned with (runs with attributes) |',
  '',
  '## Loading',
  '',
  '```python',
  'from datasets import load_dataset',
  'ds = load_dataset("path/to/this/directory", split="train")',
  '```',
  '',
];

/** The Hub's YAML header: licence, language, task, size and where the rows are. */
function cardHeader(facts: CardFacts) {
  return {
    license: facts.license,
    language: facts.language,
    task_categories: ['text-generation'],
    tags: ['synthetic', 'multi-turn', 'conversational', 'consistentchat'],
    size_categories: [sizeCategory(facts.rows)],
    pretty_name: facts.run ? `ConsistentChat run ${facts.run.runId}` : 'ConsistentChat dialogues',
    configs: [{ config_name: 'default', data_files: [{ split: 'train', path: 'data/train-*' }] }],
  };
}

/** The facts table: generator, model, run, rows, and what the export left out. */
function factsSection(facts: CardFacts): string[] {
  const filtered = facts.filtered ?? [];
  const removed = filtered.reduce((sum, f) => sum + f.removed, 0);
  const extraRunFacts = facts.run
    ? Object.entries(facts.run)
        .filter(([k]) => !['input', 'runId', 'createdAt'].includes(k))
        .map(([k, v]) => `| \`${k}\` | ${settingValue(v)} |`)
    : [];
  return [
    '## Facts',
    '',
    '| fact | value |',
    '|---|---|',
    `| generator | consistent-chat ${facts.generatorVersion} |`,
    `| model | ${[...facts.models.keys()].map(cell).join(', ') || '(none)'} |`,
    ...(facts.run ? [`| run id | ${cell(facts.run.runId)} |`] : []),
    ...(facts.run?.createdAt ? [`| run created | ${facts.run.createdAt} |`] : []),
    `| rows | ${facts.rows} |`,
    `| shards | ${facts.shards} |`,
    `| system message | ${facts.system === undefined ? '(none)' : `\`${cell(facts.system)}\``} |`,
    facts.dedup
      ? `| duplicates dropped | ${facts.dedup.exact} exact, ${facts.dedup.near} near (MinHash Jaccard ≥ ${facts.dedup.threshold}) |`
      : '| duplicates dropped | none (exported without --dedup) |',
    filtered.length
      ? `| rows removed by metric filters | ${removed} (see Filters) |`
      : '| rows removed by metric filters | none (exported without --filter) |',
    ...extraRunFacts,
    '',
  ];
}

/** The run's input as run.json has it, less what is private and the method (its own section). */
function settingsSection(run: CardFacts['run']): string[] {
  const settings = run
    ? Object.entries(run.input)
        .filter(([k]) => !PRIVATE_INPUT_FIELDS.has(k) && !METHOD_FIELDS.has(k))
        .map(([k, v]) => `| \`${k}\` | ${settingValue(v)} |`)
    : [];
  return settings.length
    ? ['## Generation settings (run.json)', '', '| setting | value |', '|---|---|', ...settings, '']
    : [];
}

function filtersSection(filtered: NonNullable<CardFacts['filtered']>): string[] {
  if (!filtered.length) return [];
  return [
    '## Filters',
    '',
    'Applied in this order, before de-duplication; each removed the rows that failed it among those the',
    'filters above it kept. A metric with no value (nothing to measure) passes; a judge filter removes',
    'rows without a score. The removed ids are in',
    '`filtered.jsonl` beside this card.',
    '',
    '| filter | rows removed |',
    '|---|---:|',
    ...filtered.map((f) => `| \`${cell(f.filter)}\` | ${f.removed} |`),
    '',
  ];
}

function countSections(facts: CardFacts): string[] {
  return [
    '## Dialogues per intent',
    '',
    countTable('intent', facts.perIntent),
    '',
    '## Dialogues per information flow',
    '',
    countTable('information flow', facts.perFlow),
    '',
    '## Dialogues per intent and information flow',
    '',
    countTable('intent / information flow', facts.perIntentFlow),
    '',
  ];
}

export function datasetCard(facts: CardFacts): string {
  const header = cardHeader(facts);
  const body = [
    `# ${header.pretty_name}`,
    '',
    `Multi-turn dialogues generated with consistent-chat ${facts.generatorVersion} following the ConsistentChat`,
    'method (skeleton-guided dialogues, arXiv 2506.03558): each dialogue has an interaction intent and an',
    'information flow; the user queries were written first, then one assistant response per query.',
    '',
    ...factsSection(facts),
    ...settingsSection(facts.run),
    ...(facts.run ? methodSection(facts.run.input, facts.perIntent, facts.run.methodHash) : []),
    ...filtersSection(facts.filtered ?? []),
    ...(facts.metrics ? metricsSection(facts.metrics) : []),
    ...(facts.quality ? qualitySection(facts.quality, facts.rows) : []),
    ...(facts.calibration ? calibrationSection(facts.calibration) : []),
    ...countSections(facts),
    ...COLUMNS_AND_LOADING,
  ];
  return `---\n${stringify(header)}---\n\n${body.join('\n')}`;
}
