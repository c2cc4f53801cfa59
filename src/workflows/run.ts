/**
 * A whole run: validates its input, starts one child workflow per intent and shares the run's bound on
 * LLM calls in flight among the intents still working, passing pause and resume on to them.
 */
import {
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { IntentId } from '../method/intents';
import { sliceTaxonomy } from '../method/taxonomy';
import { MAX_CONCURRENCY } from '../shared/constants';
import { pauseSignal, resumeSignal, runProgressQuery, setConcurrencySignal } from '../shared/messages';
import { runInputSchema, type IntentProgress, type RunInput, type RunSummary } from '../shared/schemas';
import { splitConcurrency } from './budget';
import { consistentChatIntent } from './intent';

export const RUN_FAILURE_TYPES = {
  invalidInput: 'Run.InvalidInput',
  intentFailed: 'Run.IntentFailed',
} as const;

/** Workflow id of an intent's child workflow: readable in the UI and derived from the run id. */
export function intentWorkflowId(runId: string, intent: IntentId): string {
  return `${runId}.${intent}`;
}

/** The run workflow's input: `runId` may be left out and then is the workflow id. */
export type RunWorkflowInput = Omit<RunInput, 'runId'> & { runId?: string };

export async function consistentChatRun(input: RunWorkflowInput): Promise<RunSummary> {
  // The run id defaults to the workflow id, so `temporal workflow start --workflow-id X` needs no runId.
  const parsed = runInputSchema.safeParse({ runId: workflowInfo().workflowId, ...input });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : '(input)';
    throw ApplicationFailure.create({
      type: RUN_FAILURE_TYPES.invalidInput,
      message: `invalid run input: ${field}: ${issue?.message ?? 'invalid'}`,
      nonRetryable: true,
      details: [parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))],
    });
  }
  const config = parsed.data;
  if (config.runId !== workflowInfo().workflowId) {
    throw ApplicationFailure.nonRetryable(
      `invalid run input: runId: must equal the workflow id (${workflowInfo().workflowId})`,
      RUN_FAILURE_TYPES.invalidInput,
    );
  }

  let paused = config.paused;
  let concurrency = config.concurrency;
  const finished = new Map<IntentId, IntentProgress>();
  const failedIntents = new Map<IntentId, string>();
  const running = () => config.intents.filter((i) => !finished.has(i) && !failedIntents.has(i));
  let shares = splitConcurrency(concurrency, config.intents);

  const tellChildren = async (send: (intent: IntentId) => Promise<void>) => {
    await Promise.all(
      running().map((intent) =>
        send(intent).catch(() => {
          // The child may have just finished; nothing to tell it then.
        }),
      ),
    );
  };
  const child = (intent: IntentId) => getExternalWorkflowHandle(intentWorkflowId(config.runId, intent));
  const rebalance = async () => {
    const next = splitConcurrency(concurrency, running());
    const changed = running().filter((i) => next.get(i) !== shares.get(i));
    shares = next;
    await Promise.all(
      changed.map((i) =>
        child(i)
          .signal(setConcurrencySignal, next.get(i) ?? 0)
          .catch(() => undefined),
      ),
    );
  };

  setHandler(pauseSignal, async () => {
    paused = true;
    await tellChildren((i) => child(i).signal(pauseSignal));
  });
  setHandler(resumeSignal, async () => {
    paused = false;
    await tellChildren((i) => child(i).signal(resumeSignal));
  });
  setHandler(setConcurrencySignal, async (n) => {
    concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, Math.floor(n)));
    await rebalance();
  });
  setHandler(runProgressQuery, () => ({
    runId: config.runId,
    outDir: config.outDir,
    model: config.model,
    paused,
    concurrency,
    intents: config.intents.map(
      (intent): IntentProgress =>
        finished.get(intent) ?? {
          intent,
          planned: config.numDialogsPerIntent,
          written: 0,
          failed: 0,
          inFlight: 0,
          tokens: { prompt: 0, completion: 0 },
          llmCalls: 0,
          paused,
          concurrency: shares.get(intent) ?? 0,
          status: failedIntents.has(intent) ? 'failed' : 'running',
          continuedAsNew: 0,
        },
    ),
  }));

  const children = await Promise.all(
    config.intents.map((intent) =>
      startChild(consistentChatIntent, {
        workflowId: intentWorkflowId(config.runId, intent),
        args: [
          {
            // A child carries only its own intent's part of a run's taxonomy (none if the run has none).
            config: {
              ...config,
              paused,
              ...(config.taxonomy && { taxonomy: sliceTaxonomy(config.taxonomy, intent) }),
            },
            intent,
            concurrency: shares.get(intent) ?? 0,
          },
        ],
        staticSummary: `${intent}: ${config.numDialogsPerIntent} dialogues`,
      }).then((handle) => ({ intent, handle })),
    ),
  );

  await Promise.all(
    children.map(async ({ intent, handle }) => {
      try {
        finished.set(intent, await handle.result());
      } catch (error) {
        if (isCancellation(error)) throw error;
        const message =
          error instanceof ChildWorkflowFailure ? (error.cause?.message ?? error.message) : String(error);
        failedIntents.set(intent, message);
      }
      // Not awaited: a signal to a child that has just finished fails only after the server gives up
      // on it (seconds), and the run must not wait for that to end.
      void rebalance();
    }),
  );
  await condition(() => running().length === 0);

  if (failedIntents.size > 0) {
    throw ApplicationFailure.nonRetryable(
      `intent workflows failed: ${[...failedIntents].map(([i, m]) => `${i}: ${m}`).join('; ')}`,
      RUN_FAILURE_TYPES.intentFailed,
    );
  }
  const intents = config.intents.map((i) => finished.get(i)!);
  const sum = (pick: (p: IntentProgress) => number) => intents.reduce((total, p) => total + pick(p), 0);
  return {
    runId: config.runId,
    outDir: config.outDir,
    model: config.model,
    requested: config.numDialogsPerIntent * config.intents.length,
    written: sum((p) => p.written),
    failed: sum((p) => p.failed),
    tokens: { prompt: sum((p) => p.tokens.prompt), completion: sum((p) => p.tokens.completion) },
    llmCalls: sum((p) => p.llmCalls),
    intents,
  };
}
