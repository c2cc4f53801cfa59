/**
 * The run's contract, above the method and below what runs it (workflows, activities, client): zod
 * schemas of the workflow input (also what the CLI and the client API build), activity payloads and
 * progress. Types are inferred from them. `src/shared/` sits below it and imports nothing above.
 */
import { z } from 'zod';
import { INTENT_IDS, type IntentId } from '../method/intents';
import type { PromptContext } from '../method/prompts';
import type { JudgeContext } from '../method/judge';
import { runAttributesSchema } from '../method/attributes';
import { runExpandSchema } from '../method/expansion';
import { methodIdSchema, taxonomySchema } from '../method/taxonomy';
import { promptTemplatesSchema } from '../method/templates';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_DIALOGS_PER_INTENT,
  DEFAULT_LLM_RETRY,
  DEFAULT_LLM_TIMEOUTS,
  DEFAULT_TEMPERATURE,
  DEFAULT_TURNS_PER_DIALOG,
  MAX_CONCURRENCY,
  MAX_DIALOGS_PER_INTENT,
  MAX_TEMPERATURE,
  MAX_TURNS_PER_DIALOG,
  MIN_TURNS_PER_DIALOG,
  RESPONSE_FORMAT_MODES,
} from '../shared/constants';
import type { STATUS_SCHEMA_VERSION } from '../shared/constants';
import { pricesSchema, type Price } from '../shared/pricing';
import { batchSettingsSchema, runModeSchema, type BatchProgress, type BatchSummary } from './batch';
import type { DialoguePlan, DialogueRecord, JudgeTally, JudgeVerdict, Skeleton } from '../method/types';

export { dialogueRecordSchema, JUDGE_FLAGS, judgeVerdictSchema, turnSchema } from '../method/types';
export type {
  DialoguePlan,
  DialogueRecord,
  JudgeFlag,
  JudgeTally,
  JudgeVerdict,
  Skeleton,
} from '../method/types';

/** Intent ids are the built-in ones or those of the run's own taxonomy: checked against it below. */
export const intentIdSchema = methodIdSchema;
export const infoFlowIdSchema = methodIdSchema;

/** Run ids become workflow ids and file names: keep them to a safe alphabet. */
export const runIdSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'letters, digits, ".", "_" and "-" only, starting with a letter or digit',
  );

export const responseFormatSchema = z.enum(RESPONSE_FORMAT_MODES);

const positiveMs = z
  .number()
  .int()
  .min(1)
  .max(24 * 3600_000);

export const retrySchema = z
  .object({
    maximumAttempts: z.number().int().min(1).max(100).default(DEFAULT_LLM_RETRY.maximumAttempts),
    initialIntervalMs: positiveMs.default(DEFAULT_LLM_RETRY.initialIntervalMs),
    backoffCoefficient: z.number().min(1).max(10).default(DEFAULT_LLM_RETRY.backoffCoefficient),
    maximumIntervalMs: positiveMs.default(DEFAULT_LLM_RETRY.maximumIntervalMs),
  })
  .strict();

export const timeoutsSchema = z
  .object({
    startToCloseMs: positiveMs.default(DEFAULT_LLM_TIMEOUTS.startToCloseMs),
    heartbeatMs: positiveMs.default(DEFAULT_LLM_TIMEOUTS.heartbeatMs),
    idleMs: positiveMs.default(DEFAULT_LLM_TIMEOUTS.idleMs),
  })
  .strict()
  .refine((t) => t.heartbeatMs < t.startToCloseMs, {
    message: 'heartbeatMs must be below startToCloseMs',
    path: ['heartbeatMs'],
  });

export const rateLimitSchema = z
  .object({
    requestsPerMinute: z.number().int().min(1).max(1_000_000).optional(),
    tokensPerMinute: z.number().int().min(1).max(1_000_000_000).optional(),
  })
  .strict();

/** The run's bound on LLM calls in flight, as `setConcurrency` accepts it. */
export const concurrencySchema = z.number().int().min(1).max(MAX_CONCURRENCY);

/**
 * A run's judge (src/method/judge.ts): which model scores each dialogue, and how many are judged. The
 * judge's endpoint and key are the worker's (`CONSISTENT_CHAT_JUDGE_BASE_URL`, `…_API_KEY`), never input.
 */
export const judgeSettingsSchema = z
  .object({
    /** @default the run's model */
    model: z.string().min(1).max(200).optional(),
    /** Fraction of dialogues judged, a seeded sample. @default 1 */
    sample: z.number().gt(0, 'must be above 0').max(1).default(1),
    /** @default 0: the same dialogue gets the same verdict as far as the endpoint allows */
    temperature: z.number().min(0).max(MAX_TEMPERATURE).default(0),
    /** Completion token limit; when absent it scales with the number of turns. */
    maxTokens: z.number().int().min(16).max(200_000).optional(),
    /**
     * Score the calibration set (src/method/calibration.ts) with the judge model before the first
     * dialogue, and report how well it separates consistent dialogues from planted failures
     * (`--no-calibrate`: false). @default true
     */
    calibrate: z.boolean().optional(),
  })
  .strict();
export type JudgeSettings = z.output<typeof judgeSettingsSchema>;

/**
 * The fields of the run workflow's input, as sent by the CLI, the client API or `temporal workflow
 * start`. Holds no secrets: API keys and the endpoint's base URL live in the workers' environment.
 */
export const runInputObjectSchema = z
  .object({
    runId: runIdSchema,
    /** Absolute path of the run's output directory, on the machine that serves the storage task queue. */
    outDir: z.string().min(1).max(4096).startsWith('/', 'must be an absolute path'),
    model: z.string().min(1).max(200),
    intents: z
      .array(intentIdSchema)
      .min(1)
      .refine((a) => new Set(a).size === a.length, 'must not repeat an intent')
      .default([...INTENT_IDS]),
    numDialogsPerIntent: z
      .number()
      .int()
      .min(1)
      .max(MAX_DIALOGS_PER_INTENT)
      .default(DEFAULT_DIALOGS_PER_INTENT),
    numTurnsPerDialog: z
      .number()
      .int()
      .min(MIN_TURNS_PER_DIALOG)
      .max(MAX_TURNS_PER_DIALOG)
      .default(DEFAULT_TURNS_PER_DIALOG),
    temperature: z.number().min(0).max(MAX_TEMPERATURE).default(DEFAULT_TEMPERATURE),
    /** Sampling temperature per stage, over `temperature` (the paper: skeleton 0.8, responses 0.7). */
    temperatures: z
      .object({
        skeleton: z.number().min(0).max(MAX_TEMPERATURE).optional(),
        responses: z.number().min(0).max(MAX_TEMPERATURE).optional(),
      })
      .strict()
      .optional(),
    /** Seeds the plan: the same seed and sizes give the same (intent, info flow, topic) for every dialogue. */
    seed: z.string().min(1).max(200).optional(),
    concurrency: concurrencySchema.default(DEFAULT_CONCURRENCY),
    responseFormat: responseFormatSchema.default('auto'),
    /** Completion token limits; when absent they scale with the number of turns. */
    maxTokens: z
      .object({
        skeleton: z.number().int().min(16).max(200_000).optional(),
        responses: z.number().int().min(16).max(200_000).optional(),
      })
      .strict()
      .default({}),
    retry: retrySchema.default(retrySchema.parse({})),
    timeouts: timeoutsSchema.default(timeoutsSchema.parse({})),
    rateLimit: rateLimitSchema.default({}),
    /** Task queue of the storage activities; defaults to `<task-queue>.storage` (src/shared/storage-queue.ts). */
    storageTaskQueue: z.string().min(1).max(200).optional(),
    /** Starts the run paused. */
    paused: z.boolean().default(false),
    /**
     * The run's intents, info flows and topics; the plan is drawn from it. When absent (inputs from
     * before it existed) the built-in taxonomy is used.
     */
    taxonomy: taxonomySchema.optional(),
    /** The run's prompt templates; when absent the built-in ones are used. */
    prompts: promptTemplatesSchema.optional(),
    /**
     * User attribute axes the planner combines with each topic (src/method/attributes.ts), or
     * `"builtin"` for the package's own set. Absent (every run before attributes existed): none.
     */
    attributes: runAttributesSchema.optional(),
    /** Scores every dialogue (or a sample) for consistency after its responses; absent: no judge. */
    judge: judgeSettingsSchema.optional(),
    /**
     * Topic expansion before each intent's dialogues (src/method/expansion.ts), or `false` for none.
     * Absent (every run before it existed, and runs with their own topic list): none.
     */
    expand: runExpandSchema.optional(),
    /** USD per million tokens by model, over the built-in table (`src/shared/pricing.ts`), for the cost estimate. */
    prices: pricesSchema.optional(),
    /** `batch`: the provider's batch API at half price (src/run/batch.ts). Absent (runs before it): real time. */
    mode: runModeSchema.optional(),
    /** Batch mode's limits and polling; absent: the defaults. */
    batch: batchSettingsSchema.optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    // The batch intent has no judge stage yet: refused rather than silently skipped.
    if (input.mode === 'batch' && input.judge)
      ctx.addIssue({ code: 'custom', path: ['judge'], message: 'is not available with mode batch yet' });
    const known = input.taxonomy?.intents.map((i) => i.id) ?? (INTENT_IDS as readonly string[]);
    input.intents.forEach((intent, i) => {
      if (!known.includes(intent))
        ctx.addIssue({
          code: 'custom',
          path: ['intents', i],
          message: `unknown intent "${intent}"; known: ${known.join(', ')}`,
        });
    });
  });

/**
 * The run workflow's input. `intents` defaults to every intent of the taxonomy: the built-in nine, or
 * all of the run's own taxonomy when it carries one. Inputs without a taxonomy parse exactly as before.
 */
export const runInputSchema = z.preprocess((raw) => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const { intents, taxonomy } = raw as { intents?: unknown; taxonomy?: { intents?: unknown } };
  if (intents !== undefined || !Array.isArray(taxonomy?.intents)) return raw;
  const ids = (taxonomy.intents as unknown[]).map((i) => (i as { id?: unknown } | null)?.id);
  return ids.every((id) => typeof id === 'string') ? { ...raw, intents: ids } : raw;
}, runInputObjectSchema);

export type RunInput = z.input<typeof runInputObjectSchema>;
export type RunConfig = z.output<typeof runInputObjectSchema>;

export const usageSchema = z.object({ promptTokens: z.number(), completionTokens: z.number() });
export type Usage = z.infer<typeof usageSchema>;

/** The part of the run's settings an LLM activity needs. */
export interface LlmCallSettings {
  runId: string;
  /** A call that receives nothing for this long is aborted and retried. */
  idleMs: number;
  model: string;
  temperature: number;
  maxTokens: number;
  responseFormat: z.infer<typeof responseFormatSchema>;
  rateLimit: z.infer<typeof rateLimitSchema>;
  /**
   * The run's bound on LLM calls in flight, enforced by each worker (src/activities/run-gate.ts).
   * Absent in activities scheduled before the gate existed: those are bounded by their workflow alone.
   */
  runConcurrency?: number;
}

export interface SkeletonInput {
  plan: DialoguePlan;
  numTurns: number;
  llm: LlmCallSettings;
  /** The run's intent and flow names and template; absent (built-in) in runs without a taxonomy. */
  prompt?: PromptContext;
}

/** What an activity's failed attempts used: each counts as a call, with the tokens the endpoint reported. */
export const attemptUsageSchema = z.object({
  calls: z.number().int().min(0),
  promptTokens: z.number().min(0),
  completionTokens: z.number().min(0),
});
export type AttemptUsage = z.infer<typeof attemptUsageSchema>;

export interface SkeletonResult {
  skeleton: Skeleton;
  usage: Usage;
  /** Earlier attempts of this activity that failed (paid too). Absent in histories before it existed. */
  failedAttempts?: AttemptUsage;
}

export interface ResponsesInput {
  plan: DialoguePlan;
  skeleton: Skeleton;
  llm: LlmCallSettings;
  prompt?: PromptContext;
}

export interface JudgeInput {
  skeleton: Skeleton;
  responses: string[];
  /** The intent and flow names the rubric mentions. */
  context: JudgeContext;
  /** The judge's model and sampling; the rest as the run's other calls. */
  llm: LlmCallSettings;
}

export interface JudgeResult {
  verdict: JudgeVerdict;
  usage: Usage;
  failedAttempts?: AttemptUsage;
}

export interface ResponsesResult {
  responses: string[];
  usage: Usage;
  /** Earlier attempts of this activity that failed (paid too). */
  failedAttempts?: AttemptUsage;
}

/** One line of `failures.jsonl`: a planned dialogue that did not succeed within the attempt limit. */
export interface FailureRecord {
  id: string;
  intent: string;
  info_flow: string;
  topic: string;
  /** Which LLM stage failed. */
  stage: 'skeleton' | 'responses' | 'judge';
  /** The failure type, e.g. `Llm.RateLimit`, `Llm.InvalidOutput`. */
  type: string;
  reason: string;
  attempts?: number;
  failed_at: string;
}

/** The storage activity a run calls first: is its directory one the storage worker writes to? */
export interface CheckOutputDirectoryInput {
  outDir: string;
  runId: string;
}

export interface CheckOutputDirectoryResult {
  /** The storage worker's output root. */
  root: string;
}

/** The run's last step: the files a finished run leaves beside its records, whoever started it. */
export interface WriteRunFilesInput {
  config: RunConfig;
  summary: RunSummary;
  /** When the run started: run.json's `createdAt` when no client wrote one. */
  startedAt: string;
}

/** The last step of a retry: failures.jsonl keeps only what failed again. */
export interface SettleRetryInput {
  outDir: string;
  /** Ids of the dialogues the retry ran, each once. */
  retried: string[];
  /** The failure records of those that failed again. */
  failedAgain: FailureRecord[];
}

export interface StoreDialoguesInput {
  outDir: string;
  records: DialogueRecord[];
}

export interface StoreDialoguesResult {
  written: number;
  duplicates: number;
  /**
   * Ids the store already held before this activity's first attempt (a repeated dialogue, e.g. after a
   * workflow reset). Absent in histories recorded before it existed.
   */
  duplicateIds?: string[];
  /** Records that failed validation and were not written. */
  invalid: { id: string; reason: string }[];
}

export interface StoreFailuresInput {
  outDir: string;
  failures: FailureRecord[];
}

/** What a storage call did: `written` the first time, `duplicate` when a retry finds it already there. */
export interface StoreResult {
  status: 'written' | 'duplicate';
  /** Bytes appended to the file (written records only). */
  bytes?: number;
}

export interface StoreFailuresResult {
  written: number;
  duplicates: number;
  /** Ids of the batch that were already stored: not written again. */
  duplicateIds?: string[];
}

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
