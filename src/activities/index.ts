import type OpenAI from 'openai';
import type { StoreRegistry } from '../storage/jsonl-store';
import type { LlmDeps } from './llm-call';
import { RateController } from './rate-control';
import { RunGates } from './run-gate';
import { createGenerateResponses } from './responses';
import { createGenerateSkeleton } from './skeleton';
import { createJudgeDialogue } from './judge';
import { createExpandTopic } from './topics';
import { createStorageActivities } from './storage';
import { type BatchDeps, createSubmitBatch } from './batch-submit';
import { createBatchStatus } from './batch-status';
import { createCollectBatch } from './batch-collect';
import { createCancelBatch } from './batch-cancel';
import { createStagedSkeleton } from './batch-staged';
import { createClearStaging } from './batch-clear';
import { withHeartbeats } from './heartbeats';

/** An activity that heartbeats while it works: a dead worker's call is retried within the heartbeat timeout. */
const heartbeating =
  <I, R>(fn: (input: I) => Promise<R>) =>
  (input: I): Promise<R> =>
    withHeartbeats(() => fn(input));

export { toLlmFailure, LLM_FAILURE_TYPES } from './errors';
export { RateController } from './rate-control';
export { RunGates } from './run-gate';
export type { ReplyCheckCounts } from './llm-call';

export interface ActivityDeps {
  /** Built with `maxRetries: 0`: Temporal owns retries. */
  openai: OpenAI;
  storage: StoreRegistry;
  /** Shared by all LLM calls of this process. */
  rate?: RateController;
  /** The judge's own endpoint, when it has one (`CONSISTENT_CHAT_JUDGE_BASE_URL`); else the judge calls `openai`. */
  judge?: JudgeEndpoint;
}

/** A separate endpoint for the judge's calls, with its own rate control (its limits are not the generator's). */
export interface JudgeEndpoint {
  openai: OpenAI;
  rate?: RateController;
}

/** All activities of the package; workers register the LLM ones, the storage ones, or both. */
export function createActivities(deps: ActivityDeps) {
  const llm = { openai: deps.openai, rate: deps.rate ?? new RateController(), gates: new RunGates() };
  return {
    ...createLlmActivities(llm, deps.judge),
    ...createBatchActivities({ openai: deps.openai, root: deps.storage.root }),
    ...createStorageActivities(deps.storage),
  };
}

/** Batch mode's provider calls (issue 25); their files are staged under `root`, the output root. */
export function createBatchActivities(deps: BatchDeps) {
  return {
    submitBatch: heartbeating(createSubmitBatch(deps)),
    batchStatus: heartbeating(createBatchStatus(deps)),
    collectBatch: heartbeating(createCollectBatch(deps)),
    cancelBatch: heartbeating(createCancelBatch(deps)),
    stagedSkeleton: createStagedSkeleton(deps),
    clearStaging: createClearStaging(deps),
  };
}

export function createLlmActivities(deps: LlmDeps, judge?: JudgeEndpoint) {
  return {
    generateSkeleton: createGenerateSkeleton(deps),
    generateResponses: createGenerateResponses(deps),
    judgeDialogue: createJudgeDialogue(
      judge ? { ...deps, openai: judge.openai, rate: judge.rate ?? new RateController() } : deps,
    ),
    expandTopic: createExpandTopic(deps),
  };
}

export { createStorageActivities };

export type Activities = ReturnType<typeof createActivities>;
