/**
 * The run workflow's input: what the CLI, the client API and `temporal workflow start` send, with its
 * defaults and limits. Holds no secrets.
 */
import { z } from 'zod';
import { runAttributesSchema } from '../method/attributes';
import { runExpandSchema } from '../method/expansion';
import { INTENT_IDS } from '../method/intents';
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
import { pricesSchema } from '../shared/pricing';
import { batchSettingsSchema, runModeSchema } from './batch';

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
