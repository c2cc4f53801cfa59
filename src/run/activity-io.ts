/** What the activities take and give: the LLM calls' settings and results, the storage calls' records. */
import { z } from 'zod';
import type { JudgeContext } from '../method/judge';
import type { PromptContext } from '../method/prompts';
import type { DialoguePlan, DialogueRecord, JudgeVerdict, Skeleton } from '../method/types';
import type { RunConfig, rateLimitSchema, responseFormatSchema } from './input';
import type { RunSummary } from './progress';

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
