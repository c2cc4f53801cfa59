/**
 * Cheap quality metrics of one dialogue, from its text alone (no model, no network): lexical diversity
 * (distinct-1/2 of each side), mean words per query and per response (to set against the paper's
 * means), the assistant repeating its own phrasing across turns, and user queries that restate an
 * earlier query. Pure and deterministic: the storage activity stores them with each record, and
 * `export`/`report` compute them the same way for records stored without them.
 *
 * Words are `textWords` (lower-cased runs of letters, digits and apostrophes), the tokens the reply
 * checks and `bench/dialogue-stats.ts` count, so every word figure of the package agrees.
 */
import { z } from 'zod';
import type { DialogueRecord } from './types';
import { textWords } from './replies';

/**
 * The definitions' version, stored in each record's `metrics`. Bump it when a definition changes:
 * readers then recompute older records' metrics instead of mixing two definitions in one figure.
 */
export const METRICS_VERSION = 1;

/**
 * The paper's dataset means (arXiv 2506.03558, as given in issue 23): words per user query and per
 * assistant response, lowest and highest over its reported subsets. They bound a dataset's mean, not
 * each dialogue's: a single dialogue far outside them says little, a run's mean outside them says more.
 */
export const PAPER_BANDS = {
  queryWords: { low: 18.7, high: 20.8 },
  responseWords: { low: 55.6, high: 62.9 },
} as const;

export const METRIC_LIMITS = {
  /**
   * A query restates an earlier one when the overlap coefficient of their word trigrams (shared
   * trigrams over the smaller set) reaches this: half of the shorter query said again. The reply
   * checks reject 0.8 at generation time; 0.5 counts the milder repeats they let through.
   */
  restatedQuery: 0.5,
  /** Fewer distinct trigrams than this (a query under 6 words): only the same words count as a restatement. */
  minTrigramsForOverlap: 4,
} as const;

/** Ratios are stored to 4 decimals and word means to 2: enough to rank and filter, short on disk. */
const round = (value: number, places: number) => {
  const scale = 10 ** places;
  return Math.round(value * scale) / scale;
};

const ratio = z.number().min(0).max(1);
/** Null when the side has no n-gram at all (e.g. every query one word long for distinct-2). */
const bySide = z.object({ user: ratio.nullable(), assistant: ratio.nullable() }).strict();

/** The `metrics` field of a stored record (`dialogs.jsonl`), at `METRICS_VERSION`. */
export const dialogueMetricsSchema = z
  .object({
    version: z.literal(METRICS_VERSION),
    /** Distinct word unigrams over all word unigrams of the side's turns. */
    distinct_1: bySide,
    /** Distinct word bigrams (within a turn) over all word bigrams of the side's turns. */
    distinct_2: bySide,
    /** Mean words per user query. */
    words_per_query: z.number().min(0),
    /** Mean words per assistant response. */
    words_per_response: z.number().min(0),
    /**
     * Share of the word trigrams of responses 2..n already used by an earlier response (each response's
     * distinct trigrams, pooled). Null with one response.
     */
    self_repetition: ratio.nullable(),
    /** The same share for the single worst response. Null with one response. */
    self_repetition_max: ratio.nullable(),
    /** User queries (after the first) that restate an earlier query (`METRIC_LIMITS.restatedQuery`). */
    restated_queries: z.number().int().min(0),
  })
  .strict();
export type DialogueMetrics = z.infer<typeof dialogueMetricsSchema>;

function ngrams(words: readonly string[], n: number): string[] {
  const out: string[] = [];
  // Tokens hold no spaces, so a space-joined n-gram is unambiguous.
  for (let i = 0; i + n <= words.length; i++) out.push(words.slice(i, i + n).join(' '));
  return out;
}

/** Distinct-n (Li et al., 2016) over several texts: n-grams never span two texts. */
export function distinctN(texts: readonly (readonly string[])[], n: number): number | null {
  const seen = new Set<string>();
  let total = 0;
  for (const words of texts)
    for (const gram of ngrams(words, n)) {
      seen.add(gram);
      total++;
    }
  return total === 0 ? null : round(seen.size / total, 4);
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** How much each response (from the second) reuses trigrams of the responses before it: pooled and worst. */
export function selfRepetition(responses: readonly (readonly string[])[]): {
  pooled: number | null;
  max: number | null;
} {
  const earlier = new Set<string>();
  let shared = 0;
  let total = 0;
  let max: number | null = null;
  responses.forEach((words, i) => {
    const own = new Set(ngrams(words, 3));
    if (i > 0 && own.size > 0) {
      let reused = 0;
      for (const gram of own) if (earlier.has(gram)) reused++;
      shared += reused;
      total += own.size;
      max = Math.max(max ?? 0, reused / own.size);
    }
    for (const gram of own) earlier.add(gram);
  });
  return {
    pooled: total === 0 ? null : round(shared / total, 4),
    max: max === null ? null : round(max, 4),
  };
}

/** Whether two queries say largely the same (same words, or trigram overlap coefficient at the limit). */
function restates(a: readonly string[], b: readonly string[]): boolean {
  if (a.length > 0 && a.length === b.length && a.every((w, i) => w === b[i])) return true;
  const ta = new Set(ngrams(a, 3));
  const tb = new Set(ngrams(b, 3));
  const smaller = Math.min(ta.size, tb.size);
  if (smaller < METRIC_LIMITS.minTrigramsForOverlap) return false;
  let shared = 0;
  for (const gram of ta) if (tb.has(gram)) shared++;
  return shared / smaller >= METRIC_LIMITS.restatedQuery;
}

/** Queries (after the first) that restate any earlier query. */
export function restatedQueries(queries: readonly (readonly string[])[]): number {
  let count = 0;
  queries.forEach((q, i) => {
    if (queries.slice(0, i).some((earlier) => restates(earlier, q))) count++;
  });
  return count;
}

/** The metrics of one dialogue's turns. */
export function dialogueMetrics(conversation: DialogueRecord['conversation']): DialogueMetrics {
  const queries: string[][] = [];
  const responses: string[][] = [];
  for (const turn of conversation) (turn.role === 'user' ? queries : responses).push(textWords(turn.value));
  const repetition = selfRepetition(responses);
  return {
    version: METRICS_VERSION,
    distinct_1: { user: distinctN(queries, 1), assistant: distinctN(responses, 1) },
    distinct_2: { user: distinctN(queries, 2), assistant: distinctN(responses, 2) },
    words_per_query: round(mean(queries.map((q) => q.length)), 2),
    words_per_response: round(mean(responses.map((r) => r.length)), 2),
    self_repetition: repetition.pooled,
    self_repetition_max: repetition.max,
    restated_queries: restatedQueries(queries),
  };
}

/**
 * A record's metrics: the stored ones when they parse at the current version, else computed now
 * (records stored before metrics existed, or by another version of their definitions).
 */
export function metricsOf(record: Pick<DialogueRecord, 'conversation'> & { metrics?: unknown }): {
  metrics: DialogueMetrics;
  stored: boolean;
} {
  const parsed = dialogueMetricsSchema.safeParse(record.metrics);
  return parsed.success
    ? { metrics: parsed.data, stored: true }
    : { metrics: dialogueMetrics(record.conversation), stored: false };
}

/**
 * The metrics by name, as `export --filter` and the report address them. A null (nothing measured:
 * no second response, no bigram) is returned as null, and a filter lets it through.
 */
export const METRIC_FIELDS = {
  'distinct_1.user': (m: DialogueMetrics) => m.distinct_1.user,
  'distinct_1.assistant': (m: DialogueMetrics) => m.distinct_1.assistant,
  'distinct_2.user': (m: DialogueMetrics) => m.distinct_2.user,
  'distinct_2.assistant': (m: DialogueMetrics) => m.distinct_2.assistant,
  words_per_query: (m: DialogueMetrics) => m.words_per_query,
  words_per_response: (m: DialogueMetrics) => m.words_per_response,
  self_repetition: (m: DialogueMetrics) => m.self_repetition,
  self_repetition_max: (m: DialogueMetrics) => m.self_repetition_max,
  restated_queries: (m: DialogueMetrics) => m.restated_queries,
} as const satisfies Record<string, (m: DialogueMetrics) => number | null>;
export type MetricName = keyof typeof METRIC_FIELDS;
export const METRIC_NAMES = Object.keys(METRIC_FIELDS) as MetricName[];

/** Histogram bin width of each metric: hundredths for ratios, whole words and counts for the rest. */
export const METRIC_BIN_WIDTH = {
  'distinct_1.user': 0.01,
  'distinct_1.assistant': 0.01,
  'distinct_2.user': 0.01,
  'distinct_2.assistant': 0.01,
  words_per_query: 1,
  words_per_response: 1,
  self_repetition: 0.01,
  self_repetition_max: 0.01,
  restated_queries: 1,
} as const satisfies Record<MetricName, number>;

/** One metric over many dialogues. Quantiles are bin starts, so exact to a bin width; min and max are exact. */
export interface MetricDistribution {
  /** Dialogues with a value (not null). */
  n: number;
  nulls: number;
  mean: number;
  p10: number;
  p50: number;
  p90: number;
  min: number;
  max: number;
  /** [bin start, dialogues], ascending. */
  bins: [number, number][];
}

export interface MetricsSummary {
  dialogues: number;
  /** Records whose stored metrics were used; the others' were computed when read. */
  stored: number;
  metrics: Record<MetricName, MetricDistribution>;
  /** Words per text over all queries and all responses (each text weighs one), against the paper's means. */
  pooled: { wordsPerQuery: number; wordsPerResponse: number; queries: number; responses: number };
  /** Dialogues whose own mean lies inside the paper's band. */
  inBand: { query: number; response: number };
}

const inside = (v: number, band: { low: number; high: number }) => v >= band.low && v <= band.high;

/**
 * Gathers the metrics of a stream of dialogues in bounded memory (one count per bin), for the report
 * and the dataset card.
 */
export class MetricsAccumulator {
  private dialogues = 0;
  private stored = 0;
  private readonly sums = new Map(
    METRIC_NAMES.map((name) => [
      name,
      { n: 0, nulls: 0, sum: 0, min: Infinity, max: -Infinity, bins: new Map<number, number>() },
    ]),
  );
  private queryWords = 0;
  private responseWords = 0;
  private queries = 0;
  private responses = 0;
  private inBand = { query: 0, response: 0 };

  /** Adds one dialogue: its metrics, its number of user queries (= responses), and whether they were stored. */
  add(metrics: DialogueMetrics, turns: number, stored: boolean): void {
    this.dialogues++;
    if (stored) this.stored++;
    for (const name of METRIC_NAMES) {
      const value = METRIC_FIELDS[name](metrics);
      const s = this.sums.get(name)!;
      if (value === null) {
        s.nulls++;
        continue;
      }
      s.n++;
      s.sum += value;
      s.min = Math.min(s.min, value);
      s.max = Math.max(s.max, value);
      // Rounded first: 0.29 / 0.01 is 28.999… in floating point.
      const bin = Math.floor(round(value / METRIC_BIN_WIDTH[name], 6));
      s.bins.set(bin, (s.bins.get(bin) ?? 0) + 1);
    }
    this.queries += turns;
    this.responses += turns;
    this.queryWords += metrics.words_per_query * turns;
    this.responseWords += metrics.words_per_response * turns;
    if (inside(metrics.words_per_query, PAPER_BANDS.queryWords)) this.inBand.query++;
    if (inside(metrics.words_per_response, PAPER_BANDS.responseWords)) this.inBand.response++;
  }

  summary(): MetricsSummary {
    const metrics = {} as Record<MetricName, MetricDistribution>;
    for (const name of METRIC_NAMES) {
      const s = this.sums.get(name)!;
      const width = METRIC_BIN_WIDTH[name];
      const bins = [...s.bins.entries()].sort((a, b) => a[0] - b[0]);
      const quantile = (q: number) => {
        if (s.n === 0) return 0;
        const rank = Math.max(1, Math.ceil(q * s.n));
        let seen = 0;
        for (const [bin, count] of bins) if ((seen += count) >= rank) return round(bin * width, 6);
        return 0;
      };
      metrics[name] = {
        n: s.n,
        nulls: s.nulls,
        mean: s.n ? round(s.sum / s.n, 4) : 0,
        p10: quantile(0.1),
        p50: quantile(0.5),
        p90: quantile(0.9),
        min: s.n ? s.min : 0,
        max: s.n ? s.max : 0,
        bins: bins.map(([bin, count]) => [round(bin * width, 6), count]),
      };
    }
    return {
      dialogues: this.dialogues,
      stored: this.stored,
      metrics,
      pooled: {
        wordsPerQuery: this.queries ? round(this.queryWords / this.queries, 2) : 0,
        wordsPerResponse: this.responses ? round(this.responseWords / this.responses, 2) : 0,
        queries: this.queries,
        responses: this.responses,
      },
      inBand: { ...this.inBand },
    };
  }
}
