/**
 * Retries a finished run's failed dialogues (`generate --retry-failed`). Each dialogue the input names
 * is planned again from its index (the plan it had the first time), driven once through the same
 * stages as in an intent, and stored; then failures.jsonl is rewritten to hold only the dialogues
 * that failed again. The ids and the run's summary before the retry travel in the input, so a retry
 * resumed after a crash works on the same dialogues, and each write is keyed by dialogue id.
 */
import { ApplicationFailure, condition, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { IntentId } from '../method/intents';
import type { FailureRecord, RunConfig, RunSummary } from '../run/schemas';
import { storageTaskQueueFor } from '../shared/storage-queue';
import { type Books, openBooks, planNext, progressOf, SystemicWatch } from './intent/books';
import { type DialogueContext, runDialogue } from './intent/dialogue';
import { llmActivityOptions, storageActivityOptions } from './intent/options';
import { dialogueStages } from './intent/stages';
import { addRetry, parseDialogueId, summaryOf } from './retry-books';
import { RUN_FAILURE_TYPES } from './run';

export interface RetryInput {
  /** The run's input, as `run.json` records it. */
  config: RunConfig;
  /** Ids of the failed dialogues to retry, once each. */
  ids: string[];
  /** The run's summary before this retry; the result is it with the retry's numbers added. */
  base: RunSummary;
}

export async function consistentChatRetry(input: RetryInput): Promise<RunSummary> {
  const { config, base } = input;
  const targets = input.ids.map((id) => {
    const target = parseDialogueId(config.runId, config.intents, id);
    if (!target)
      throw ApplicationFailure.nonRetryable(
        `invalid retry input: ids: ${id} is no dialogue of run ${config.runId}`,
        RUN_FAILURE_TYPES.invalidInput,
      );
    return target;
  });
  const failedAgain: FailureRecord[] = [];
  const contexts = new Map<IntentId, DialogueContext>();
  const contextOf = (intent: IntentId) => {
    let ctx = contexts.get(intent);
    if (!ctx) contexts.set(intent, (ctx = dialogueContext(config, failedAgain)));
    return ctx;
  };
  // At most the run's concurrency in an LLM stage at once, as in the run itself.
  let free = config.concurrency;
  await Promise.all(
    targets.map(async ({ intent, index }) => {
      const ctx = contextOf(intent);
      await condition(() => free > 0);
      free--;
      let held = true;
      const release = () => {
        if (held) free++;
        held = false;
      };
      ctx.books.nextIndex = index;
      try {
        await runDialogue(ctx, { plan: planNext(ctx.books, config, intent) }, release);
      } finally {
        release();
      }
    }),
  );
  const storage = proxyActivities<Activities>(
    storageActivityOptions(storageTaskQueueFor(config, workflowInfo().taskQueue)),
  );
  await storage.settleRetry({ outDir: config.outDir, retried: input.ids, failedAgain });
  const intents = base.intents.map((p) => {
    const ctx = contexts.get(p.intent);
    if (!ctx) return p;
    const retried = targets.filter((t) => t.intent === p.intent).length;
    const live = { inFlight: 0, concurrency: 0 };
    return addRetry(p, progressOf(ctx.books, p.intent, retried, live, 'completed'), retried);
  });
  return summaryOf(base, intents, config.prices);
}

/** One intent's stages and books for the retry; failures are kept for `settleRetry`, not appended. */
function dialogueContext(config: RunConfig, failedAgain: FailureRecord[]): DialogueContext {
  const books: Books = openBooks(undefined, false);
  books.runConcurrency = config.concurrency;
  const llm = proxyActivities<Activities>(llmActivityOptions(config));
  const storage = proxyActivities<Activities>(
    storageActivityOptions(storageTaskQueueFor(config, workflowInfo().taskQueue)),
  );
  return {
    config,
    books,
    systemic: new SystemicWatch(),
    stages: dialogueStages({
      config,
      books,
      gated: true,
      llm,
      store: async (record) => {
        const result = await storage.storeDialogues({ outDir: config.outDir, records: [record] });
        return { problem: result.invalid[0]?.reason, duplicate: result.duplicates > 0 };
      },
      counted: () => undefined,
    }),
    mustWaitPause: () => false,
    recordFailures: (failures) => Promise.resolve(failedAgain.push(...failures)),
  };
}
