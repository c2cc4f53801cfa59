/**
 * A whole run: validates its input, starts one child workflow per intent and shares the run's bound on
 * LLM calls in flight among the intents still working, passing pause and resume on to them.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { IntentId } from '../method/intents';
import { sliceTaxonomy } from '../method/taxonomy';
import { MAX_CONCURRENCY } from '../shared/constants';
import { costOf, formatCost, paidTokens, priceFor } from '../shared/pricing';
import {
  intentReportSignal,
  pauseSignal,
  pauseUpdate,
  resumeSignal,
  resumeUpdate,
  runProgressQuery,
  setConcurrencySignal,
  setConcurrencyUpdate,
  setRunConcurrencySignal,
} from '../run/messages';
import {
  concurrencySchema,
  intentReportSchema,
  runInputSchema,
  type FailedAttempts,
  type IntentProgress,
  type RunControlState,
  type RunInput,
  type RunSummary,
} from '../run/schemas';
import { splitConcurrency } from './budget';
import { consistentChatIntent } from './intent';
import { PATCHES } from './patches';
import { checkOutputDirectory } from './storage-check';

/** `2h 05m`, `14m`, `40s`. */
function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m}m` : `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

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
  /** The latest report of each intent still running. */
  const live = new Map<IntentId, IntentProgress>();
  const failedIntents = new Map<IntentId, string>();
  const running = () => config.intents.filter((i) => !finished.has(i) && !failedIntents.has(i));
  let shares = splitConcurrency(concurrency, config.intents);
  // Runs from before the worker gate neither tell their intents the run's bound nor pass it at start.
  const gated = patched(PATCHES.workerGate);
  /** The bound the intents last heard, to tell them only when it changes. */
  let toldConcurrency = concurrency;

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
  // Intents that have started their last dialogue get no share, so no share signal races their completion.
  const skipFinishing = patched(PATCHES.finishingIntents);
  const finishing = (intent: IntentId) => {
    const report = live.get(intent);
    return skipFinishing && report?.started !== undefined && report.started >= report.planned;
  };
  const rebalance = async () => {
    const sharing = running().filter((i) => !finishing(i));
    const next = splitConcurrency(concurrency, sharing);
    const changed = sharing.filter((i) => next.get(i) !== shares.get(i));
    shares = next;
    await Promise.all(
      changed.map((i) =>
        child(i)
          .signal(setConcurrencySignal, next.get(i) ?? 0)
          .catch(() => undefined),
      ),
    );
    if (gated && concurrency !== toldConcurrency) {
      toldConcurrency = concurrency;
      const total = concurrency;
      await tellChildren((i) => child(i).signal(setRunConcurrencySignal, total));
    }
  };

  const intentView = (intent: IntentId): IntentProgress =>
    finished.get(intent) ??
    (live.has(intent) && !failedIntents.has(intent)
      ? { ...live.get(intent)!, paused, concurrency: shares.get(intent) ?? 0 }
      : undefined) ?? {
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
    };
  const price = priceFor(config.model, config.prices);
  setHandler(runProgressQuery, () => ({
    runId: config.runId,
    outDir: config.outDir,
    model: config.model,
    paused,
    concurrency,
    price,
    intents: config.intents.map(intentView),
  }));

  /** What the UI shows under the run: its numbers so far, cost and a rough ETA. */
  const startedAt = workflowInfo().runStartTime.getTime();
  const showDetails = () => {
    const view = config.intents.map(intentView);
    const sum = (pick: (p: IntentProgress) => number) => view.reduce((t, p) => t + pick(p), 0);
    const planned = sum((p) => p.planned);
    const done = sum((p) => p.written + p.failed + (p.duplicates ?? 0));
    const tokens = paidTokens(view);
    const elapsed = Date.now() - startedAt;
    const eta =
      done > 0 && done < planned && !paused
        ? ` · ETA ${formatDuration(((planned - done) * elapsed) / done)}`
        : '';
    setCurrentDetails(
      [
        `${paused ? 'PAUSED · ' : ''}${sum((p) => p.written)}/${planned} written · ${sum((p) => p.failed)} failed`,
        `${tokens.prompt + tokens.completion} tokens · ${formatCost(costOf(price, tokens))}${eta}`,
      ].join('\n'),
    );
  };
  setHandler(intentReportSignal, (report) => {
    // Any workflow can signal: take only a well-formed report of an intent of this run still running.
    const parsed = intentReportSchema.safeParse(report);
    if (!parsed.success || !config.intents.includes(parsed.data.intent) || finished.has(parsed.data.intent)) {
      log.warn('intentReport signal ignored', { intent: String((report as { intent?: unknown })?.intent) });
      return;
    }
    const wasFinishing = finishing(parsed.data.intent);
    live.set(parsed.data.intent, report);
    // Its share goes to the intents still starting dialogues; shared out once every report that came
    // with this one is in (a microtask runs after the activation's signals), so none gets a share late.
    if (!wasFinishing && finishing(parsed.data.intent)) void Promise.resolve().then(rebalance);
    showDetails();
  });
  const markPaused = () => {
    if (patched(PATCHES.runMemoPaused)) upsertMemo({ paused });
    showDetails();
  };
  // Signals: kept for older clients and `temporal workflow signal`; they tell every running child.
  setHandler(pauseSignal, async () => {
    paused = true;
    markPaused();
    await tellChildren((i) => child(i).signal(pauseSignal));
  });
  setHandler(resumeSignal, async () => {
    paused = false;
    markPaused();
    await tellChildren((i) => child(i).signal(resumeSignal));
  });
  setHandler(setConcurrencySignal, async (n) => {
    // A signal has no validator: a bad argument would stall every intent (NaN shares), so it is dropped.
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      if (patched(PATCHES.ignoreBadConcurrencySignal)) {
        log.warn('setConcurrency signal ignored: its argument is not a number', { argument: String(n) });
        return;
      }
    }
    concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, Math.floor(n)));
    await rebalance();
  });

  // Updates: validated before they are accepted, applied one at a time once every child has started,
  // and answered with the state the run then has.
  let childrenStarted = false;
  const controlState = (): RunControlState => ({
    runId: config.runId,
    paused,
    concurrency,
    intents: running().map((intent) => ({ intent, concurrency: shares.get(intent) ?? 0 })),
  });
  let controlQueue: Promise<unknown> = Promise.resolve();
  const control = (apply: () => Promise<void>): Promise<RunControlState> => {
    const next = controlQueue.then(async () => {
      await condition(() => childrenStarted);
      await apply();
      return controlState();
    });
    controlQueue = next.catch(() => undefined);
    return next;
  };
  setHandler(pauseUpdate, () =>
    control(async () => {
      paused = true;
      markPaused();
      await tellChildren((i) => child(i).signal(pauseSignal));
    }),
  );
  setHandler(resumeUpdate, () =>
    control(async () => {
      paused = false;
      markPaused();
      await tellChildren((i) => child(i).signal(resumeSignal));
    }),
  );
  setHandler(
    setConcurrencyUpdate,
    (n) =>
      control(async () => {
        concurrency = n;
        await rebalance();
      }),
    {
      validator: (n) => {
        if (!concurrencySchema.safeParse(n).success) {
          throw new Error(
            `setConcurrency: expected an integer from 1 to ${MAX_CONCURRENCY}, got ${JSON.stringify(n) ?? String(n)}`,
          );
        }
      },
    },
  );
  markPaused();
  // A directory the storage worker refuses fails the run before any LLM call is paid for.
  if (patched(PATCHES.storageCheckFirst)) await checkOutputDirectory(config);

  const children = await Promise.all(
    config.intents.map(async (intent) => {
      const startedWith = { paused, concurrency: shares.get(intent) ?? 0, runConcurrency: concurrency };
      const handle = await startChild(consistentChatIntent, {
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
            concurrency: startedWith.concurrency,
            ...(gated && { runConcurrency: startedWith.runConcurrency }),
          },
        ],
        staticSummary: `${intent}: ${config.numDialogsPerIntent} dialogues`,
      });
      // A pause or a new concurrency that came while the child was starting may not have reached it.
      const share = shares.get(intent) ?? 0;
      if (
        (paused !== startedWith.paused || share !== startedWith.concurrency) &&
        patched(PATCHES.lateChildGetsPause)
      ) {
        const target = child(intent);
        await target.signal(paused ? pauseSignal : resumeSignal).catch(() => undefined);
        if (share !== startedWith.concurrency)
          await target.signal(setConcurrencySignal, share).catch(() => undefined);
      }
      if (gated && concurrency !== startedWith.runConcurrency)
        await child(intent)
          .signal(setRunConcurrencySignal, concurrency)
          .catch(() => undefined);
      return { intent, handle };
    }),
  );
  childrenStarted = true;

  await Promise.all(
    children.map(async ({ intent, handle }) => {
      try {
        finished.set(intent, await handle.result());
        live.delete(intent);
      } catch (error) {
        if (isCancellation(error)) throw error;
        const message =
          error instanceof ChildWorkflowFailure ? (error.cause?.message ?? error.message) : String(error);
        failedIntents.set(intent, message);
      }
      // Not awaited: a signal to a child that has just finished fails only after the server gives up
      // on it (seconds), and the run must not wait for that to end.
      void rebalance();
      showDetails();
    }),
  );
  await condition(() => running().length === 0);
  // An update or signal still telling children finishes first, so its caller gets its answer.
  if (patched(PATCHES.runWaitsForHandlers)) await condition(allHandlersFinished);

  if (failedIntents.size > 0) {
    throw ApplicationFailure.nonRetryable(
      `intent workflows failed: ${[...failedIntents].map(([i, m]) => `${i}: ${m}`).join('; ')}`,
      RUN_FAILURE_TYPES.intentFailed,
    );
  }
  const intents = config.intents.map((i) => finished.get(i)!);
  const sum = (pick: (p: IntentProgress) => number) => intents.reduce((total, p) => total + pick(p), 0);
  const stageSum = (stage: keyof FailedAttempts) => ({
    calls: sum((p) => p.failedAttempts?.[stage].calls ?? 0),
    prompt: sum((p) => p.failedAttempts?.[stage].prompt ?? 0),
    completion: sum((p) => p.failedAttempts?.[stage].completion ?? 0),
  });
  const tokenSum = (stage: keyof FailedAttempts) => ({
    prompt: sum((p) => p.stageTokens?.[stage].prompt ?? 0),
    completion: sum((p) => p.stageTokens?.[stage].completion ?? 0),
  });
  return {
    runId: config.runId,
    outDir: config.outDir,
    model: config.model,
    requested: config.numDialogsPerIntent * config.intents.length,
    written: sum((p) => p.written),
    failed: sum((p) => p.failed),
    tokens: { prompt: sum((p) => p.tokens.prompt), completion: sum((p) => p.tokens.completion) },
    llmCalls: sum((p) => p.llmCalls),
    duplicates: sum((p) => p.duplicates ?? 0),
    failedAttempts: { skeleton: stageSum('skeleton'), responses: stageSum('responses') },
    stageTokens: {
      skeleton: tokenSum('skeleton'),
      responses: tokenSum('responses'),
    },
    estimatedCostUsd: costOf(priceFor(config.model, config.prices), paidTokens(intents)),
    intents,
  };
}
