/**
 * The figures of `consistent-chat report`, gathered in one streaming pass over a run's files:
 * dialogues per intent × info flow, topic coverage, turns and word counts, tokens (from summary.json),
 * failures by type and stage, and duplicates across dialogues and across queries.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { costOf, priceFor, type Prices } from '../shared/pricing';
import type { JudgeCalibration, RunSummary } from '../run/schemas';
import { calibrationSchema } from '../run/status';
import { BUILTIN_TAXONOMY, taxonomySchema } from '../method/taxonomy';
import { MetricsAccumulator, metricsOf, PAPER_BANDS, type MetricsSummary } from '../method/metrics';
import { wordCount } from '../method/replies';
import { QualityAccumulator, type QualityStats } from './quality';
import { DuplicateIndex, dialogueText, type DedupOptions, type DuplicateKind } from '../export/dedup';
import {
  checkRunDir,
  readDialogueRecords,
  readFailureLines,
  readRunFile,
  type RunFileInfo,
  type StoredDialogueRecord,
} from '../export/records';

/** The paper's dataset means, for the histograms' marks: the bands of src/method/metrics.ts. */
export const PAPER_MEANS = PAPER_BANDS;

/**
 * Distinct dialogues, and distinct queries, the report's duplicate indexes hold (about 2.5 KB each):
 * beyond it a very large run is still checked against the first ones, in bounded memory.
 */
export const REPORT_INDEX_CAP = 200_000;

/** File the CLI's generate writes at the end of a run: the run's summary (tokens, calls, per intent). */
export const SUMMARY_FILE = 'summary.json';

const tokensSchema = z.looseObject({ prompt: z.number(), completion: z.number() });
/**
 * summary.json as far as the report reads it. `stages` (tokens per LLM stage) and `cost`
 * (estimated USD) are shown when a run recorded them.
 */
export const summaryFileSchema = z.looseObject({
  tokens: tokensSchema,
  llmCalls: z.number().optional(),
  intents: z.array(z.looseObject({ intent: z.string(), tokens: tokensSchema })).optional(),
  stages: z.record(z.string(), tokensSchema).optional(),
  cost: z
    .looseObject({
      total: z.number(),
      currency: z.string().default('USD'),
      byStage: z.record(z.string(), z.number()).optional(),
    })
    .optional(),
});
export type SummaryFile = z.infer<typeof summaryFileSchema>;

export interface DuplicateExample {
  id: string;
  of: string;
  kind: DuplicateKind;
  similarity: number;
}

export interface ReportStats {
  runId: string | undefined;
  model: string[];
  dialogues: number;
  /** [intent, info flow, dialogues]. */
  intentFlow: [string, string, number][];
  topics: { intent: string; used: number; available: number | undefined }[];
  /** User queries per dialogue → dialogues. */
  turns: [number, number][];
  queryWords: { counts: [number, number][]; mean: number; total: number };
  responseWords: { counts: [number, number][]; mean: number; total: number };
  tokens: SummaryFile | undefined;
  failures: { total: number; byTypeStage: [string, string, number][] };
  duplicates: {
    threshold: number;
    /** Distinct texts each index held at most; set when one was reached (later texts only checked). */
    indexCap: number | undefined;
    dialogues: Record<DuplicateKind, number>;
    queries: Record<DuplicateKind, number>;
    examples: DuplicateExample[];
  };
  run: RunFileInfo | undefined;
  /** Per-dialogue metrics (stored with the record, or computed here for older records). */
  metrics: MetricsSummary;
  /** The judge's verdicts (runs with a judge). */
  quality: QualityStats;
}

const bump = <K>(map: Map<K, number>, key: K, by = 1) => map.set(key, (map.get(key) ?? 0) + by);
const sorted = (map: Map<number, number>): [number, number][] =>
  [...map.entries()].sort((a, b) => a[0] - b[0]);

/** Topics available per intent name: from the run's own taxonomy when run.json carries one. */
function topicCounts(run: RunFileInfo | undefined): Map<string, number> {
  const parsed = taxonomySchema.safeParse(run?.input.taxonomy);
  const taxonomy = parsed.success ? parsed.data : BUILTIN_TAXONOMY;
  return new Map(taxonomy.intents.map((i) => [i.name, i.topics.length]));
}

/**
 * Writes the run's summary beside its records (atomically), so `report` can show tokens after the
 * Temporal server is gone. Holds counts only: no key, no endpoint.
 */
export async function writeSummaryFile(dir: string, summary: RunSummary, prices: Prices = {}): Promise<void> {
  const path = join(dir, SUMMARY_FILE);
  await writeFile(`${path}.tmp`, summaryFileText(summary, prices));
  await rename(`${path}.tmp`, path);
}

/** summary.json's text: the summary with paid tokens and cost by stage. */
export function summaryFileText(summary: RunSummary, prices: Prices = {}): string {
  const price = priceFor(summary.model, prices);
  // Paid tokens by stage: the calls that succeeded and the failed attempts, which were paid too.
  const stages = summary.stageTokens
    ? Object.fromEntries(
        (['skeleton', 'responses', 'judge'] as const)
          .filter((stage) => summary.stageTokens![stage])
          .map((stage) => [
            stage,
            {
              prompt: summary.stageTokens![stage]!.prompt + (summary.failedAttempts?.[stage]?.prompt ?? 0),
              completion:
                summary.stageTokens![stage]!.completion + (summary.failedAttempts?.[stage]?.completion ?? 0),
            },
          ]),
      )
    : undefined;
  // The judge's stage at its own model's price.
  const priceOf = (stage: string) =>
    stage === 'judge' && summary.judgeModel ? priceFor(summary.judgeModel, prices) : price;
  const byStage =
    stages && price
      ? Object.fromEntries(
          Object.entries(stages).map(([stage, t]) => [stage, costOf(priceOf(stage), t) ?? 0]),
        )
      : undefined;
  const file = {
    ...summary,
    ...(stages && { stages }),
    ...(summary.estimatedCostUsd !== undefined && {
      cost: { total: summary.estimatedCostUsd, currency: 'USD', ...(byStage && { byStage }) },
    }),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** The judge's calibration recorded in summary.json, when the run calibrated it (and the file is readable). */
export async function readCalibration(dir: string): Promise<JudgeCalibration | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(join(dir, SUMMARY_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  const parsed = calibrationSchema.safeParse((value as { calibration?: unknown } | null)?.calibration);
  return parsed.success ? parsed.data : undefined;
}

async function readSummary(dir: string): Promise<SummaryFile | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, SUMMARY_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = summaryFileSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

/** A histogram of word counts, with their mean. */
class WordHistogram {
  private readonly counts = new Map<number, number>();
  private sum = 0;
  private n = 0;
  add(words: number): void {
    bump(this.counts, words);
    this.sum += words;
    this.n++;
  }
  summary() {
    return { counts: sorted(this.counts), mean: this.n ? this.sum / this.n : 0, total: this.n };
  }
}

/** Exact and near duplicates among whole dialogues and among single queries, with up to 20 examples. */
class DuplicateTally {
  private readonly maxIndexed: number;
  private readonly dialogueIndex: DuplicateIndex;
  private readonly queryIndex: DuplicateIndex;
  readonly result: ReportStats['duplicates'];

  constructor(dedup: Partial<DedupOptions>) {
    const options = { maxIndexed: REPORT_INDEX_CAP, ...dedup };
    this.maxIndexed = options.maxIndexed;
    this.dialogueIndex = new DuplicateIndex(options);
    this.queryIndex = new DuplicateIndex(options);
    this.result = {
      threshold: this.dialogueIndex.options.threshold,
      indexCap: undefined,
      dialogues: { exact: 0, near: 0 },
      queries: { exact: 0, near: 0 },
      examples: [],
    };
  }

  /** The query at `turn` of dialogue `id`. */
  addQuery(id: string, turn: number, text: string): void {
    const match = this.queryIndex.add(`${id}#${turn}`, text);
    if (match) this.result.queries[match.kind]++;
  }

  addDialogue(record: StoredDialogueRecord): void {
    const match = this.dialogueIndex.add(record.id, dialogueText(record.conversation));
    if (!match) return;
    this.result.dialogues[match.kind]++;
    if (this.result.examples.length < 20) this.result.examples.push({ id: record.id, ...match });
  }

  finish(): ReportStats['duplicates'] {
    if (this.dialogueIndex.saturated || this.queryIndex.saturated) this.result.indexCap = this.maxIndexed;
    return this.result;
  }
}

/** failures.jsonl counted by failure type and stage. */
async function failureCounts(dir: string): Promise<ReportStats['failures']> {
  const byTypeStage = new Map<string, number>();
  let total = 0;
  for await (const failure of readFailureLines(dir)) {
    total++;
    bump(byTypeStage, `${failure.type}\u0000${failure.stage}`);
  }
  return {
    total,
    byTypeStage: [...byTypeStage.entries()].map(([k, v]) => {
      const [type, stage] = k.split('\u0000') as [string, string];
      return [type, stage, v];
    }),
  };
}

export async function collectStats(dir: string, dedup: Partial<DedupOptions> = {}): Promise<ReportStats> {
  await checkRunDir(dir);
  const run = await readRunFile(dir);
  const available = topicCounts(run);
  const intentFlow = new Map<string, number>();
  const topics = new Map<string, Set<string>>();
  const turns = new Map<number, number>();
  const queryWords = new WordHistogram();
  const responseWords = new WordHistogram();
  const models = new Set<string>();
  const duplicates = new DuplicateTally(dedup);
  const metrics = new MetricsAccumulator();
  const quality = new QualityAccumulator();
  let dialogues = 0;

  for await (const record of readDialogueRecords(dir)) {
    dialogues++;
    quality.add(record);
    const measured = metricsOf(record);
    metrics.add(measured.metrics, record.conversation.length / 2, measured.stored);
    models.add(record.model);
    bump(intentFlow, `${record.intent}\u0000${record.info_flow}`);
    let set = topics.get(record.intent);
    if (!set) topics.set(record.intent, (set = new Set()));
    set.add(record.topic);
    bump(turns, record.conversation.length / 2);
    record.conversation.forEach((turn, i) => {
      const words = wordCount(turn.value);
      if (turn.role !== 'user') return responseWords.add(words);
      queryWords.add(words);
      duplicates.addQuery(record.id, i / 2, turn.value);
    });
    duplicates.addDialogue(record);
  }

  return {
    runId: run?.runId,
    model: [...models],
    dialogues,
    intentFlow: [...intentFlow.entries()].map(([k, v]) => {
      const [intent, flow] = k.split('\u0000') as [string, string];
      return [intent, flow, v];
    }),
    topics: [...topics.entries()].map(([intent, used]) => {
      return { intent, used: used.size, available: available.get(intent) };
    }),
    turns: sorted(turns),
    queryWords: queryWords.summary(),
    responseWords: responseWords.summary(),
    tokens: await readSummary(dir),
    failures: await failureCounts(dir),
    duplicates: duplicates.finish(),
    run,
    metrics: metrics.summary(),
    quality: quality.summary(),
  };
}
