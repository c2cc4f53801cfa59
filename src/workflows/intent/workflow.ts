/**
 * One intent of a run: plans each dialogue from the seed, drives its stages (skeleton → responses →
 * store, stages.ts) for a sliding window of dialogues, and continues as new before its history grows
 * past the budget. Its accounting is books.ts, its storage storage.ts, its reports reporter.ts.
 */
import {
  condition,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { IntentId } from '../../method/intents';
import {
  intentProgressQuery,
  pauseSignal,
  resumeSignal,
  setConcurrencySignal,
  setRunConcurrencySignal,
} from '../../run/messages';
import type { DialoguePlan, IntentProgress, RunConfig } from '../../run/schemas';
import { hasRoomForAnother, MAX_WINDOW_PER_WORKFLOW, scheduleAhead } from '../budget';
import { PATCHES } from '../patches';
import {
  abortedFailures,
  type Books,
  type IntentState,
  type Live,
  openBooks,
  planNext,
  progressOf,
  SystemicWatch,
} from './books';
import { type DialogueContext, runDialogue, settleDialogue } from './dialogue';
import { llmActivityOptions } from './options';
import { type ProgressReporter, progressReporter } from './reporter';
import { intentStorage, STORE_BATCH } from './storage';
import { dialogueStages } from './stages';

export { MAX_PROGRESS_REPORTS, MIN_REPORT_INTERVAL_MS } from './reporter';

const FAILURE_BATCH = 100;

export interface IntentInput {
  config: RunConfig;
  intent: IntentId;
  /** This intent's share of the run's LLM calls in flight. */
  concurrency: number;
  /** The run's whole bound, which workers enforce across its intents. Absent from runs before the gate. */
  runConcurrency?: number;
  state?: IntentState;
}

/** The intent's numbers that change as dialogues start and finish; not carried across continue-as-new. */
interface Window extends Live {
  /** Dialogues started and not yet finished, storage included: what the drain and the budget count. */
  active: number;
  /** Dialogues finished by this run of the chain: what the history budget counts. */
  finishedThisRun: number;
}

export async function consistentChatIntent(input: IntentInput): Promise<IntentProgress> {
  const { config, intent } = input;
  const total = config.numDialogsPerIntent;
  const books = openBooks(input.state, config.paused);
  // `inFlight` counts dialogues in an LLM stage: what `concurrency` bounds.
  const live: Window = { concurrency: input.concurrency, inFlight: 0, active: 0, finishedThisRun: 0 };
  // Histories from before the worker gate keep their window of `concurrency` and ungated activities.
  const gated = patched(PATCHES.workerGate);
  if (gated) books.runConcurrency = input.runConcurrency ?? books.runConcurrency ?? config.concurrency;
  const groupCommit = patched(PATCHES.storeGroupWindow);
  const lean = patched(PATCHES.leanDialogueLoop);
  const llm = proxyActivities<Activities>(llmActivityOptions(config));
  const storage = intentStorage(config, groupCommit, () => live.inFlight);

  let status: IntentProgress['status'] = 'running';
  const progress = (s: IntentProgress['status']) => progressOf(books, intent, total, live, s);
  setHandler(intentProgressQuery, () => progress(status));
  const reporter = progressReporter(books, total, progress);
  reporter.showDetails();
  listenToControls(books, live);

  const dialogues: DialogueContext = {
    config,
    books,
    systemic: new SystemicWatch(),
    stages: dialogueStages({
      config,
      books,
      gated,
      llm,
      store: storage.store,
      counted: reporter.showDetails,
    }),
    mustWaitPause: () => !lean || books.paused,
    recordFailures: storage.recordFailures,
  };
  const fatal = await driveDialogues(input, books, live, {
    lean,
    // Dialogues this intent keeps in an LLM stage: its share, plus those waiting at the worker's gate.
    window: () => (gated ? live.concurrency + scheduleAhead(live.concurrency) : live.concurrency),
    reporter,
    start: (plan, releaseSlot, failed, settle) => {
      if (lean) void settleDialogue(dialogues, { plan }, releaseSlot, failed, settle);
      else void runDialogue(dialogues, { plan }, releaseSlot).catch(failed).finally(settle);
    },
    recordAborted: async () => {
      const batch = abortedFailures(books, config, intent, total, FAILURE_BATCH);
      await storage.recordFailures(batch);
      books.failed += batch.length;
      reporter.finished();
    },
  });
  if (fatal !== undefined) throw fatal;
  if (books.nextIndex < total) {
    books.continuedAsNew++;
    await makeContinueAsNewFunc<typeof consistentChatIntent>({ initialVersioningBehavior: 'AUTO_UPGRADE' })({
      config,
      intent,
      concurrency: live.concurrency,
      state: books,
    });
  }
  status = 'completed';
  return progress('completed');
}

/** Pause, resume and the concurrency signals: they change the books and the window. */
function listenToControls(books: Books, live: Live): void {
  setHandler(pauseSignal, () => void (books.paused = true));
  setHandler(resumeSignal, () => void (books.paused = false));
  setHandler(setConcurrencySignal, (n) => {
    // A bad argument (possible from `temporal workflow signal`) would stall the intent: drop it.
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      if (patched(PATCHES.ignoreBadConcurrencySignal)) {
        log.warn('setConcurrency signal ignored: its argument is not a number', { argument: String(n) });
        return;
      }
    }
    live.concurrency = Math.max(0, Math.min(MAX_WINDOW_PER_WORKFLOW, n));
  });
  setHandler(setRunConcurrencySignal, (n) => {
    if (typeof n === 'number' && Number.isFinite(n) && n >= 1) books.runConcurrency = Math.floor(n);
    else
      log.warn('setRunConcurrency signal ignored: its argument is not a positive number', {
        argument: String(n),
      });
  });
}

interface Driver {
  lean: boolean;
  window(): number;
  reporter: ProgressReporter;
  /** Starts one dialogue, not awaited: `failed` on an error that is not its LLM calls', `settle` at its end. */
  start(
    plan: DialoguePlan,
    releaseSlot: () => void,
    failed: (error: unknown) => void,
    settle: () => void,
  ): void;
  /** After a systemic failure: records the next batch of the plan as failed, without a call. */
  recordAborted(): Promise<void>;
}

/**
 * Keeps a window of dialogues going until the plan is done, the history budget is spent, a new worker
 * version waits, or a dialogue failed other than by its LLM calls; then waits for those still going.
 * Returns that failure, if any: the first one ends the intent.
 */
async function driveDialogues(
  input: IntentInput,
  books: Books,
  live: Window,
  d: Driver,
): Promise<Error | undefined> {
  const { config, intent } = input;
  const total = config.numDialogsPerIntent;
  const baseSize = workflowInfo().historySize;
  const reading = () => {
    const info = workflowInfo();
    return {
      historyLength: info.historyLength,
      historySize: info.historySize,
      continueAsNewSuggested: info.continueAsNewSuggested,
      finishedThisRun: live.finishedThisRun,
      baseSize,
    };
  };
  // A new current version of the workers (always false for an unversioned worker): start no new dialogue,
  // and continue as new on that version once those in flight are done.
  const upgradeWaiting = () => workflowInfo().targetWorkerDeploymentVersionChanged;
  let fatal: Error | undefined;
  let outOfRoom = false;
  const mayGoOn = () =>
    fatal !== undefined ||
    upgradeWaiting() ||
    books.abortReason !== undefined ||
    // Backpressure: if storage falls behind (its worker is down), stop paying for new dialogues.
    (!books.paused &&
      live.inFlight < d.window() &&
      live.active - live.inFlight < Math.max(d.window(), STORE_BATCH));
  /** A dialogue that failed other than by its LLM calls: the first such error ends the intent. */
  const failed = (error: unknown) =>
    void (fatal ??= error instanceof Error ? error : new Error(String(error)));
  while (books.nextIndex < total && !outOfRoom && fatal === undefined) {
    if (!d.lean || !mayGoOn()) await condition(mayGoOn);
    if (fatal !== undefined || upgradeWaiting()) break;
    if (books.abortReason) {
      await condition(() => live.active === 0);
      await d.recordAborted();
      outOfRoom = !hasRoomForAnother(reading(), 0);
      continue;
    }
    if (!hasRoomForAnother(reading(), live.active)) {
      outOfRoom = true;
      break;
    }
    const plan = planNext(books, config, intent);
    live.inFlight++;
    live.active++;
    if (books.nextIndex >= total) d.reporter.lastStarted();
    let holdsSlot = true;
    const releaseSlot = () => {
      if (holdsSlot) live.inFlight--;
      holdsSlot = false;
    };
    d.start(plan, releaseSlot, failed, () => {
      releaseSlot();
      live.active--;
      live.finishedThisRun++;
      d.reporter.finished();
    });
  }
  await condition(() => live.active === 0);
  return fatal;
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
