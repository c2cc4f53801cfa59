/** What a run reports while it runs and when it ends: per intent, per run, and its summary. */
import { z } from 'zod';
import type { IntentId } from '../method/intents';
import type { JudgeTally } from '../method/types';
import type { STATUS_SCHEMA_VERSION } from '../shared/constants';
import type { Price } from '../shared/pricing';
import type { BatchProgress, BatchSummary } from './batch';
import { intentIdSchema } from './input';

export interface TokenTotals {
  prompt: number;
  completion: number;
}

/** LLM calls whose attempt failed, with the tokens they used, by stage. */
export interface FailedAttempts {
  skeleton: { calls: number; prompt: number; completion: number };
  responses: { calls: number; prompt: number; completion: number };
  /** Runs with a judge only. */
  judge?: { calls: number; prompt: number; completion: number };
}

/** Tokens of the LLM calls that succeeded, by stage. */
export interface StageTokens {
  skeleton: TokenTotals;
  responses: TokenTotals;
  /** Runs with a judge only. */
  judge?: TokenTotals;
}

export interface IntentProgress {
  intent: IntentId;
  planned: number;
  /** Records this run newly wrote. */
  written: number;
  /** Finished dialogues the store already held: not written again, not counted in `written`. */
  duplicates?: number;
  failed: number;
  inFlight: number;
  tokens: TokenTotals;
  /** Count of LLM calls that completed (both stages). */
  llmCalls: number;
  /** Failed attempts (paid, not in `tokens` or `llmCalls`). */
  failedAttempts?: FailedAttempts;
  /** `tokens` split by stage (absent in results of runs from before it existed). */
  stageTokens?: StageTokens;
  paused: boolean;
  concurrency: number;
  /** The judge's counts (runs with a judge only). */
  judge?: JudgeTally;
  /** Dialogues started so far; equal to `planned` once the last one has started. Absent from older intents. */
  started?: number;
  status: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
  continuedAsNew: number;
  /** Batch runs: the intent's provider batches (src/run/batch.ts). */
  batch?: BatchProgress;
}

/** The fields of an intent's progress report that the run reads; the rest is passed on as sent. */
export const intentReportSchema = z.object({
  intent: intentIdSchema,
  planned: z.number().int().min(0),
  written: z.number().int().min(0),
  failed: z.number().int().min(0),
  tokens: z.object({ prompt: z.number().min(0), completion: z.number().min(0) }),
  llmCalls: z.number().int().min(0),
  started: z.number().int().min(0).optional(),
});

export interface RunProgress {
  /** The shape's version (src/run/status.ts); absent from runs started before it existed. */
  schemaVersion?: typeof STATUS_SCHEMA_VERSION;
  runId: string;
  outDir: string;
  model: string;
  paused: boolean;
  concurrency: number;
  intents: IntentProgress[];
  /** The model's price per million tokens, when known: the cost estimate follows the live counts. */
  price?: Price;
  /** The judge's model, when it is another than `model`; its tokens are priced at `judgePrice`. */
  judgeModel?: string;
  /** The judge model's price per million tokens, when `judgeModel` is set and has one. */
  judgePrice?: Price;
  /** Runs with a judge that calibrated it, once the calibration set is scored. */
  calibration?: JudgeCalibration;
}

/**
 * How well a run's judge separated the calibration set's consistent dialogues from their planted
 * twins (src/method/calibration.ts), scored before the run's first dialogue.
 */
export interface JudgeCalibration {
  model: string;
  /** P(consistent scores above planted), ties half: 0.5 is chance. Absent when either kind went unscored. */
  auc?: number;
  /** Mean score of the consistent dialogues minus that of the planted ones. */
  gap?: number;
  /** AUC below CALIBRATION_WARN_AUC, or not measurable: the judge's scores say little. */
  nearChance: boolean;
  dialogues: number;
  /** Dialogues whose judge call failed. */
  unscored: number;
  planted: number;
  /** Planted failures the judge named with the right flag. */
  flagged: number;
  llmCalls: number;
  tokens: TokenTotals;
  /** Paid attempts that failed (not in `tokens` or `llmCalls`). */
  failedAttempts: { calls: number; prompt: number; completion: number };
}

/** What a run acknowledges after `pause`, `resume` or `setConcurrency`: its state once the intents were told. */
export interface RunControlState {
  runId: string;
  paused: boolean;
  concurrency: number;
  /** Each intent still running, with its share of the run's concurrency. */
  intents: { intent: IntentId; concurrency: number }[];
}

export interface RunSummary {
  runId: string;
  outDir: string;
  model: string;
  requested: number;
  written: number;
  failed: number;
  tokens: TokenTotals;
  llmCalls: number;
  /** Already stored before (see IntentProgress.duplicates). */
  duplicates?: number;
  /** `topics` only in runs that expanded topics (their calls are in `llmCalls` and `tokens` too). */
  failedAttempts?: FailedAttempts & { topics?: FailedAttempts['skeleton'] };
  /** `tokens` split by stage (absent in results of runs from before it existed). */
  stageTokens?: StageTokens & { topics?: TokenTotals };
  /** Subtopics topic expansion dropped: by its reply checks, and as exact or near duplicates. */
  topics?: { dropped: number; duplicates: number };
  /** USD for every paid token, failed attempts included; absent when the model has no price. */
  estimatedCostUsd?: number;
  /** The judge's counts over the run (runs with a judge only). */
  judge?: JudgeTally;
  /** The judge's model (runs with a judge only). */
  judgeModel?: string;
  /** Runs whose judge was calibrated (its calls and tokens are in the totals too). */
  calibration?: JudgeCalibration;
  /** Batch runs: what went through the provider's batches, at the batch price (also in the totals). */
  batch?: BatchSummary;
  intents: IntentProgress[];
}
