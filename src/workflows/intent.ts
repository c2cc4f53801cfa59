/**
 * One intent of a run: plans each dialogue from the seed, runs skeleton → responses → storage for a
 * sliding window of dialogues, and continues as new before its history grows past the budget.
 */
import {
  type ActivityOptions,
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  makeContinueAsNewFunc,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { defaultMaxTokens } from '../method/prompts';
import { INFO_FLOWS, INTENTS, type IntentId } from '../method/intents';
import { planDialogue } from '../method/plan';
import { toDialogueRecord } from '../method/dialogue';
import { intentProgressQuery, pauseSignal, resumeSignal, setConcurrencySignal } from '../shared/messages';
import type {
  DialoguePlan,
  DialogueRecord,
  FailureRecord,
  IntentProgress,
  LlmCallSettings,
  RunConfig,
  Usage,
} from '../shared/schemas';
import { hasRoomForAnother, MAX_WINDOW_PER_WORKFLOW } from './budget';

/** Failure types after which every further call would fail the same way. */
const SYSTEMIC_FAILURES = new Set(['Llm.Auth', 'Llm.BadRequest']);
/** Consecutive systemic failures, with no success between, that stop the intent's LLM calls. */
const SYSTEMIC_FAILURE_LIMIT = 3;
const FAILURE_BATCH = 100;
/** Most finished dialogues one storage activity carries (bounded to keep one payload well under 2 MB). */
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
  /** Set once a systemic failure stopped LLM calls: the rest of the plan is recorded as failed. */
  abortReason?: { type: string; message: string };
}

export interface IntentInput {
  config: RunConfig;
  intent: IntentId;
  /** This intent's share of the run's LLM calls in flight. */
  concurrency: number;
  state?: IntentState;
}

export async function consistentChatIntent(input: IntentInput): Promise<IntentProgress> {
  const { config, intent } = input;
  const total = config.numDialogsPerIntent;
  const seed = config.seed ?? config.runId;
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
  let concurrency = input.concurrency;
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
  const storage = proxyActivities<Activities>({
    taskQueue: config.storageTaskQueue ?? workflowInfo().taskQueue,
    startToCloseTimeout: '2 minutes',
    retry: {
      initialInterval: '1 second',
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: ['Storage.InvalidRecord'],
    },
  });

  const progress = (status: IntentProgress['status']): IntentProgress => ({
    intent,
    planned: total,
    written: state.written,
    failed: state.failed,
    inFlight,
    tokens: { prompt: state.promptTokens, completion: state.completionTokens },
    llmCalls: state.llmCalls,
    paused: state.paused,
    concurrency,
    status,
    continuedAsNew: state.continuedAsNew,
  });
  setHandler(intentProgressQuery, () => progress('running'));
  setHandler(pauseSignal, () => void (state.paused = true));
  setHandler(resumeSignal, () => void (state.paused = false));
  setHandler(
    setConcurrencySignal,
    (n) => void (concurrency = Math.max(0, Math.min(MAX_WINDOW_PER_WORKFLOW, n))),
  );

  const maxTokens = { ...defaultMaxTokens(config.numTurnsPerDialog), ...config.maxTokens };
  const settings = (stage: 'skeleton' | 'responses'): LlmCallSettings => ({
    runId: config.runId,
    idleMs: config.timeouts.idleMs,
    model: config.model,
    temperature: config.temperature,
    maxTokens: maxTokens[stage],
    responseFormat: config.responseFormat,
    rateLimit: config.rateLimit,
  });
  const count = (usage: Usage) => {
    state.llmCalls++;
    state.promptTokens += usage.promptTokens;
    state.completionTokens += usage.completionTokens;
  };
  const failureRecord = (
    plan: DialoguePlan,
    stage: FailureRecord['stage'],
    type: string,
    reason: string,
  ): FailureRecord => ({
    id: plan.id,
    intent: INTENTS[intent].name,
    info_flow: INFO_FLOWS[plan.infoFlow].name,
    topic: plan.topic,
    stage,
    type,
    reason,
    failed_at: new Date().toISOString(),
  });

  async function runDialogue(plan: DialoguePlan, releaseSlot: () => void): Promise<void> {
    let stage: FailureRecord['stage'] = 'skeleton';
    try {
      await condition(() => !state.paused);
      const { skeleton, usage } = await llm.generateSkeleton.executeWithOptions(summary('skeleton', plan), [
        { plan, numTurns: config.numTurnsPerDialog, llm: settings('skeleton') },
      ]);
      count(usage);
      stage = 'responses';
      await condition(() => !state.paused);
      const replies = await llm.generateResponses.executeWithOptions(summary('responses', plan), [
        { plan, skeleton, llm: settings('responses') },
      ]);
      count(replies.usage);
      consecutiveSystemic = 0;
      // Storing is no LLM call: the next dialogue may start while this one is written.
      releaseSlot();
      const record = toDialogueRecord({ plan, skeleton, responses: replies.responses, model: config.model });
      const problem = await store(record);
      if (problem) {
        await storage.storeFailures({
          outDir: config.outDir,
          failures: [failureRecord(plan, 'responses', 'Storage.InvalidRecord', problem)],
        });
        state.failed++;
        return;
      }
      state.written++;
    } catch (error) {
      if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
      // The LLM call failed within its attempt limit (or could never succeed): keep the plan and the reason.
      const cause = error.cause;
      const type = cause instanceof ApplicationFailure ? (cause.type ?? 'Error') : (cause?.name ?? 'Error');
      const reason = cause?.message ?? error.message;
      log.warn('dialogue failed', { id: plan.id, stage, type, reason });
      if (
        SYSTEMIC_FAILURES.has(type) &&
        ++consecutiveSystemic >= SYSTEMIC_FAILURE_LIMIT &&
        !state.abortReason
      ) {
        state.abortReason = { type, message: reason };
      }
      await storage.storeFailures({
        outDir: config.outDir,
        failures: [failureRecord(plan, stage, type, reason)],
      });
      state.failed++;
    }
  }

  /**
   * Group commit of finished dialogues: while one storage activity runs, the dialogues finishing meanwhile
   * queue up and go together in the next one. At low throughput that is one record per activity and no
   * delay; at high throughput it saves most storage activities. Resolves with a reason if the store
   * refused the record.
   */
  const storeQueue: {
    record: DialogueRecord;
    done: (problem: string | undefined) => void;
    fail: (e: unknown) => void;
  }[] = [];
  let storing = false;
  function store(record: DialogueRecord): Promise<string | undefined> {
    return new Promise((done, fail) => {
      storeQueue.push({ record, done, fail });
      if (!storing) void flushStore();
    });
  }
  async function flushStore(): Promise<void> {
    storing = true;
    while (storeQueue.length > 0) {
      const batch = storeQueue.splice(0, STORE_BATCH);
      try {
        const result = await storage.storeDialogues({
          outDir: config.outDir,
          records: batch.map((b) => b.record),
        });
        const invalid = new Map(result.invalid.map((i) => [i.id, i.reason]));
        for (const b of batch) b.done(invalid.get(b.record.id));
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
      const plan = planDialogue({ runId: config.runId, seed, intent, index: state.nextIndex++ });
      batch.push(
        failureRecord(
          plan,
          'skeleton',
          abort.type,
          `not attempted: the endpoint failed ${SYSTEMIC_FAILURE_LIMIT} calls in a row with ${abort.type}: ${abort.message}`,
        ),
      );
    }
    await storage.storeFailures({ outDir: config.outDir, failures: batch });
    state.failed += batch.length;
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
  while (state.nextIndex < total && !outOfRoom && fatal === undefined) {
    await condition(
      () =>
        fatal !== undefined ||
        upgradeWaiting() ||
        state.abortReason !== undefined ||
        // Backpressure: if storage falls behind (its worker is down), stop paying for new dialogues.
        (!state.paused && inFlight < concurrency && active - inFlight < Math.max(concurrency, STORE_BATCH)),
    );
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
    const plan = planDialogue({ runId: config.runId, seed, intent, index: state.nextIndex++ });
    inFlight++;
    active++;
    let holdsSlot = true;
    const releaseSlot = () => {
      if (holdsSlot) inFlight--;
      holdsSlot = false;
    };
    void runDialogue(plan, releaseSlot)
      .catch((error: unknown) => void (fatal ??= error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        releaseSlot();
        active--;
        finishedThisRun++;
      });
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
