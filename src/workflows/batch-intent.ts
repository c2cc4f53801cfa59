/**
 * One intent of a batch run (issue 25): its dialogues go through the provider's batch API at half
 * price, in waves: every skeleton request in batches → the usable skeletons' responses requests in
 * batches → each responses batch stored as it comes back. Failed, invalid and expired lines go into a
 * later batch of their stage, at most `maxAttempts` batches, then to failures.jsonl as in real time.
 *
 * A workflow type of its own, started by the run only for `mode: batch`, so the real-time intent's
 * histories replay unchanged. Payloads never enter history: the activities move files (src/activities/
 * batch-*.ts), the workflow sees batch ids, index ranges and counts. Polling is workflow timers, from
 * `pollInitialMs` doubling to `pollMaxMs`: a batch may wait for a day without a worker busy.
 */
import {
  type ActivityInterfaceFor,
  type ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { IntentId } from '../method/intents';
import { resolveAttributes } from '../method/attributes';
import { planDialogue } from '../method/plan';
import {
  BATCH_END_STATES,
  batchSettingsSchema,
  fromRanges,
  toRanges,
  type BatchCarry,
  type BatchLineFailure,
  type BatchPlanInput,
  type BatchProgress,
  type BatchSettings,
  type BatchStage,
  type BatchStatus,
  type IndexRanges,
  type PendingBatch,
} from '../run/batch';
import { HISTORY_BUDGET } from '../shared/constants';
import { intentProgressQuery, pauseSignal, resumeSignal } from '../run/messages';
import type { FailureRecord, IntentProgress, RunConfig } from '../run/schemas';
import { type Books, failureRecord, openBooks, progressOf, SYSTEMIC_FAILURES } from './intent/books';
import type { IntentInput } from './intent';
import { llmCallSettings, storageActivityOptions, storageQueueOf, storageSummary } from './intent/options';
import { progressReporter, type ProgressReporter } from './intent/reporter';
import { PATCHES } from './patches';
import { type Leftover, type RealtimeContext, runInRealTime } from './batch-realtime';

const FAILURE_BATCH = 100;
const ZERO_COUNTS = { total: 0, completed: 0, failed: 0 } as const;
const ENDED = new Set<string>(BATCH_END_STATES);

/**
 * Attempts of one batch activity: 1 s doubling to a minute between them, about a day in all, the
 * window a provider gives a batch. The worker's own faults do not retry at all (`Llm.LocalFault`), so
 * what this bounds is an unreachable provider: waited out for a day, as the batch itself would be,
 * rather than failing the intent (whose rerun would not find the batches this run created) in minutes.
 */
export const BATCH_ACTIVITY_ATTEMPTS = 1_450;

/**
 * Batch activities: the provider is slow to answer at times, and a retry finds what it created.
 * `bounded` (patch batch-bounded-retries): histories from before retried without end.
 */
function batchActivityOptions(config: RunConfig, bounded: boolean): ActivityOptions {
  return {
    startToCloseTimeout: '10 minutes',
    // The activities heartbeat while they upload and download: a dead worker's call is retried soon.
    heartbeatTimeout: config.timeouts.heartbeatMs,
    retry: {
      initialInterval: '1 second',
      maximumInterval: '1 minute',
      ...(bounded && { maximumAttempts: BATCH_ACTIVITY_ATTEMPTS }),
      nonRetryableErrorTypes: [...SYSTEMIC_FAILURES, 'Batch.NoOutputRoot', 'Storage.ForbiddenDirectory'],
    },
  };
}

interface Waves {
  config: RunConfig;
  acts: ActivityInterfaceFor<Activities>;
  intent: IntentId;
  settings: BatchSettings;
  books: Books;
  progress: BatchProgress;
  reporter: ProgressReporter;
  /** Batches not yet ended, with their stage: cancelled with the run. */
  open: Map<string, BatchStage>;
  /** Batches this intent asked the provider to cancel after a failed one. */
  cancelled: Set<string>;
  /** The last failure of each dialogue that has not succeeded (yet), with its stage. */
  failures: Map<number, BatchLineFailure & { stage: BatchStage }>;
  /** Hybrid runs: workflow time after which open batches are cancelled and the rest runs in real time. */
  deadlineAt?: number;
  /** The deadline has passed: no more batches. */
  late: boolean;
  /** Epoch seconds a minute before this intent started (clocks differ): none of its batches is older. */
  startedAt: number;
  /** Which patched paths this execution takes (see `pathsOf`). */
  paths: Paths;
  /** A batch failed validation: the wave's other batches are being cancelled, then this ends the intent. */
  failure?: ApplicationFailure;
  /** The attempt whose batches are out: what continue-as-new carries. */
  wave?: Wave;
  /** Skeletons left for real time, kept through the responses stage. */
  skeletonLeft: number[];
  /** The history is full: pollers stop at their next look and the intent continues as new. */
  handover: boolean;
}

/** One attempt of a stage: its requests, what is known of them, and its batches not taken in yet. */
interface Wave {
  stage: BatchStage;
  attempt: number;
  todo: number[];
  ok: Set<number>;
  final: Set<number>;
  pending: Map<string, PendingBatch>;
}

/** A batch intent's input: after continue-as-new, with the wave in flight and the failures so far. */
export interface BatchIntentInput extends IntentInput {
  batch?: BatchCarry;
}

/** Thrown by a stage once every poller has stopped for continue-as-new. */
class HandOver extends Error {}

/** The patched paths of the batch intent, asked at its start so every new history carries their markers. */
interface Paths {
  /** A failed batch cancels the wave's other open batches and keeps what they finished. */
  cancelOnFailure: boolean;
  /** Staged files are removed once stored, and the intent's staging directory when it completes. */
  clearStaging: boolean;
  /** Continues as new, carrying its open batches, when its history is full. */
  continueAsNew: boolean;
}

function pathsOf(): Paths {
  return {
    cancelOnFailure: patched(PATCHES.batchFailureCancelsOthers),
    clearStaging: patched(PATCHES.batchClearsStaging),
    continueAsNew: patched(PATCHES.batchContinueAsNew),
  };
}

export async function consistentChatBatchIntent(input: BatchIntentInput): Promise<IntentProgress> {
  const { config, intent, batch: carry } = input;
  const total = config.numDialogsPerIntent;
  const books = openBooks(input.state, config.paused);
  const live = { concurrency: input.concurrency, inFlight: 0 };
  // Batches still waiting are counted again as their pollers start.
  const batches: BatchProgress = carry
    ? { ...carry.progress, waiting: 0 }
    : {
        batches: 0,
        waiting: 0,
        requests: { total: 0, completed: 0, failed: 0 },
        calls: 0,
        tokens: { prompt: 0, completion: 0 },
      };
  let status: IntentProgress['status'] = 'running';
  const progress = (s: IntentProgress['status']) => ({
    ...progressOf(books, intent, total, live, s),
    batch: batches,
  });
  setHandler(intentProgressQuery, () => progress(status));
  setHandler(pauseSignal, () => void (books.paused = true));
  setHandler(resumeSignal, () => void (books.paused = false));
  const waves: Waves = {
    config,
    acts: proxyActivities<Activities>(batchActivityOptions(config, patched(PATCHES.batchBoundedRetries))),
    paths: pathsOf(),
    intent,
    settings: batchSettingsSchema.parse(config.batch ?? {}),
    books,
    progress: batches,
    reporter: progressReporter(books, total, progress),
    open: new Map(),
    cancelled: new Set(),
    failures: new Map(carry?.failures.map((f) => [f.index, f])),
    late: carry?.late ?? false,
    startedAt: carry?.startedAt ?? Math.floor(workflowInfo().runStartTime.getTime() / 1000) - 60,
    skeletonLeft: fromRanges(carry?.skeletonLeft ?? []),
    handover: false,
  };
  const deadlineMs = waves.settings.deadlineMs;
  if (carry) waves.deadlineAt = carry.deadlineAt;
  else if (deadlineMs !== undefined) waves.deadlineAt = Date.now() + deadlineMs;
  waves.reporter.showDetails();
  try {
    books.nextIndex = total;
    waves.reporter.lastStarted();
    const leftovers = await batchStages(waves, total, carry);
    if (leftovers.length > 0) await runInRealTime(realtime(waves, input), leftovers);
    await recordFailures(waves);
    if (waves.paths.clearStaging) await waves.acts.clearStaging({ outDir: config.outDir, intent });
  } catch (error) {
    if (!(error instanceof HandOver)) {
      if (isCancellation(error)) await CancellationScope.nonCancellable(() => cancelOpen(waves));
      throw error;
    }
    // The open batches and what is known go to the next run of the chain: nothing is submitted twice.
    books.continuedAsNew++;
    await continueAsNew<typeof consistentChatBatchIntent>({ ...input, state: books, batch: carryOf(waves) });
  }
  status = 'completed';
  return progress('completed');
}

/** Both stages in waves; returns the dialogues left for real time, from the stage each still needs. */
async function batchStages(w: Waves, total: number, carry?: BatchCarry): Promise<Leftover[]> {
  let skeletonOk: IndexRanges = [];
  if (carry?.stage !== 'responses') {
    const skeletons = await stageWaves(w, 'skeleton', [[0, total]], carry);
    w.skeletonLeft = skeletons.left;
    skeletonOk = skeletons.ok;
  }
  const leftovers: Leftover[] = w.skeletonLeft.map((index) => ({ index, from: 'skeleton' }));
  if (w.late && carry?.stage !== 'responses')
    leftovers.push(...fromRanges(skeletonOk).map((index) => ({ index, from: 'responses' as const })));
  else {
    const responses = await stageWaves(w, 'responses', skeletonOk, carry);
    leftovers.push(...responses.left.map((index) => ({ index, from: 'responses' as const })));
  }
  return leftovers;
}

/** What the next run of the chain needs: the wave in flight, the failures, the counts and times. */
function carryOf(w: Waves): BatchCarry {
  const wave = w.wave!;
  return {
    stage: wave.stage,
    attempt: wave.attempt,
    todo: toRanges(wave.todo),
    ok: toRanges([...wave.ok]),
    final: toRanges([...wave.final]),
    pending: [...wave.pending.values()],
    skeletonLeft: toRanges(w.skeletonLeft),
    failures: [...w.failures.values()],
    progress: w.progress,
    ...(w.deadlineAt !== undefined && { deadlineAt: w.deadlineAt }),
    late: w.late,
    startedAt: w.startedAt,
  };
}

/** The intent's own history budget, the real-time intent's (HISTORY_BUDGET), or the server's hint. */
function historyFull(): boolean {
  const info = workflowInfo();
  return (
    info.continueAsNewSuggested ||
    info.historyLength > HISTORY_BUDGET.maxEvents ||
    info.historySize > HISTORY_BUDGET.maxBytes
  );
}

/**
 * Runs a stage's requests through batches until each has a usable reply or its attempts are spent;
 * returns the indexes that have one, and those left for real time: past a hybrid run's deadline, or
 * a wave smaller than `minRequests`. Responses batches are stored as each comes back. `carry` of this
 * stage: the attempt whose batches are out is awaited first, as continue-as-new left it.
 */
async function stageWaves(
  w: Waves,
  stage: BatchStage,
  ranges: IndexRanges,
  carry?: BatchCarry,
): Promise<{ ok: IndexRanges; left: number[] }> {
  const resumed = carry?.stage === stage ? carry : undefined;
  let todo = fromRanges(resumed ? resumed.todo : ranges);
  const ok = new Set<number>(resumed ? fromRanges(resumed.ok) : []);
  const small = () => todo.length > 0 && todo.length < w.settings.minRequests;
  let attempt = resumed?.attempt ?? 0;
  let pending = resumed?.pending;
  let final = new Set<number>(resumed ? fromRanges(resumed.final) : []);
  for (;;) {
    if (!pending) {
      attempt++;
      if (attempt > w.settings.maxAttempts || todo.length === 0 || w.late || small()) break;
      pending = await submit(w, stage, attempt, todo);
      final = new Set();
    }
    const wave: Wave = { stage, attempt, todo, ok, final, pending: new Map(pending.map((p) => [p.id, p])) };
    w.wave = wave;
    await Promise.all(
      pending.map(async (batch) => {
        const collected = await awaitBatch(w, stage, batch);
        // Handed over: the batch stays pending for the next run of the chain.
        if (!collected) return;
        wave.pending.delete(batch.id);
        for (const i of collected.ok) ok.add(i);
        for (const i of collected.final) final.add(i);
      }),
    );
    if (w.failure) throw w.failure;
    if (w.handover) throw new HandOver('history full: continue as new');
    pending = undefined;
    // A line neither answered nor failed (a cancelled batch's unstarted lines) goes again too.
    todo = todo.filter((i) => !ok.has(i) && !final.has(i));
    for (const i of todo)
      if (!w.failures.has(i))
        w.failures.set(i, {
          index: i,
          type: 'Batch.LineMissing',
          reason: 'the batch ended without this request',
          final: false,
          stage,
        });
  }
  w.wave = undefined;
  return { ok: toRanges([...ok]), left: w.late || small() ? todo : [] };
}

/** Submits one attempt's requests (exactly once per chunk); returns its batches, nothing shown yet. */
async function submit(w: Waves, stage: BatchStage, attempt: number, todo: number[]): Promise<PendingBatch[]> {
  if (w.books.paused) await condition(() => !w.books.paused);
  const { batches } = await w.acts.submitBatch({
    outDir: w.config.outDir,
    runId: w.config.runId,
    intent: w.intent,
    stage,
    chunk: `${stage}.a${attempt}`,
    indexes: toRanges(todo),
    numTurns: w.config.numTurnsPerDialog,
    llm: llmCallSettings(w.config, stage, undefined, false),
    limits: w.settings,
    plan: planInput(w.config),
    notBefore: w.startedAt,
  });
  w.progress.batches += batches.length;
  return batches.map(({ id }) => ({ id, seen: { ...ZERO_COUNTS } }));
}

/** Waits for one batch to end, takes in its lines, and stores a responses batch's dialogues. */
async function awaitBatch(
  w: Waves,
  stage: BatchStage,
  batch: PendingBatch,
): Promise<{ ok: number[]; final: number[] } | undefined> {
  const batchId = batch.id;
  w.open.set(batchId, stage);
  w.progress.waiting++;
  const ended = await poll(w, batch);
  w.progress.waiting--;
  w.open.delete(batchId);
  if (!ended) return undefined;
  if (ended.status === 'failed') {
    const failure = ApplicationFailure.nonRetryable(
      `batch ${batchId} (${stage}) failed validation: ${ended.error ?? 'no reason given'}`,
      'Batch.Validation',
    );
    if (!w.paths.cancelOnFailure) throw failure;
    // The wave's other batches end as cancelled and are taken in (what they finished is kept); the
    // wave then throws the first failure.
    w.failure ??= failure;
    await cancelStillOpen(w);
    return { ok: [], final: [] };
  }
  return takeIn(w, stage, batchId);
}

/** Cancels every open batch not cancelled yet (their pollers then see them end). */
async function cancelStillOpen(w: Waves): Promise<void> {
  const open = [...w.open.keys()].filter((id) => !w.cancelled.has(id));
  for (const id of open) w.cancelled.add(id);
  await Promise.all(open.map((batchId) => w.acts.cancelBatch({ batchId })));
}

async function takeIn(
  w: Waves,
  stage: BatchStage,
  batchId: string,
): Promise<{ ok: number[]; final: number[] }> {
  const got = await w.acts.collectBatch({
    outDir: w.config.outDir,
    runId: w.config.runId,
    intent: w.intent,
    stage,
    batchId,
    numTurns: w.config.numTurnsPerDialog,
    plan: planInput(w.config),
  });
  countUsage(w, stage, got.usage);
  const ok = fromRanges(got.succeeded);
  for (const i of ok) w.failures.delete(i);
  for (const f of got.failed) w.failures.set(f.index, { ...f, stage });
  if (stage === 'responses' && ok.length > 0) await store(w, batchId, ok);
  return { ok, final: got.failed.filter((f) => f.final).map((f) => f.index) };
}

/**
 * Looks at the batch, then waits on a timer, the wait doubling up to `pollMaxMs`. Returns its end, or
 * nothing once the intent hands over to continue-as-new (`batch.seen` then carries what was shown).
 */
async function poll(w: Waves, batch: PendingBatch, mayHandOver = true): Promise<BatchStatus | undefined> {
  const batchId = batch.id;
  let wait = w.settings.pollInitialMs;
  let cancelled = false;
  for (;;) {
    const status = await w.acts.batchStatus({ batchId });
    // The provider's request counts, as the intent's progress shows them.
    for (const k of ['total', 'completed', 'failed'] as const)
      w.progress.requests[k] += status.counts[k] - batch.seen[k];
    batch.seen = status.counts;
    if (ENDED.has(status.status)) return status;
    const left = w.deadlineAt === undefined ? Infinity : w.deadlineAt - Date.now();
    if (left <= 0 && !cancelled) {
      // Past a hybrid run's deadline: what this batch finished is kept, the rest runs in real time.
      w.late = true;
      cancelled = true;
      await w.acts.cancelBatch({ batchId });
      continue;
    }
    const delay = left > 0 ? Math.min(wait, left) : wait;
    if (!w.paths.continueAsNew || !mayHandOver) await sleep(delay);
    else {
      if (historyFull()) w.handover = true;
      // Every poller stops at once when one finds the history full: the wave then hands over.
      if (w.handover || (await condition(() => w.handover, delay))) return undefined;
    }
    wait = Math.min(wait * 2, w.settings.pollMaxMs);
  }
}

function countUsage(
  w: Waves,
  stage: BatchStage,
  usage: { calls: number; promptTokens: number; completionTokens: number },
) {
  const { books } = w;
  books.llmCalls += usage.calls;
  books.promptTokens += usage.promptTokens;
  books.completionTokens += usage.completionTokens;
  books.stageTokens[stage].prompt += usage.promptTokens;
  books.stageTokens[stage].completion += usage.completionTokens;
  w.progress.calls += usage.calls;
  w.progress.tokens.prompt += usage.promptTokens;
  w.progress.tokens.completion += usage.completionTokens;
  w.reporter.showDetails();
}

async function store(w: Waves, batchId: string, ok: number[]): Promise<void> {
  const options = storageActivityOptions(storageQueueOf(w.config));
  const ids = ok.map((i) => `${w.config.runId}.${w.intent}.${i}`);
  const result = await proxyActivities<Activities>(options).storeBatchDialogues.executeWithOptions(
    storageSummary(options, 'store', 'dialogue', ids),
    [
      {
        outDir: w.config.outDir,
        runId: w.config.runId,
        intent: w.intent,
        batchId,
        model: w.config.model,
        plan: planInput(w.config),
      },
    ],
  );
  const duplicates = result.duplicateIds?.length ?? 0;
  w.books.written += result.written;
  w.books.duplicates += duplicates;
  // Present but not named a duplicate: written by an earlier attempt of this very activity.
  w.books.written += result.duplicates - duplicates;
  for (const bad of result.invalid) {
    const index = Number(bad.id.slice(bad.id.lastIndexOf('.') + 1));
    w.failures.set(index, {
      index,
      type: 'Storage.InvalidRecord',
      reason: bad.reason,
      final: true,
      stage: 'responses',
    });
  }
  w.reporter.finished();
  if (w.paths.clearStaging)
    await w.acts.clearStaging({
      outDir: w.config.outDir,
      intent: w.intent,
      batch: { stage: 'responses', batchId },
    });
}

/** What failed for good: failures.jsonl, in batches, as the real-time intent records them. */
async function recordFailures(w: Waves): Promise<void> {
  const options = storageActivityOptions(storageQueueOf(w.config));
  const storage = proxyActivities<Activities>(options);
  const records: FailureRecord[] = [...w.failures.values()]
    .sort((a, b) => a.index - b.index)
    .map((f) => failureRecord(w.config, planOf(w, f.index), f.stage, f.type, f.reason));
  for (let i = 0; i < records.length; i += FAILURE_BATCH) {
    const batch = records.slice(i, i + FAILURE_BATCH);
    await storage.storeFailures.executeWithOptions(
      storageSummary(
        options,
        'record',
        'failure',
        batch.map((f) => f.id),
      ),
      [{ outDir: w.config.outDir, failures: batch }],
    );
    w.books.failed += batch.length;
    w.reporter.finished();
  }
}

/** Cancelled: the open batches are cancelled too, and the responses they finished are stored. */
async function cancelOpen(w: Waves): Promise<void> {
  const open = [...w.open.entries()];
  await Promise.all(open.map(([batchId]) => w.acts.cancelBatch({ batchId })));
  await Promise.all(
    open
      .filter(([, stage]) => stage === 'responses')
      .map(async ([batchId]) => {
        await poll(w, { id: batchId, seen: w.wave?.pending.get(batchId)?.seen ?? { ...ZERO_COUNTS } }, false);
        await takeIn(w, 'responses', batchId);
      }),
  );
}

function planInput(config: RunConfig): BatchPlanInput {
  return {
    seed: config.seed ?? config.runId,
    ...(config.taxonomy && { taxonomy: config.taxonomy }),
    ...(config.prompts && { prompts: config.prompts }),
    ...(config.attributes && { attributes: resolveAttributes(config.attributes) }),
  };
}

function planOf(w: Waves, index: number) {
  return planDialogue({
    runId: w.config.runId,
    seed: w.config.seed ?? w.config.runId,
    intent: w.intent,
    index,
    taxonomy: w.config.taxonomy,
    attributes: resolveAttributes(w.config.attributes),
  });
}

/** What the real-time fallback needs of the intent: its books, its share of calls and its failures. */
function realtime(w: Waves, input: IntentInput): RealtimeContext {
  return {
    config: w.config,
    intent: w.intent,
    books: w.books,
    concurrency: Math.max(1, input.concurrency),
    runConcurrency: input.runConcurrency ?? w.config.concurrency,
    planOf: (index) => planOf(w, index),
    stagedSkeleton: (index) => w.acts.stagedSkeleton({ outDir: w.config.outDir, intent: w.intent, index }),
    failed: (index, stage, type, reason) => {
      w.failures.set(index, { index, type, reason, final: true, stage });
      w.reporter.finished();
    },
    succeeded: (index) => {
      w.failures.delete(index);
      w.reporter.finished();
    },
  };
}
