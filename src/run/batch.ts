/**
 * Batch mode (issue 25): the run's settings for provider batch APIs, and what the batch activities and
 * the batch intent workflow pass each other. Workflows see batch ids, indexes and counts only: the
 * requests and replies stay in files under the run's output directory (`.batch/<intent>/`).
 */
import { z } from 'zod';
import type { AttributeAxes } from '../method/attributes';
import type { Taxonomy } from '../method/taxonomy';
import type { PromptTemplates } from '../method/templates';
import type { LlmCallSettings } from './activity-io';

/** How a run makes its LLM calls: one by one, or through the provider's batch API at half price. */
export const RUN_MODES = ['realtime', 'batch'] as const;
export const runModeSchema = z.enum(RUN_MODES);
export type RunMode = z.infer<typeof runModeSchema>;

/** OpenAI's limits per batch input file, and this package's defaults for the rest. */
export const BATCH_LIMITS = {
  requestsPerFile: 50_000,
  bytesPerFile: 200_000_000,
  minBytesPerFile: 1_000,
  maxAttempts: 20,
  defaultAttempts: 3,
} as const;

export const batchSettingsSchema = z
  .object({
    /** Most requests in one batch input file (OpenAI: 50,000). @default 50000 */
    requestsPerFile: z
      .number()
      .int()
      .min(1)
      .max(BATCH_LIMITS.requestsPerFile)
      .default(BATCH_LIMITS.requestsPerFile),
    /** Most bytes in one batch input file (OpenAI: 200 MB). @default 200000000 */
    bytesPerFile: z
      .number()
      .int()
      .min(BATCH_LIMITS.minBytesPerFile)
      .max(BATCH_LIMITS.bytesPerFile)
      .default(BATCH_LIMITS.bytesPerFile),
    /** First wait between two looks at a batch; doubles up to `pollMaxMs`. @default 5000 */
    pollInitialMs: z.number().int().min(10).max(3_600_000).default(5_000),
    /** Longest wait between two looks at a batch. @default 300000 (5 minutes) */
    pollMaxMs: z.number().int().min(10).max(3_600_000).default(300_000),
    /**
     * Hybrid: once this long has passed since the intent started, its open batches are cancelled (what
     * they finished is kept) and the dialogues not back run in real time. @default none: batches only
     */
    deadlineMs: z
      .number()
      .int()
      .min(1_000)
      .max(30 * 86_400_000)
      .optional(),
    /**
     * A wave (a stage's requests, first or retried) with fewer requests than this runs in real time:
     * a batch is not worth a day's wait for a handful of calls. @default 1 (every wave batched)
     */
    minRequests: z.number().int().min(1).max(BATCH_LIMITS.requestsPerFile).default(1),
    /** Batches a dialogue's request may go in before it is recorded as failed. @default 3 */
    maxAttempts: z.number().int().min(1).max(BATCH_LIMITS.maxAttempts).default(BATCH_LIMITS.defaultAttempts),
  })
  .strict()
  .refine((b) => b.pollMaxMs >= b.pollInitialMs, {
    message: 'must be at least pollInitialMs',
    path: ['pollMaxMs'],
  });
export type BatchSettings = z.output<typeof batchSettingsSchema>;

/** Index ranges `[from, to)`: a wave's indexes in history as a few numbers, not one per dialogue. */
export type IndexRanges = [number, number][];

export function toRanges(indexes: readonly number[]): IndexRanges {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const ranges: IndexRanges = [];
  for (const i of sorted) {
    const last = ranges.at(-1);
    if (last && last[1] === i) last[1] = i + 1;
    else ranges.push([i, i + 1]);
  }
  return ranges;
}

export function fromRanges(ranges: IndexRanges): number[] {
  return ranges.flatMap(([from, to]) => Array.from({ length: to - from }, (_, k) => from + k));
}

/** The stage a batch's requests are for. */
export type BatchStage = 'skeleton' | 'responses';

/** One chunk of a wave: its requests go into one or more input files within the limits. */
export interface SubmitBatchInput {
  outDir: string;
  runId: string;
  intent: string;
  stage: BatchStage;
  /** Names the chunk in the batches' metadata: `<stage>.a<attempt>` (exactly once per chunk). */
  chunk: string;
  /** Dialogue indexes of the intent whose requests go in. */
  indexes: IndexRanges;
  numTurns: number;
  llm: LlmCallSettings;
  limits: Pick<BatchSettings, 'requestsPerFile' | 'bytesPerFile'>;
  /** Planning inputs the activity needs to rebuild each dialogue's plan and prompt. */
  plan: BatchPlanInput;
  /**
   * Epoch seconds before which none of this intent's batches was created: the newest-first listing
   * stops there instead of reading the account's whole history. Absent: the whole list.
   */
  notBefore?: number;
}

/** What rebuilds a plan from its index (src/method/plan.ts) and its prompt, without the plan in history. */
export interface BatchPlanInput {
  seed: string;
  taxonomy?: Taxonomy;
  prompts?: PromptTemplates;
  attributes?: AttributeAxes;
}

export interface SubmittedBatch {
  id: string;
  requests: number;
  /** Whether an earlier attempt had created it (found by its metadata). */
  reused: boolean;
}

export interface SubmitBatchResult {
  batches: SubmittedBatch[];
}

export const BATCH_END_STATES = ['completed', 'failed', 'expired', 'cancelled'] as const;

export interface BatchStatus {
  id: string;
  status: string;
  counts: { total: number; completed: number; failed: number };
  /** A failed batch's first error: its line and field. */
  error?: string;
}

export interface CollectBatchInput {
  outDir: string;
  runId: string;
  intent: string;
  stage: BatchStage;
  batchId: string;
  numTurns: number;
  /**
   * What rebuilds each line's plan, so a skeleton is checked against its flow's steps as a real-time
   * call's is. Absent in inputs scheduled before it was passed: the steps are then not checked.
   */
  plan?: BatchPlanInput;
}

/** A request that gave no usable reply: its dialogue goes into a later batch, or to failures.jsonl. */
export interface BatchLineFailure {
  index: number;
  type: string;
  reason: string;
  /** No later batch can fix it (a request the endpoint refuses): recorded as failed at once. */
  final: boolean;
}

export interface CollectBatchResult {
  /** Indexes whose replies are usable, now staged under `.batch/<intent>/`. */
  succeeded: IndexRanges;
  failed: BatchLineFailure[];
  /** Tokens of every answered line, usable or not (all are paid at the batch price). */
  usage: { calls: number; promptTokens: number; completionTokens: number };
}

/** Stores the dialogues whose responses one batch brought (staged by `collectBatch`). */
export interface StoreBatchDialoguesInput {
  outDir: string;
  runId: string;
  intent: string;
  batchId: string;
  model: string;
  plan: BatchPlanInput;
}

/**
 * A batch intent's batches as its progress shows them: the provider's `request_counts` summed over
 * the batches still running and those ended, and the tokens paid at the batch price (also in `tokens`).
 */
export interface BatchProgress {
  /** Batches submitted (a reused one counts once). */
  batches: number;
  /** Batches not yet ended. */
  waiting: number;
  requests: { total: number; completed: number; failed: number };
  /** Lines answered, usable or not: all paid at the batch price. */
  calls: number;
  tokens: { prompt: number; completion: number };
}

/** What a run's summary shows of its batches: their calls and tokens, and both prices of those tokens. */
export interface BatchSummary {
  calls: number;
  tokens: { prompt: number; completion: number };
  /** USD at the batch price; absent when the model has no price. */
  costUsd?: number;
  /** USD the same tokens would have cost in real time. */
  realtimeCostUsd?: number;
}

/** A dialogue's staged skeleton, for its responses call in real time (hybrid runs past the deadline). */
export interface StagedSkeletonInput {
  outDir: string;
  intent: string;
  index: number;
}

/**
 * Staged files nothing needs any more: one responses batch's replies (its dialogues are stored), or,
 * without `batch`, the intent's whole staging directory (the intent has completed).
 */
export interface ClearStagingInput {
  outDir: string;
  intent: string;
  batch?: { stage: BatchStage; batchId: string };
}

/** A submitted batch not taken in yet, with the request counts the intent's progress already shows. */
export interface PendingBatch {
  id: string;
  seen: { total: number; completed: number; failed: number };
}

/**
 * What a batch intent carries across continue-as-new: the attempt whose batches are out (awaited again,
 * never submitted again), what is known of its stage, the failures so far, its counts and its times.
 * Indexes as ranges; the failures one entry per dialogue that has not succeeded yet.
 */
export interface BatchCarry {
  stage: BatchStage;
  attempt: number;
  /** The attempt's requests: the stage's dialogues without a usable reply when it was submitted. */
  todo: IndexRanges;
  /** The stage's dialogues with a usable reply so far. */
  ok: IndexRanges;
  /** This attempt's dialogues that failed for good so far. */
  final: IndexRanges;
  pending: PendingBatch[];
  /** Dialogues the skeleton stage left for real time (carried through the responses stage). */
  skeletonLeft: IndexRanges;
  failures: (BatchLineFailure & { stage: BatchStage })[];
  progress: BatchProgress;
  /** Workflow time (epoch ms) of a hybrid run's deadline. */
  deadlineAt?: number;
  late: boolean;
  /** Epoch seconds before which none of the intent's batches was created (the first run's start). */
  startedAt: number;
}
