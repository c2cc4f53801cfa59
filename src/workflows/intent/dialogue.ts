/** Drives one dialogue through its stages (stages.ts), and records why it failed if it did. */
import { ActivityFailure, condition, isCancellation, log } from '@temporalio/workflow';
import type { FailureRecord, RunConfig } from '../../run/schemas';
import { type Books, countFailedAttempts, failureRecord, type LlmStage, type SystemicWatch } from './books';
import { failureOf, paidByFailure } from './failures';
import type { Dialogue, Stage } from './stages';

export interface DialogueContext {
  config: RunConfig;
  books: Books;
  systemic: SystemicWatch;
  stages: readonly Stage[];
  /** Whether a dialogue must await the end of a pause (older histories always awaited the condition). */
  mustWaitPause(): boolean;
  recordFailures: (failures: FailureRecord[]) => Promise<unknown>;
}

/**
 * Runs the stages in order. An LLM stage waits out a pause first; leaving the LLM stages releases the
 * dialogue's slot, so the next dialogue may start while this one is stored. A failed activity, or a
 * stage's refusal, is recorded as a failure of the last LLM stage; any other error is thrown.
 */
export async function runDialogue(
  ctx: DialogueContext,
  dialogue: Dialogue,
  releaseSlot: () => void,
): Promise<void> {
  const { books } = ctx;
  let stage: LlmStage = 'skeleton';
  let inLlmStages = true;
  try {
    for (const next of ctx.stages) {
      if (next.applies && !next.applies(dialogue)) continue;
      if (next.llm) {
        stage = next.llm;
        if (ctx.mustWaitPause()) await condition(() => !books.paused);
      } else if (inLlmStages) {
        inLlmStages = false;
        ctx.systemic.succeeded();
        // Storing is no LLM call: the next dialogue may start while this one is written.
        releaseSlot();
      }
      const refused = next.finish(dialogue, await next.start(dialogue));
      if (refused) {
        await ctx.recordFailures([
          failureRecord(ctx.config, dialogue.plan, stage, refused.type, refused.reason),
        ]);
        books.failed++;
        return;
      }
    }
  } catch (error) {
    if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
    // The LLM call failed within its attempt limit (or could never succeed): keep the plan and the reason.
    const { type, reason } = failureOf(error);
    countFailedAttempts(books, stage, paidByFailure(error));
    log.warn('dialogue failed', { id: dialogue.plan.id, stage, type, reason });
    ctx.systemic.failed(books, type, reason);
    await ctx.recordFailures([failureRecord(ctx.config, dialogue.plan, stage, type, reason)]);
    books.failed++;
  }
}

/** `runDialogue(…).catch(failed).finally(settled)`, with fewer promises than that chain makes. */
export async function settleDialogue(
  ctx: DialogueContext,
  dialogue: Dialogue,
  releaseSlot: () => void,
  failed: (error: unknown) => void,
  settled: () => void,
): Promise<void> {
  try {
    await runDialogue(ctx, dialogue, releaseSlot);
  } catch (error) {
    failed(error);
  } finally {
    settled();
  }
}
