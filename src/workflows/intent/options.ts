/**
 * Per-stage activity options and call inputs: how long a stage's activity may run, how it retries,
 * which queue serves it, and the one-line summary the Temporal UI shows for it.
 */
import { type ActivityOptions, patched, workflowInfo } from '@temporalio/workflow';
import { defaultMaxTokens, promptContext } from '../../method/prompts';
import { storageTaskQueueFor } from '../../shared/storage-queue';
import type { DialoguePlan, JudgeSettings, LlmCallSettings, RunConfig } from '../../run/schemas';
import { defaultJudgeMaxTokens } from '../../method/judge';
import { PATCHES } from '../patches';
import { type LlmStage, SYSTEMIC_FAILURES } from './books';

/** The stages that write the dialogue, with prompt templates of their own. */
export type GenerationStage = Exclude<LlmStage, 'judge'>;

/** An LLM stage's activity: the run's timeouts and retry policy; a systemic failure is not retried. */
export function llmActivityOptions(config: RunConfig): ActivityOptions {
  return {
    startToCloseTimeout: config.timeouts.startToCloseMs,
    heartbeatTimeout: config.timeouts.heartbeatMs,
    retry: {
      maximumAttempts: config.retry.maximumAttempts,
      initialInterval: config.retry.initialIntervalMs,
      backoffCoefficient: config.retry.backoffCoefficient,
      maximumInterval: config.retry.maximumIntervalMs,
      nonRetryableErrorTypes: [...SYSTEMIC_FAILURES],
    },
  };
}

/**
 * The queue storage activities go to. Runs started before `storage-queue-default` stored on the
 * workflow's own queue when no storage queue was given; newer ones use the shared storage queue that
 * `worker` serves (src/shared/storage-queue.ts).
 */
export function storageQueueOf(config: RunConfig): string {
  return patched(PATCHES.storageQueueDefault)
    ? storageTaskQueueFor(config, workflowInfo().taskQueue)
    : (config.storageTaskQueue ?? workflowInfo().taskQueue);
}

/** Storage never gives up: its worker may be down until the owner of the directory comes back. */
export function storageActivityOptions(taskQueue: string): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: '2 minutes',
    retry: {
      initialInterval: '1 second',
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: ['Storage.InvalidRecord'],
    },
  };
}

/** `skeleton #4: <topic>`: a one-line summary per call makes each activity readable in the UI. */
export function llmSummary(options: ActivityOptions, stage: LlmStage, plan: DialoguePlan): ActivityOptions {
  return { ...options, summary: `${stage} #${plan.index}: ${plan.topic}` };
}

/** `store 3 dialogues: #4, #5, #7` / `record 1 failure: #9`, shown for the activity in the UI. */
export function storageSummary(
  options: ActivityOptions,
  verb: string,
  noun: string,
  ids: string[],
): ActivityOptions {
  const numbers = ids.map((id) => `#${id.slice(id.lastIndexOf('.') + 1)}`);
  const listed = numbers.length > 8 ? `${numbers.slice(0, 8).join(', ')}, …` : numbers.join(', ');
  return { ...options, summary: `${verb} ${ids.length} ${noun}${ids.length === 1 ? '' : 's'}: ${listed}` };
}

/**
 * What an LLM activity needs besides its plan. `runConcurrency` only for runs with the worker gate:
 * older histories' activities carry none.
 */
export function llmCallSettings(
  config: RunConfig,
  stage: GenerationStage,
  runConcurrency: number | undefined,
  gated: boolean,
): LlmCallSettings {
  return {
    runId: config.runId,
    idleMs: config.timeouts.idleMs,
    model: config.model,
    temperature: config.temperatures?.[stage] ?? config.temperature,
    maxTokens: { ...defaultMaxTokens(config.numTurnsPerDialog), ...config.maxTokens }[stage],
    responseFormat: config.responseFormat,
    rateLimit: config.rateLimit,
    ...(gated && { runConcurrency }),
  };
}

/** The judge's calls: its own model, temperature and token limit, the run's limits otherwise. */
export function judgeCallSettings(
  config: RunConfig,
  judge: JudgeSettings,
  runConcurrency: number | undefined,
  gated: boolean,
): LlmCallSettings {
  return {
    ...llmCallSettings(config, 'skeleton', runConcurrency, gated),
    model: judge.model ?? config.model,
    temperature: judge.temperature,
    maxTokens: judge.maxTokens ?? defaultJudgeMaxTokens(config.numTurnsPerDialog),
  };
}

/**
 * Runs that carry their own taxonomy or templates hand the activities what they need to build the
 * prompt; runs without them (older inputs) keep the built-in prompts and their activity inputs as they were.
 */
export function promptOf(config: RunConfig, stage: GenerationStage, plan: DialoguePlan) {
  return config.taxonomy || config.prompts
    ? { prompt: promptContext(stage, plan, config.taxonomy, config.prompts) }
    : {};
}
