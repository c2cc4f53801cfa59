/**
 * The machine-readable state of a run, for dashboards and scripts: what the run workflow's `progress`
 * query returns and what `consistent-chat status --json` prints. A stable contract: fields are only
 * added (optional) within a version; a removal or a change of meaning raises `schemaVersion`.
 */
import { z } from 'zod';
import { priceSchema } from '../shared/pricing';
import type { IntentProgress, RunProgress, RunSummary } from './schemas';

import { STATUS_SCHEMA_VERSION } from '../shared/constants';

export { STATUS_SCHEMA_VERSION };

const count = z.number().int().min(0);
const tokensSchema = z.object({ prompt: z.number().min(0), completion: z.number().min(0) });
const attemptsSchema = z.object({ calls: count, prompt: z.number().min(0), completion: z.number().min(0) });
/** `judge` in runs with a judge, `topics` (run summaries only) in runs that expanded topics. */
const failedAttemptsSchema = z.object({
  skeleton: attemptsSchema,
  responses: attemptsSchema,
  judge: attemptsSchema.optional(),
  topics: attemptsSchema.optional(),
});
const stageTokensSchema = z.object({
  skeleton: tokensSchema,
  responses: tokensSchema,
  judge: tokensSchema.optional(),
  topics: tokensSchema.optional(),
});
/** The judge's counts: verdicts by score (`scores[s - 1]`), flags by name, judge calls that failed. */
const judgeTallySchema = z.object({
  judged: count,
  failed: count,
  scores: z.array(count).length(10),
  flags: z.record(z.string(), count),
});

/** The judge's separation of the calibration set (`JudgeCalibration`), in runs that calibrated it. */
export const calibrationSchema = z.object({
  model: z.string(),
  auc: z.number().min(0).max(1).optional(),
  gap: z.number().optional(),
  nearChance: z.boolean(),
  dialogues: count,
  unscored: count,
  planted: count,
  flagged: count,
  llmCalls: count,
  tokens: tokensSchema,
  failedAttempts: attemptsSchema,
});

/** One intent's numbers (the `intentProgress` query, and an element of `progress.intents`). */
export const intentProgressSchema = z.object({
  intent: z.string().min(1),
  planned: count,
  /** Records this run newly wrote. */
  written: count,
  /** Finished dialogues the store already held. */
  duplicates: count.optional(),
  failed: count,
  inFlight: count,
  /** Tokens of the LLM calls that succeeded. */
  tokens: tokensSchema,
  /** LLM calls that completed (both stages). */
  llmCalls: count,
  /** Failed attempts, paid, not in `tokens` or `llmCalls`. */
  failedAttempts: failedAttemptsSchema.optional(),
  stageTokens: stageTokensSchema.optional(),
  paused: z.boolean(),
  concurrency: count,
  started: count.optional(),
  /** Runs with a judge. */
  judge: judgeTallySchema.optional(),
  status: z.enum(['pending', 'running', 'completed', 'failed', 'cancelled']),
  continuedAsNew: count,
  /** Batch runs: the provider's request counts over the intent's batches, and the tokens they paid. */
  batch: z
    .object({
      batches: count,
      waiting: count,
      requests: z.object({ total: count, completed: count, failed: count }),
      calls: count,
      tokens: tokensSchema,
    })
    .optional(),
});

/** The run workflow's `progress` query. `schemaVersion` is absent from runs started before it existed. */
export const runProgressSchema = z.object({
  schemaVersion: z.literal(STATUS_SCHEMA_VERSION).optional(),
  runId: z.string().min(1),
  outDir: z.string(),
  model: z.string(),
  paused: z.boolean(),
  concurrency: count,
  intents: z.array(intentProgressSchema),
  /** USD per million tokens, when the model has a price. */
  price: priceSchema.optional(),
  /** The judge's model when it is another than `model` (its tokens are priced apart), and its price. */
  judgeModel: z.string().optional(),
  judgePrice: priceSchema.optional(),
  /** Runs with a judge: its calibration, once scored (before the first dialogue). */
  calibration: calibrationSchema.optional(),
});
export type RunProgressDocument = z.infer<typeof runProgressSchema>;

/** The run workflow's result. */
export const runSummarySchema = z.object({
  runId: z.string().min(1),
  outDir: z.string(),
  model: z.string(),
  requested: count,
  written: count,
  failed: count,
  tokens: tokensSchema,
  llmCalls: count,
  duplicates: count.optional(),
  failedAttempts: failedAttemptsSchema.optional(),
  stageTokens: stageTokensSchema.optional(),
  /** USD for every paid token, failed attempts included; absent when the model has no price. */
  estimatedCostUsd: z.number().min(0).optional(),
  /** Runs with a judge: its counts over the run, and its model. */
  judge: judgeTallySchema.optional(),
  judgeModel: z.string().optional(),
  /** Runs whose judge was calibrated: how well it separated the calibration set. */
  calibration: calibrationSchema.optional(),
  /** Runs that expanded topics: subtopics dropped by the checks and as duplicates. */
  topics: z.object({ dropped: count, duplicates: count }).optional(),
  /** Batch runs: calls and tokens that went through batches, at the batch price and what real time would cost. */
  batch: z
    .object({
      calls: count,
      tokens: tokensSchema,
      costUsd: z.number().min(0).optional(),
      realtimeCostUsd: z.number().min(0).optional(),
    })
    .optional(),
  intents: z.array(intentProgressSchema),
});

const storageIssueSchema = z.object({
  workflowId: z.string(),
  activity: z.string(),
  taskQueue: z.string().optional(),
  attempt: count,
  lastFailure: z.string().optional(),
  waitingMs: z.number().min(0).optional(),
  noWorker: z.boolean(),
});

/** `consistent-chat status RUN --json`: one JSON document on stdout. */
export const runStatusSchema = z.object({
  schemaVersion: z.literal(STATUS_SCHEMA_VERSION),
  runId: z.string().min(1),
  /** Temporal's execution status of the run workflow. */
  status: z.enum([
    'UNSPECIFIED',
    'RUNNING',
    'COMPLETED',
    'FAILED',
    'CANCELLED',
    'TERMINATED',
    'CONTINUED_AS_NEW',
    'TIMED_OUT',
    'PAUSED',
    'UNKNOWN',
  ]),
  /** While running: the `progress` query's answer. */
  progress: runProgressSchema.optional(),
  /** While running: USD so far (absent when the model has no price); once completed, see `summary`. */
  estimatedCostUsd: z.number().min(0).optional(),
  /** While running: storage activities that are not getting through. */
  storageIssues: z.array(storageIssueSchema).optional(),
  /** Once completed: the run's result. */
  summary: runSummarySchema.optional(),
  /** Failed, cancelled, terminated or timed out: why. */
  reason: z.string().optional(),
  /** With `--out DIR`: lines in the run's files. */
  files: z.object({ dialogues: count, failures: count }).optional(),
});
export type RunStatusDocument = z.infer<typeof runStatusSchema>;

// The workflow's own types must fit the documented schemas: a field added there and not here fails the build.
type Fits<T, Schema extends z.ZodType> =
  T extends z.input<Schema> ? (Exclude<keyof T, keyof z.input<Schema>> extends never ? true : never) : never;
export const SCHEMAS_FIT: [
  Fits<IntentProgress, typeof intentProgressSchema>,
  Fits<RunProgress, typeof runProgressSchema>,
  Fits<RunSummary, typeof runSummarySchema>,
] = [true, true, true];
