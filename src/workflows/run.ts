/**
 * A whole run: validates its input, starts one child workflow per intent and shares the run's bound on
 * LLM calls in flight among the intents still working, passing pause and resume on to them.
 *
 * In order: `parseRunInput` → `RunState` (the run's numbers and how it tells its children) →
 * `handleProgress` and `handleControl` (queries, signals, updates) → `startIntents` → `awaitIntents` →
 * `runSummary`. The order of `patched()` calls and commands is the recorded one (test/replay).
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  type ChildWorkflowHandle,
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
import { expansionMaxTokens, type TopicLeaf } from '../method/expansion';
import { BUILTIN_TAXONOMY, sliceTaxonomy } from '../method/taxonomy';
import { mergeJudgeTallies } from '../method/judge';
import { MAX_CONCURRENCY, STATUS_SCHEMA_VERSION } from '../shared/constants';
import {
  batchPrice,
  costOf,
  formatCost,
  paidTokens,
  priceFor,
  runCostUsd,
  liveCostUsd,
  type Price,
} from '../shared/pricing';
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
  type JudgeCalibration,
  type RunConfig,
  type RunControlState,
  type RunInput,
  type RunSummary,
} from '../run/schemas';
import { splitConcurrency } from './budget';
import { consistentChatIntent } from './intent';
import { consistentChatBatchIntent } from './batch-intent';
import { llmCallSettings } from './intent/options';
import { PATCHES } from './patches';
import { expandedTaxonomy, expandTopics, openTopicBooks, type TopicBooks } from './topics';
import { checkOutputDirectory } from './storage-check';
import { writeRunFiles } from './run-files';
import { calibrateRunJudge } from './calibration';

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
  const config = parseRunInput(input);
  const run = new RunState(config);
  handleProgress(run);
  handleControl(run);
  run.markPaused();
  // A directory the storage worker refuses fails the run before any LLM call is paid for.
  if (patched(PATCHES.storageCheckFirst)) await checkOutputDirectory(config);
  // A judge is calibrated before it is paid for (once: a resumed run replays the verdicts).
  if (config.judge && config.judge.calibrate !== false && patched(PATCHES.judgeCalibration))
    run.calibration = await calibrateRunJudge(run, config.judge);

  const children = await startIntents(run);
  run.childrenStarted = true;
  await awaitIntents(run, children);
  // An update or signal still telling children finishes first, so its caller gets its answer.
  if (patched(PATCHES.runWaitsForHandlers)) await condition(allHandlersFinished);

  if (run.failedIntents.size > 0) {
    throw ApplicationFailure.nonRetryable(
      `intent workflows failed: ${[...run.failedIntents].map(([i, m]) => `${i}: ${m}`).join('; ')}`,
      RUN_FAILURE_TYPES.intentFailed,
    );
  }
  const summary = withCalibration(
    withTopics(
      runSummary(
        config,
        config.intents.map((i) => run.finished.get(i)!),
      ),
      run.topicBooks,
      run.price,
    ),
    run.calibration,
    run.judge ? run.judge.price : run.price,
  );
  // Whoever started the run, its directory gets summary.json (and run.json if no client wrote one).
  if (patched(PATCHES.runWritesFiles)) await writeRunFiles(config, summary);
  return summary;
}

/** The run's input, checked: a bad field fails the run at once, naming the field. */
function parseRunInput(input: RunWorkflowInput): RunConfig {
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
  if (parsed.data.runId !== workflowInfo().workflowId) {
    throw ApplicationFailure.nonRetryable(
      `invalid run input: runId: must equal the workflow id (${workflowInfo().workflowId})`,
      RUN_FAILURE_TYPES.invalidInput,
    );
  }
  return parsed.data;
}

/** The run's numbers while it goes, and how it tells its children about pause and concurrency. */
class RunState {
  paused: boolean;
  concurrency: number;
  readonly finished = new Map<IntentId, IntentProgress>();
  /** The latest report of each intent still running. */
  readonly live = new Map<IntentId, IntentProgress>();
  readonly failedIntents = new Map<IntentId, string>();
  shares: Map<IntentId, number>;
  // Runs from before the worker gate neither tell their intents the run's bound nor pass it at start.
  readonly gated = patched(PATCHES.workerGate);
  /** The bound the intents last heard, to tell them only when it changes. */
  private toldConcurrency: number;
  // Intents that have started their last dialogue get no share, so no share signal races their completion.
  private readonly skipFinishing = patched(PATCHES.finishingIntents);
  readonly price: Price | undefined;
  /** The judge's model and price when it is another model than the run's: its tokens are priced apart. */
  readonly judge: { model: string; price: Price | undefined } | undefined;
  private readonly startedAt = workflowInfo().runStartTime.getTime();
  /** The `topics` stage's calls, tokens and drops (runs with topic expansion). */
  readonly topicBooks = openTopicBooks();
  /** Updates wait for this: they apply to children that exist. */
  childrenStarted = false;
  /** The judge's calibration, once scored (runs with a judge that calibrate it). */
  calibration: JudgeCalibration | undefined;

  constructor(readonly config: RunConfig) {
    this.paused = config.paused;
    this.concurrency = config.concurrency;
    this.toldConcurrency = config.concurrency;
    this.shares = splitConcurrency(config.concurrency, config.intents);
    this.price = priceFor(config.model, config.prices);
    const judgeModel = config.judge?.model;
    this.judge =
      judgeModel !== undefined && judgeModel !== config.model
        ? { model: judgeModel, price: priceFor(judgeModel, config.prices) }
        : undefined;
  }

  running(): IntentId[] {
    return this.config.intents.filter((i) => !this.finished.has(i) && !this.failedIntents.has(i));
  }

  child(intent: IntentId) {
    return getExternalWorkflowHandle(intentWorkflowId(this.config.runId, intent));
  }

  async tellChildren(send: (intent: IntentId) => Promise<void>): Promise<void> {
    await Promise.all(
      this.running().map((intent) =>
        send(intent).catch(() => {
          // The child may have just finished; nothing to tell it then.
        }),
      ),
    );
  }

  finishing(intent: IntentId): boolean {
    const report = this.live.get(intent);
    return this.skipFinishing && report?.started !== undefined && report.started >= report.planned;
  }

  /** Shares the bound out again among the intents still starting dialogues; tells those whose share changed. */
  async rebalance(): Promise<void> {
    const sharing = this.running().filter((i) => !this.finishing(i));
    const next = splitConcurrency(this.concurrency, sharing);
    const changed = sharing.filter((i) => next.get(i) !== this.shares.get(i));
    this.shares = next;
    await Promise.all(
      changed.map((i) =>
        this.child(i)
          .signal(setConcurrencySignal, next.get(i) ?? 0)
          .catch(() => undefined),
      ),
    );
    if (this.gated && this.concurrency !== this.toldConcurrency) {
      this.toldConcurrency = this.concurrency;
      const total = this.concurrency;
      await this.tellChildren((i) => this.child(i).signal(setRunConcurrencySignal, total));
    }
  }

  /** Pauses or resumes the run and every running child. */
  async setPaused(paused: boolean): Promise<void> {
    this.paused = paused;
    this.markPaused();
    await this.tellChildren((i) => this.child(i).signal(paused ? pauseSignal : resumeSignal));
  }

  markPaused(): void {
    if (patched(PATCHES.runMemoPaused)) upsertMemo({ paused: this.paused });
    this.showDetails();
  }

  intentView(intent: IntentId): IntentProgress {
    const { paused } = this;
    const concurrency = this.shares.get(intent) ?? 0;
    const finished = this.finished.get(intent);
    if (finished) return finished;
    const report = this.live.get(intent);
    if (report && !this.failedIntents.has(intent)) return { ...report, paused, concurrency };
    return {
      intent,
      planned: this.config.numDialogsPerIntent,
      written: 0,
      failed: 0,
      inFlight: 0,
      tokens: { prompt: 0, completion: 0 },
      llmCalls: 0,
      paused,
      concurrency,
      status: this.failedIntents.has(intent) ? 'failed' : 'running',
      continuedAsNew: 0,
    };
  }

  /** What the UI shows under the run: its numbers so far, cost and a rough ETA. */
  showDetails(): void {
    const view = this.config.intents.map((i) => this.intentView(i));
    const sum = (pick: (p: IntentProgress) => number) => view.reduce((t, p) => t + pick(p), 0);
    const planned = sum((p) => p.planned);
    const done = sum((p) => p.written + p.failed + (p.duplicates ?? 0));
    const tokens = paidTokens(view);
    const elapsed = Date.now() - this.startedAt;
    const eta =
      done > 0 && done < planned && !this.paused
        ? ` · ETA ${formatDuration(((planned - done) * elapsed) / done)}`
        : '';
    setCurrentDetails(
      [
        `${this.paused ? 'PAUSED · ' : ''}${sum((p) => p.written)}/${planned} written · ${sum((p) => p.failed)} failed`,
        `${tokens.prompt + tokens.completion} tokens · ${formatCost(liveCostUsd(view, this.price, this.judge))}${eta}`,
      ].join('\n'),
    );
  }
}

/** The progress query, and the intents' reports that feed it. */
function handleProgress(run: RunState): void {
  const { config } = run;
  setHandler(runProgressQuery, () => ({
    schemaVersion: STATUS_SCHEMA_VERSION,
    runId: config.runId,
    outDir: config.outDir,
    model: config.model,
    paused: run.paused,
    concurrency: run.concurrency,
    price: run.price,
    ...(run.judge && { judgeModel: run.judge.model, judgePrice: run.judge.price }),
    ...(run.calibration && { calibration: run.calibration }),
    intents: config.intents.map((i) => run.intentView(i)),
  }));
  setHandler(intentReportSignal, (report) => {
    // Any workflow can signal: take only a well-formed report of an intent of this run still running.
    const parsed = intentReportSchema.safeParse(report);
    if (
      !parsed.success ||
      !config.intents.includes(parsed.data.intent) ||
      run.finished.has(parsed.data.intent)
    ) {
      log.warn('intentReport signal ignored', { intent: String((report as { intent?: unknown })?.intent) });
      return;
    }
    const wasFinishing = run.finishing(parsed.data.intent);
    run.live.set(parsed.data.intent, report);
    // Its share goes to the intents still starting dialogues; shared out once every report that came
    // with this one is in (a microtask runs after the activation's signals), so none gets a share late.
    if (!wasFinishing && run.finishing(parsed.data.intent))
      void Promise.resolve().then(() => run.rebalance());
    run.showDetails();
  });
}

/** Pause, resume and concurrency, as signals (older clients, `temporal workflow signal`) and as updates. */
function handleControl(run: RunState): void {
  setHandler(pauseSignal, () => run.setPaused(true));
  setHandler(resumeSignal, () => run.setPaused(false));
  setHandler(setConcurrencySignal, async (n) => {
    // A signal has no validator: a bad argument would stall every intent (NaN shares), so it is dropped.
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      if (patched(PATCHES.ignoreBadConcurrencySignal)) {
        log.warn('setConcurrency signal ignored: its argument is not a number', { argument: String(n) });
        return;
      }
    }
    run.concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, Math.floor(n)));
    await run.rebalance();
  });

  // Updates: validated before they are accepted, applied one at a time once every child has started,
  // and answered with the state the run then has.
  const controlState = (): RunControlState => ({
    runId: run.config.runId,
    paused: run.paused,
    concurrency: run.concurrency,
    intents: run.running().map((intent) => ({ intent, concurrency: run.shares.get(intent) ?? 0 })),
  });
  let controlQueue: Promise<unknown> = Promise.resolve();
  const control = (apply: () => Promise<void>): Promise<RunControlState> => {
    const next = controlQueue.then(async () => {
      await condition(() => run.childrenStarted);
      await apply();
      return controlState();
    });
    controlQueue = next.catch(() => undefined);
    return next;
  };
  setHandler(pauseUpdate, () => control(() => run.setPaused(true)));
  setHandler(resumeUpdate, () => control(() => run.setPaused(false)));
  setHandler(
    setConcurrencyUpdate,
    (n) =>
      control(async () => {
        run.concurrency = n;
        await run.rebalance();
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
}

type IntentChild = ChildWorkflowHandle<typeof consistentChatIntent>;

/** Starts one child per intent, each with its share; tells a child what changed while it was starting. */
async function startIntents(run: RunState): Promise<{ intent: IntentId; handle: IntentChild }[]> {
  const { config } = run;
  return Promise.all(
    config.intents.map(async (intent) => {
      const leaves = await expandedLeaves(run, intent);
      const startedWith = {
        paused: run.paused,
        concurrency: run.shares.get(intent) ?? 0,
        runConcurrency: run.concurrency,
      };
      // Batch runs start a workflow type of their own: real-time intents' histories are untouched.
      const workflow = config.mode === 'batch' ? consistentChatBatchIntent : consistentChatIntent;
      const handle = await startChild(workflow, {
        workflowId: intentWorkflowId(config.runId, intent),
        args: [
          {
            // A child carries only its own intent's part of a run's taxonomy (none if the run has none).
            config: {
              ...config,
              paused: run.paused,
              ...(config.taxonomy && { taxonomy: sliceTaxonomy(config.taxonomy, intent) }),
              ...(leaves && {
                taxonomy: expandedTaxonomy(config.taxonomy ?? BUILTIN_TAXONOMY, intent, leaves),
              }),
            },
            intent,
            concurrency: startedWith.concurrency,
            ...(run.gated && { runConcurrency: startedWith.runConcurrency }),
          },
        ],
        staticSummary: `${intent}: ${config.numDialogsPerIntent} dialogues`,
      });
      // A pause or a new concurrency that came while the child was starting may not have reached it.
      const share = run.shares.get(intent) ?? 0;
      if (
        (run.paused !== startedWith.paused || share !== startedWith.concurrency) &&
        patched(PATCHES.lateChildGetsPause)
      ) {
        const target = run.child(intent);
        await target.signal(run.paused ? pauseSignal : resumeSignal).catch(() => undefined);
        if (share !== startedWith.concurrency)
          await target.signal(setConcurrencySignal, share).catch(() => undefined);
      }
      if (run.gated && run.concurrency !== startedWith.runConcurrency)
        await run
          .child(intent)
          .signal(setRunConcurrencySignal, run.concurrency)
          .catch(() => undefined);
      return { intent, handle };
    }),
  );
}

/** The intent's leaf topics, in runs that ask for expansion; runs without `expand` never reach `patched`. */
async function expandedLeaves(run: RunState, intent: IntentId): Promise<TopicLeaf[] | undefined> {
  const { config } = run;
  if (!config.expand || !patched(PATCHES.topicExpansion)) return undefined;
  const settings = {
    ...llmCallSettings(config, 'skeleton', run.concurrency, run.gated),
    maxTokens: expansionMaxTokens(config.expand),
  };
  return expandTopics(config, intent, config.expand, settings, run.topicBooks);
}

/** Waits for every child; a failed one is noted (the run fails once all are done), its share freed. */
async function awaitIntents(
  run: RunState,
  children: { intent: IntentId; handle: IntentChild }[],
): Promise<void> {
  await Promise.all(
    children.map(async ({ intent, handle }) => {
      try {
        run.finished.set(intent, await handle.result());
        run.live.delete(intent);
      } catch (error) {
        if (isCancellation(error)) throw error;
        const message =
          error instanceof ChildWorkflowFailure ? (error.cause?.message ?? error.message) : String(error);
        run.failedIntents.set(intent, message);
      }
      // Not awaited: a signal to a child that has just finished fails only after the server gives up
      // on it (seconds), and the run must not wait for that to end.
      void run.rebalance();
      run.showDetails();
    }),
  );
  await condition(() => run.running().length === 0);
}

/** Adds the `topics` stage's calls and tokens to a summary, when the run expanded any topic. */
function withTopics(summary: RunSummary, books: TopicBooks, price: Price | undefined): RunSummary {
  if (books.calls + books.failed.calls === 0) return summary;
  const tokens = {
    prompt: books.prompt + books.failed.prompt,
    completion: books.completion + books.failed.completion,
  };
  return {
    ...summary,
    tokens: {
      prompt: summary.tokens.prompt + books.prompt,
      completion: summary.tokens.completion + books.completion,
    },
    llmCalls: summary.llmCalls + books.calls,
    failedAttempts: summary.failedAttempts && { ...summary.failedAttempts, topics: books.failed },
    stageTokens: summary.stageTokens && {
      ...summary.stageTokens,
      topics: { prompt: books.prompt, completion: books.completion },
    },
    topics: { dropped: books.dropped, duplicates: books.duplicates },
    ...(summary.estimatedCostUsd !== undefined && {
      estimatedCostUsd: summary.estimatedCostUsd + (costOf(price, tokens) ?? 0),
    }),
  };
}

/** Adds the judge's calibration and its calls, tokens and cost to a summary, when the run calibrated. */
function withCalibration(
  summary: RunSummary,
  calibration: JudgeCalibration | undefined,
  judgePrice: Price | undefined,
): RunSummary {
  if (!calibration) return summary;
  const { tokens, failedAttempts: failed } = calibration;
  const add = (a: { prompt: number; completion: number } | undefined, b: typeof tokens) => ({
    prompt: (a?.prompt ?? 0) + b.prompt,
    completion: (a?.completion ?? 0) + b.completion,
  });
  const judgeFailed = summary.failedAttempts?.judge;
  const paid = add(tokens, failed);
  return {
    ...summary,
    tokens: add(summary.tokens, tokens),
    llmCalls: summary.llmCalls + calibration.llmCalls,
    failedAttempts: summary.failedAttempts && {
      ...summary.failedAttempts,
      judge: { ...add(judgeFailed, failed), calls: (judgeFailed?.calls ?? 0) + failed.calls },
    },
    stageTokens: summary.stageTokens && {
      ...summary.stageTokens,
      judge: add(summary.stageTokens.judge, tokens),
    },
    calibration,
    ...(summary.estimatedCostUsd !== undefined && {
      estimatedCostUsd: summary.estimatedCostUsd + (costOf(judgePrice, paid) ?? 0),
    }),
  };
}

/** The run's result: the intents' numbers summed. */
function runSummary(config: RunConfig, intents: IntentProgress[]): RunSummary {
  const sum = (pick: (p: IntentProgress) => number) => intents.reduce((total, p) => total + pick(p), 0);
  const stageSum = (stage: keyof FailedAttempts) => ({
    calls: sum((p) => p.failedAttempts?.[stage]?.calls ?? 0),
    prompt: sum((p) => p.failedAttempts?.[stage]?.prompt ?? 0),
    completion: sum((p) => p.failedAttempts?.[stage]?.completion ?? 0),
  });
  const tokenSum = (stage: keyof FailedAttempts) => ({
    prompt: sum((p) => p.stageTokens?.[stage]?.prompt ?? 0),
    completion: sum((p) => p.stageTokens?.[stage]?.completion ?? 0),
  });
  // The judge's entries only in runs with a judge: other runs' summaries keep their shape.
  const judged = config.judge !== undefined;
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
    failedAttempts: {
      skeleton: stageSum('skeleton'),
      responses: stageSum('responses'),
      ...(judged && { judge: stageSum('judge') }),
    },
    stageTokens: {
      skeleton: tokenSum('skeleton'),
      responses: tokenSum('responses'),
      ...(judged && { judge: tokenSum('judge') }),
    },
    estimatedCostUsd: runCostUsd(
      intents,
      { model: config.model, judgeModel: config.judge?.model },
      config.prices,
    ),
    ...(judged && {
      judge: mergeJudgeTallies(intents.map((p) => p.judge)),
      judgeModel: config.judge?.model ?? config.model,
    }),
    ...withBatchPrice(
      config,
      intents,
      runCostUsd(intents, { model: config.model, judgeModel: config.judge?.model }, config.prices),
    ),
    intents,
  };
}

/**
 * Batch runs: their batches' calls and tokens apart, at the batch price, and the run's estimate with
 * those tokens at that price instead of the real-time one. Other runs' summaries keep their shape.
 */
function withBatchPrice(
  config: RunConfig,
  intents: IntentProgress[],
  estimate: number | undefined,
): Pick<RunSummary, 'batch' | 'estimatedCostUsd'> {
  if (config.mode !== 'batch') return {};
  const batches = intents.map((p) => p.batch);
  const tokens = {
    prompt: batches.reduce((t, b) => t + (b?.tokens.prompt ?? 0), 0),
    completion: batches.reduce((t, b) => t + (b?.tokens.completion ?? 0), 0),
  };
  const price = priceFor(config.model, config.prices);
  const realtimeCostUsd = costOf(price, tokens);
  const costUsd = costOf(price && batchPrice(price), tokens);
  return {
    batch: { calls: batches.reduce((t, b) => t + (b?.calls ?? 0), 0), tokens, costUsd, realtimeCostUsd },
    estimatedCostUsd: estimate === undefined ? undefined : estimate - (realtimeCostUsd ?? 0) + (costUsd ?? 0),
  };
}
