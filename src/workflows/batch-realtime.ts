/**
 * Hybrid batch runs (`batch.deadlineMs`): past the deadline, the dialogues whose batches did not bring
 * them back run in real time through the real-time activities, a bounded number at a time. A dialogue
 * whose skeleton came back in a batch only makes its responses call (its skeleton is read from the
 * staged files), so no finished stage is paid for twice.
 */
import { ActivityFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { toDialogueRecord } from '../method/dialogue';
import type { BatchStage } from '../run/batch';
import type { DialoguePlan, RunConfig, Skeleton } from '../run/schemas';
import { type Books, countCall, countFailedAttempts } from './intent/books';
import { failureOf, paidByFailure } from './intent/failures';
import { llmActivityOptions, llmCallSettings, llmSummary, promptOf } from './intent/options';
import { intentStorage } from './intent/storage';

export interface RealtimeContext {
  config: RunConfig;
  intent: string;
  books: Books;
  /** Calls in flight at most. */
  concurrency: number;
  /** The run's bound, for the workers' gate. */
  runConcurrency: number;
  planOf(index: number): DialoguePlan;
  stagedSkeleton(index: number): Promise<Skeleton | null>;
  failed(index: number, stage: BatchStage, type: string, reason: string): void;
  succeeded(index: number): void;
}

/** A dialogue to finish in real time, from the stage it still needs. */
export interface Leftover {
  index: number;
  from: BatchStage;
}

export async function runInRealTime(ctx: RealtimeContext, leftovers: Leftover[]): Promise<void> {
  const queue = [...leftovers];
  let inFlight = 0;
  const storage = intentStorage(ctx.config, true, () => inFlight);
  const next = async (): Promise<void> => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      inFlight++;
      await finish(ctx, storage.store, item).finally(() => inFlight--);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(ctx.concurrency, queue.length)) }, next));
}

async function finish(
  ctx: RealtimeContext,
  store: ReturnType<typeof intentStorage>['store'],
  { index, from }: Leftover,
): Promise<void> {
  const { config, books } = ctx;
  const plan = ctx.planOf(index);
  const llm = proxyActivities<Activities>(llmActivityOptions(config));
  const options = llmActivityOptions(config);
  let stage: BatchStage = from;
  try {
    let skeleton = from === 'responses' ? await ctx.stagedSkeleton(index) : null;
    if (!skeleton) {
      stage = 'skeleton';
      const got = await llm.generateSkeleton.executeWithOptions(llmSummary(options, 'skeleton', plan), [
        {
          plan,
          numTurns: config.numTurnsPerDialog,
          llm: llmCallSettings(config, 'skeleton', ctx.runConcurrency, true),
          ...promptOf(config, 'skeleton', plan),
        },
      ]);
      countCall(books, 'skeleton', got.usage);
      countFailedAttempts(books, 'skeleton', got.failedAttempts);
      skeleton = got.skeleton;
    }
    stage = 'responses';
    const got = await llm.generateResponses.executeWithOptions(llmSummary(options, 'responses', plan), [
      {
        plan,
        skeleton,
        llm: llmCallSettings(config, 'responses', ctx.runConcurrency, true),
        ...promptOf(config, 'responses', plan),
      },
    ]);
    countCall(books, 'responses', got.usage);
    countFailedAttempts(books, 'responses', got.failedAttempts);
    const record = toDialogueRecord({
      plan,
      skeleton,
      responses: got.responses,
      model: config.model,
      taxonomy: config.taxonomy,
    });
    const outcome = await store(record);
    if (outcome.problem) return ctx.failed(index, 'responses', 'Storage.InvalidRecord', outcome.problem);
    if (outcome.duplicate) books.duplicates++;
    else books.written++;
    ctx.succeeded(index);
  } catch (error) {
    if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
    const { type, reason } = failureOf(error);
    countFailedAttempts(books, stage, paidByFailure(error));
    ctx.failed(index, stage, type, reason);
  }
}
