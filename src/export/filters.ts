/**
 * `export --filter 'METRIC OP VALUE'`: keep only dialogues whose metric (src/method/metrics.ts)
 * satisfies the comparison, e.g. `distinct_2.assistant>=0.6` or `restated_queries<=0`. One generic
 * form rather than a flag per metric: the names are the record's own `metrics` fields, and a new
 * metric needs no new flag. Filters apply in the order given; a dialogue counts against the first
 * one it fails.
 */
import { z } from 'zod';
import { METRIC_FIELDS, METRIC_NAMES, type DialogueMetrics, type MetricName } from '../method/metrics';
import { ConfigError } from '../shared/errors';
import type { JudgeVerdict } from '../run/schemas';

/**
 * The judge's fields a filter can name. Unlike a metric, a missing verdict (a dialogue not judged, or
 * whose judge failed) fails the filter: `--min-score 7` promises dialogues known to score 7 or more.
 */
const JUDGE_FIELDS = {
  'judge.score': (judge: JudgeVerdict | undefined) => judge?.score,
  'judge.flags': (judge: JudgeVerdict | undefined) =>
    judge?.score === undefined ? undefined : (judge.flags?.length ?? 0),
} as const;
type JudgeField = keyof typeof JUDGE_FIELDS;
const FILTER_NAMES = [...METRIC_NAMES, ...(Object.keys(JUDGE_FIELDS) as JudgeField[])];
const isJudgeField = (name: string): name is JudgeField => Object.hasOwn(JUDGE_FIELDS, name);

export const FILTER_OPS = ['>=', '<=', '>', '<'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export const metricFilterSchema = z
  .object({
    metric: z.enum(FILTER_NAMES as [MetricName | JudgeField, ...(MetricName | JudgeField)[]]),
    op: z.enum(FILTER_OPS),
    value: z.number().finite(),
  })
  .strict();
export type MetricFilter = z.infer<typeof metricFilterSchema>;

// Longest operators first, so `>=` is not read as `>` followed by `=0.5`.
const FILTER_FORM = /^\s*([A-Za-z0-9_.]+)\s*(>=|<=|>|<)\s*(\S+)\s*$/;

/** Parses one `--filter` value; the error names the flag and lists the metrics. */
export function parseMetricFilter(raw: string): MetricFilter {
  const match = FILTER_FORM.exec(raw);
  const value = match ? Number(match[3]) : NaN;
  const parsed = metricFilterSchema.safeParse(
    match ? { metric: match[1], op: match[2], value: match[3]!.trim() === '' ? NaN : value } : undefined,
  );
  if (!parsed.success)
    throw new ConfigError(
      '--filter',
      `must be METRIC OP NUMBER with OP one of ${FILTER_OPS.join(' ')} and METRIC one of ${FILTER_NAMES.join(', ')}; got "${raw}"`,
    );
  return parsed.data;
}

/** The filter as written in the dataset card and filtered.jsonl. */
export const describeFilter = (f: MetricFilter) => `${f.metric} ${f.op} ${f.value}`;

function passes(value: number, op: FilterOp, limit: number): boolean {
  switch (op) {
    case '>=':
      return value >= limit;
    case '<=':
      return value <= limit;
    case '>':
      return value > limit;
    case '<':
      return value < limit;
  }
}

/** `--min-score N` and `--max-flags N`: the judge's filters by their own flags. */
export function judgeFilters(minScore?: number, maxFlags?: number): MetricFilter[] {
  return [
    ...(minScore === undefined
      ? []
      : [{ metric: 'judge.score' as const, op: '>=' as const, value: minScore }]),
    ...(maxFlags === undefined
      ? []
      : [{ metric: 'judge.flags' as const, op: '<=' as const, value: maxFlags }]),
  ];
}

/**
 * The index of the first filter the dialogue fails, or undefined when all pass. A null metric (nothing
 * to measure, e.g. self-repetition of a one-turn dialogue) passes: a filter removes only what it
 * measured. A judge field without a verdict fails, with `value` null.
 */
export function firstFailedFilter(
  metrics: DialogueMetrics,
  filters: readonly MetricFilter[],
  judge?: JudgeVerdict,
): { index: number; value: number | null } | undefined {
  for (const [index, f] of filters.entries()) {
    if (isJudgeField(f.metric)) {
      const value = JUDGE_FIELDS[f.metric](judge);
      if (value === undefined || !passes(value, f.op, f.value)) return { index, value: value ?? null };
      continue;
    }
    const value = METRIC_FIELDS[f.metric](metrics);
    if (value !== null && !passes(value, f.op, f.value)) return { index, value };
  }
  return undefined;
}
