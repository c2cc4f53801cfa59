/**
 * One intent of a run: plans each dialogue from the seed, runs skeleton → responses → storage for a
 * sliding window of dialogues, and continues as new before its history grows past the budget.
 */
import {
  type ActivityOptions,
  ActivityFailure,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  setWorkflowOptions,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { defaultMaxTokens, promptContext } from '../method/prompts';
import type { IntentId } from '../method/intents';
import { resolveAttributes } from '../method/attributes';
import { planDialogue } from '../method/plan';
import { planNames, toDialogueRecord } from '../method/dialogue';
import {
  intentProgressQuery,
  intentReportSignal,
  pauseSignal,
  resumeSignal,
  setConcurrencySignal,
  setRunConcurrencySignal,
} from '../shared/messages';
import { storageTaskQueueFor } from '../shared/storage-queue';
import {
  attemptUsageSchema,
  type AttemptUsage,
  type DialoguePlan,
  type DialogueRecord,
  type FailedAttempts,
  type StageTokens,
  type FailureRecord,
  type IntentProgress,
  type LlmCallSettings,
  type RunConfig,
  type Usage,
} from '../shared/schemas';
import {
  hasRoomForAnother,
  MAX_WINDOW_PER_WORKFLOW,
  scheduleAhead,
  STORE_BATCH_BYTES,
  STORE_GROUP_MS,
  storeBatchLength,
  utf8Bytes,
} from './budget';
import { PATCHES } from './patches';

/** Failure types after which every further call would fail the same way. */
const SYSTEMIC_FAILURES = new Set(['Llm.Auth', 'Llm.BadRequest']);
/** Consecutive systemic failures, with no success between, that stop the intent's LLM calls. */
const SYSTEMIC_FAILURE_LIMIT = 3;
const FAILURE_BATCH = 100;
/** Progress reports one intent sends its run over its whole life. */
export const MAX_PROGRESS_REPORTS = 100;
/**
 * Least time between two progress reports of an intent: each costs the intent a command and the run a
 * signal and a workflow task. At 2 s, nine intents' reports were 8% of a fast run's history events;
 * the CLI's progress view asks the intents directly, so only the run's own query waits longer.
 */
export const MIN_REPORT_INTERVAL_MS = 5_000;
/** The interval of runs that started before `report-interval-5s`. */
const MIN_REPORT_INTERVAL_MS_BEFORE = 2_000;
/** Most finished dialogues one storage activity carries; `STORE_BATCH_BYTES` bounds their bytes. */
const STORE_BATCH = 50;

export interface IntentState {
  nextIndex: number;
  written: number;
  failed: number;
  llmCalls: number;
  promptTokens: number;
  completionTokens: number;
  paused: boolean;
  continuedAsNew: number;
  /** Finished dialogues the store already held. Absent in states carried over before it existed. */
  duplicates?: number;
  /** Failed LLM attempts, paid, by stage. Absent in states carried over before it existed. */
  failedAttempts?: FailedAttempts;
  /** Tokens of the calls that succeeded, by stage. Absent in states carried over before it existed. */
  stageTokens?: StageTokens;
  /** Finished dialogues at the last progress report to the run. */
  reportedDone?: number;
  /** The run's bound on LLM calls in flight, as last heard (runs with the worker gate). */
  runConcurrency?: number;
  /** Set once a systemic failure stopped LLM calls: the rest of the plan is recorded as failed. */
  abortReason?: { type: string; message: string };
}

export interface IntentInput {
  config: RunConfig;
  intent: IntentId;
  /** This intent's share of the run's LLM calls in flight. */
  concurrency: number;
  /** The run's whole bound, which workers enforce across its intents. Absent from runs before the gate. */
  runConcurrency?: number;
  state?: IntentState;
}

export async function consistentChatIntent(input: IntentInput): Promise<IntentProgress> {
  const { config, intent } = input;
  const total = config.numDialogsPerIntent;
  const seed = config.seed ?? config.runId;
  const attributes = resolveAttributes(config.attributes);
  const state: IntentState = input.state ?? {
    nextIndex: 0,
    written: 0,
    failed: 0,
    llmCalls: 0,
    promptTokens: 0,
    completionTokens: 0,
    paused: config.paused,
    continuedAsNew: 0,
  };
  state.duplicates ??= 0;
  state.failedAttempts ??= {
    skeleton: { calls: 0, prompt: 0, completion: 0 },
    responses: { calls: 0, prompt: 0, completion: 0 },
  };
  const failedAttempts = state.failedAttempts;
  // Counted from here on: a state carried over from before has its earlier tokens in the totals only.
  state.stageTokens ??= {
    skeleton: { prompt: 0, completion: 0 },
    responses: { prompt: 0, completion: 0 },
  };
  const stageTokens = state.stageTokens;
  let concurrency = input.concurrency;
  // Histories from before the worker gate keep their window of `concurrency` and ungated activities.
  const gated = patched(PATCHES.workerGate);
  if (gated) state.runConcurrency = input.runConcurrency ?? state.runConcurrency ?? config.concurrency;
  const groupCommit = patched(PATCHES.storeGroupWindow);
  const lean = patched(PATCHES.leanDialogueLoop);
  /** Whether a dialogue must await the end of a pause (older histories always awaited the condition). */
  const mustWaitPause = () => !lean || state.paused;
  /** Dialogues this intent keeps in an LLM stage: its share, plus those waiting at the worker's gate. */
  const window = () => (gated ? concurrency + scheduleAhead(concurrency) : concurrency);
  /** Dialogues in an LLM stage: what `concurrency` bounds. */
  let inFlight = 0;
  /** Dialogues started and not yet finished, storage included: what the drain and the budget count. */
  let active = 0;
  let consecutiveSystemic = 0;

  const llmOptions: ActivityOptions = {
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
  const llm = proxyActivities<Activities>(llmOptions);
  // A one-line summary per call makes each activity readable in the Temporal UI.
  const summary = (stage: string, plan: DialoguePlan) => ({
    ...llmOptions,
    summary: `${stage} #${plan.index}: ${plan.topic}`,
  });
  // Storage never gives up: its worker may be down until the owner of the directory comes back.
  // Runs started before 'storage-queue-default' stored on the workflow's own queue when no storage queue
  // was given; newer ones use the shared storage queue that `worker` serves (src/shared/storage-queue.ts).
  const storageQueue = patched('storage-queue-default')
    ? storageTaskQueueFor(config, workflowInfo().taskQueue)
    : (config.storageTaskQueue ?? workflowInfo().taskQueue);
  const storageOptions: ActivityOptions = {
    taskQueue: storageQueue,
    startToCloseTimeout: '2 minutes',
    retry: {
      initialInterval: '1 second',
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: ['Storage.InvalidRecord'],
    },
  };
  const storage = proxyActivities<Activities>(storageOptions);
  /** `store 3 dialogues: #4, #5, #7` / `record 1 failure: #9`, shown for the activity in the UI. */
  const storageSummary = (verb: string, noun: string, ids: string[]) => {
    const numbers = ids.map((id) => `#${id.slice(id.lastIndexOf('.') + 1)}`);
    const listed = numbers.length > 8 ? `${numbers.slice(0, 8).join(', ')}, …` : numbers.join(', ');
    return {
      ...storageOptions,
      summary: `${verb} ${ids.length} ${noun}${ids.length === 1 ? '' : 's'}: ${listed}`,
    };
  };
  const storeFailures = (failures: FailureRecord[]) =>
    storage.storeFailures.executeWithOptions(
      storageSummary(
        'record',
        'failure',
        failures.map((f) => f.id),
      ),
      [{ outDir: config.outDir, failures }],
    );

  const progress = (status: IntentProgress['status']): IntentProgress => ({
    intent,
    planned: total,
    written: state.written,
    failed: state.failed,
    inFlight,
    tokens: { prompt: state.promptTokens, completion: state.completionTokens },
    llmCalls: state.llmCalls,
    duplicates: state.duplicates ?? 0,
    failedAttempts,
    stageTokens,
    paused: state.paused,
    concurrency,
    started: state.nextIndex,
    status,
    continuedAsNew: state.continuedAsNew,
  });
  let status: IntentProgress['status'] = 'running';
  setHandler(intentProgressQuery, () => progress(status));

  // The run's own `progress` query learns this intent's numbers from reports: one every `reportEvery`
  // finished dialogues and MIN_REPORT_INTERVAL_MS, at most MAX_PROGRESS_REPORTS over the whole intent
  // (continue-as-new included), so the run's history stays bounded however many dialogues there are.
  const parent = workflowInfo().parent;
  const reportEvery = Math.max(1, Math.ceil(total / MAX_PROGRESS_REPORTS));
  const done = () => state.written + state.failed + (state.duplicates ?? 0);
  let lastReportAt = 0;
  /** What the UI shows on the intent's page, kept current as calls and dialogues finish. */
  const showDetails = () =>
    setCurrentDetails(
      `${state.written}/${total} written · ${state.failed} failed · ${state.llmCalls} calls · ${state.promptTokens + state.completionTokens} tokens`,
    );
  showDetails();
  const reportProgress = () => {
    showDetails();
    const reported = state.reportedDone ?? 0;
    if (!parent || Math.floor(done() / reportEvery) <= Math.floor(reported / reportEvery)) return;
    if (!patched(PATCHES.intentReportsProgress)) return;
    // Workflow time: the same on replay.
    if (patched(PATCHES.reportInterval)) {
      const interval = patched(PATCHES.reportInterval5s)
        ? MIN_REPORT_INTERVAL_MS
        : MIN_REPORT_INTERVAL_MS_BEFORE;
      if (Date.now() - lastReportAt < interval) return;
    }
    sendReport();
  };
  const sendReport = () => {
    if (!parent) return;
    lastReportAt = Date.now();
    state.reportedDone = done();
    getExternalWorkflowHandle(parent.workflowId, parent.runId)
      .signal(intentReportSignal, progress('running'))
      .catch(() => undefined); // the run may be gone (cancelled); the report was only a courtesy
  };
  setHandler(pauseSignal, () => void (state.paused = true));
  setHandler(resumeSignal, () => void (state.paused = false));
  setHandler(setConcurrencySignal, (n) => {
    // A bad argument (possible from `temporal workflow signal`) would stall the intent: drop it.
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      if (patched(PATCHES.ignoreBadConcurrencySignal)) {
        log.warn('setConcurrency signal ignored: its argument is not a number', { argument: String(n) });
        return;
      }
    }
    concurrency = Math.max(0, Math.min(MAX_WINDOW_PER_WORKFLOW, n));
  });
  setHandler(setRunConcurrencySignal, (n) => {
    if (typeof n === 'number' && Number.isFinite(n) && n >= 1) state.runConcurrency = Math.floor(n);
    else
      log.warn('setRunConcurrency signal ignored: its argument is not a positive number', {
        argument: String(n),
      });
  });

  const maxTokens = { ...defaultMaxTokens(config.numTurnsPerDialog), ...config.maxTokens };
  const settings = (stage: 'skeleton' | 'responses'): LlmCallSettings => ({
    runId: config.runId,
    idleMs: config.timeouts.idleMs,
    model: config.model,
    temperature: config.temperature,
    maxTokens: maxTokens[stage],
    responseFormat: config.responseFormat,
    rateLimit: config.rateLimit,
    ...(gated && { runConcurrency: state.runConcurrency }),
  });
  const count = (stage: keyof StageTokens, usage: Usage) => {
    state.llmCalls++;
    state.promptTokens += usage.promptTokens;
    state.completionTokens += usage.completionTokens;
    stageTokens[stage].prompt += usage.promptTokens;
    stageTokens[stage].completion += usage.completionTokens;
    showDetails();
  };
  /** Failed attempts were paid: counted apart from the calls that succeeded. */
  const countFailed = (stage: keyof FailedAttempts, paid: AttemptUsage | undefined) => {
    if (!paid) return;
    failedAttempts[stage].calls += paid.calls;
    failedAttempts[stage].prompt += paid.promptTokens;
    failedAttempts[stage].completion += paid.completionTokens;
  };
  /** The failed attempts a final activity failure carries (its details, or a timeout's last heartbeat). */
  const paidByFailure = (error: ActivityFailure): AttemptUsage | undefined => {
    const cause = error.cause;
    if (cause instanceof TimeoutFailure) {
      const before = attemptUsageSchema.safeParse(cause.lastHeartbeatDetails);
      const earlier = before.success ? before.data : { calls: 0, promptTokens: 0, completionTokens: 0 };
      return { ...earlier, calls: earlier.calls + 1 };
    }
    const parsed = attemptUsageSchema.safeParse(
      cause instanceof ApplicationFailure ? cause.details?.[0] : undefined,
    );
    return parsed.success ? parsed.data : undefined;
  };
  const failureRecord = (
    plan: DialoguePlan,
    stage: FailureRecord['stage'],
    type: string,
    reason: string,
  ): FailureRecord => ({
    id: plan.id,
    intent: planNames(plan, config.taxonomy).intent,
    info_flow: planNames(plan, config.taxonomy).infoFlow,
    topic: plan.topic,
    stage,
    type,
    reason,
    failed_at: new Date().toISOString(),
  });

  // Runs that carry their own taxonomy or templates hand the activities what they need to build the
  // prompt; runs without them (older inputs) keep the built-in prompts and their activity inputs as they were.
  const prompt = (stage: 'skeleton' | 'responses', plan: DialoguePlan) =>
    config.taxonomy || config.prompts
      ? { prompt: promptContext(stage, plan, config.taxonomy, config.prompts) }
      : {};

  async function runDialogue(plan: DialoguePlan, releaseSlot: () => void): Promise<void> {
    let stage: FailureRecord['stage'] = 'skeleton';
    try {
      if (mustWaitPause()) await condition(() => !state.paused);
      const {
        skeleton,
        usage,
        failedAttempts: failedBefore,
      } = await llm.generateSkeleton.executeWithOptions(summary('skeleton', plan), [
        { plan, numTurns: config.numTurnsPerDialog, llm: settings('skeleton'), ...prompt('skeleton', plan) },
      ]);
      count('skeleton', usage);
      countFailed('skeleton', failedBefore);
      stage = 'responses';
      if (mustWaitPause()) await condition(() => !state.paused);
      const replies = await llm.generateResponses.executeWithOptions(summary('responses', plan), [
        { plan, skeleton, llm: settings('responses'), ...prompt('responses', plan) },
      ]);
      count('responses', replies.usage);
      countFailed('responses', replies.failedAttempts);
      consecutiveSystemic = 0;
      // Storing is no LLM call: the next dialogue may start while this one is written.
      releaseSlot();
      const record = toDialogueRecord({
        plan,
        skeleton,
        responses: replies.responses,
        model: config.model,
        taxonomy: config.taxonomy,
      });
      const { problem, duplicate } = await store(record);
      if (problem) {
        await storeFailures([failureRecord(plan, 'responses', 'Storage.InvalidRecord', problem)]);
        state.failed++;
        return;
      }
      if (duplicate) state.duplicates = (state.duplicates ?? 0) + 1;
      else state.written++;
    } catch (error) {
      if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
      // The LLM call failed within its attempt limit (or could never succeed): keep the plan and the reason.
      const cause = error.cause;
      const type = cause instanceof ApplicationFailure ? (cause.type ?? 'Error') : (cause?.name ?? 'Error');
      const reason = cause?.message ?? error.message;
      countFailed(stage, paidByFailure(error));
      log.warn('dialogue failed', { id: plan.id, stage, type, reason });
      if (
        SYSTEMIC_FAILURES.has(type) &&
        ++consecutiveSystemic >= SYSTEMIC_FAILURE_LIMIT &&
        !state.abortReason
      ) {
        state.abortReason = { type, message: reason };
      }
      await storeFailures([failureRecord(plan, stage, type, reason)]);
      state.failed++;
    }
  }

  /** `runDialogue(…).catch(failed).finally(settled)`, with fewer promises than that chain makes. */
  async function settleDialogue(
    plan: DialoguePlan,
    releaseSlot: () => void,
    failed: (error: unknown) => void,
    settled: () => void,
  ): Promise<void> {
    try {
      await runDialogue(plan, releaseSlot);
    } catch (error) {
      failed(error);
    } finally {
      settled();
    }
  }

  /** A refused record's reason, or whether the store already held it. */
  interface StoreOutcome {
    problem?: string;
    duplicate: boolean;
  }
  /**
   * Group commit of finished dialogues: while one storage activity runs, the dialogues finishing meanwhile
   * queue up and go together in the next one. At low throughput that is one record per activity and no
   * delay; at high throughput it saves most storage activities. Resolves with a reason if the store
   * refused the record.
   */
  const storeQueue: {
    record: DialogueRecord;
    bytes: number;
    done: (outcome: StoreOutcome) => void;
    fail: (e: unknown) => void;
  }[] = [];
  let storing = false;
  function store(record: DialogueRecord): Promise<StoreOutcome> {
    return new Promise((done, fail) => {
      storeQueue.push({ record, bytes: utf8Bytes(JSON.stringify(record)), done, fail });
      if (!storing) void flushStore();
    });
  }
  async function flushStore(): Promise<void> {
    storing = true;
    while (storeQueue.length > 0) {
      // While LLM calls are still finishing, let more records join this batch (a full one goes at once).
      if (groupCommit && storeQueue.length < STORE_BATCH && inFlight > 0)
        await condition(() => storeQueue.length >= STORE_BATCH || inFlight === 0, STORE_GROUP_MS);
      const byCount = Math.min(STORE_BATCH, storeQueue.length);
      const byBytes = storeBatchLength(
        storeQueue.map((q) => q.bytes),
        STORE_BATCH,
        STORE_BATCH_BYTES,
      );
      // Histories whose batches were cut by count only keep that path.
      const batch = storeQueue.splice(
        0,
        byBytes < byCount && patched(PATCHES.storeBatchBytes) ? byBytes : byCount,
      );
      try {
        const records = batch.map((b) => b.record);
        const result = await storage.storeDialogues.executeWithOptions(
          storageSummary(
            'store',
            'dialogue',
            records.map((r) => r.id),
          ),
          [{ outDir: config.outDir, records }],
        );
        const invalid = new Map(result.invalid.map((i) => [i.id, i.reason]));
        const duplicates = new Set(result.duplicateIds ?? []);
        for (const b of batch)
          b.done({ problem: invalid.get(b.record.id), duplicate: duplicates.has(b.record.id) });
      } catch (error) {
        for (const b of batch) b.fail(error);
      }
    }
    storing = false;
  }

  /** After a systemic failure: every dialogue left is recorded as failed, in batches, without an LLM call. */
  async function recordAborted(abort: { type: string; message: string }): Promise<void> {
    const batch: FailureRecord[] = [];
    while (state.nextIndex < total && batch.length < FAILURE_BATCH) {
      const plan = planDialogue({
        runId: config.runId,
        seed,
        intent,
        index: state.nextIndex++,
        taxonomy: config.taxonomy,
        attributes,
      });
      batch.push(
        failureRecord(
          plan,
          'skeleton',
          abort.type,
          `not attempted: the endpoint failed ${SYSTEMIC_FAILURE_LIMIT} calls in a row with ${abort.type}: ${abort.message}`,
        ),
      );
    }
    await storeFailures(batch);
    state.failed += batch.length;
    reportProgress();
  }

  const baseSize = workflowInfo().historySize;
  let finishedThisRun = 0;
  const reading = () => {
    const info = workflowInfo();
    return {
      historyLength: info.historyLength,
      historySize: info.historySize,
      continueAsNewSuggested: info.continueAsNewSuggested,
      finishedThisRun,
      baseSize,
    };
  };

  // A new current version of the workers (always false for an unversioned worker): start no new dialogue,
  // and continue as new on that version once those in flight are done.
  const upgradeWaiting = () => workflowInfo().targetWorkerDeploymentVersionChanged;
  // A dialogue that fails for a reason other than its LLM calls (cancellation, a bug) ends the workflow.
  let fatal: Error | undefined;
  let outOfRoom = false;
  const mayGoOn = () =>
    fatal !== undefined ||
    upgradeWaiting() ||
    state.abortReason !== undefined ||
    // Backpressure: if storage falls behind (its worker is down), stop paying for new dialogues.
    (!state.paused && inFlight < window() && active - inFlight < Math.max(window(), STORE_BATCH));
  /** A dialogue that failed other than by its LLM calls: the first such error ends the intent. */
  const failed = (error: unknown) =>
    void (fatal ??= error instanceof Error ? error : new Error(String(error)));
  while (state.nextIndex < total && !outOfRoom && fatal === undefined) {
    if (!lean || !mayGoOn()) await condition(mayGoOn);
    if (fatal !== undefined || upgradeWaiting()) break;
    if (state.abortReason) {
      await condition(() => active === 0);
      await recordAborted(state.abortReason);
      outOfRoom = !hasRoomForAnother(reading(), 0);
      continue;
    }
    if (!hasRoomForAnother(reading(), active)) {
      outOfRoom = true;
      break;
    }
    const plan = planDialogue({
      runId: config.runId,
      seed,
      intent,
      index: state.nextIndex++,
      taxonomy: config.taxonomy,
      attributes,
    });
    inFlight++;
    active++;
    // The last dialogue has started: the run stops giving this intent a share (one report more, ever).
    if (state.nextIndex >= total && parent && patched(PATCHES.finishingIntents)) sendReport();
    let holdsSlot = true;
    const releaseSlot = () => {
      if (holdsSlot) inFlight--;
      holdsSlot = false;
    };
    const settle = () => {
      releaseSlot();
      active--;
      finishedThisRun++;
      reportProgress();
    };
    if (lean) void settleDialogue(plan, releaseSlot, failed, settle);
    else void runDialogue(plan, releaseSlot).catch(failed).finally(settle);
  }
  await condition(() => active === 0);
  if (fatal !== undefined) throw fatal;
  if (state.nextIndex < total) {
    state.continuedAsNew++;
    await makeContinueAsNewFunc<typeof consistentChatIntent>({ initialVersioningBehavior: 'AUTO_UPGRADE' })({
      config,
      intent,
      concurrency,
      state,
    });
  }
  status = 'completed';
  return progress('completed');
}
// Worker Deployment Versioning: an intent stays on the version it started on (its code may change between
// versions); a new current version is taken at the next continue-as-new, which it then brings forward.
// Only a versioned worker (one with a deployment name) may declare a behavior: an unversioned one has its
// task completions refused.
setWorkflowOptions(
  () => ({
    versioningBehavior: workflowInfo().currentDeploymentVersion?.deploymentName ? 'PINNED' : undefined,
  }),
  consistentChatIntent,
);
