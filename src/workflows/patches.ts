/**
 * Ids given to `patched()` for changes that alter the commands a workflow emits. A history recorded
 * before a change replays on its old path; new executions take the new one. Never rename or reuse an
 * id (README, "Design notes").
 *
 * The way out, the same three steps for every id; each id's note says what is particular to it.
 *   0. Wait: an id is needed only by runs started before its change. Every change so far landed within
 *      version 0.1.0 (commit named per id), so the oldest resumable version to wait for is the first
 *      release after 0.1.0: once the oldest version a run may be resumed with is that release (no open
 *      run predates the change), go on.
 *   1. Replace `patched(id)` by `deprecatePatch(id)` and keep only the new path. Histories that took the
 *      old path cannot replay any more: the replay test names them; re-record their scenario
 *      (test/replay/record.ts) or delete them. Ship that for one release, so runs started with the
 *      marker still replay.
 *   2. Once the oldest resumable version is the release of step 1, drop the call and the id, and
 *      re-record the histories that still carry its marker.
 * Until step 1, both paths stay, and both stay replayed by test/replay.
 */
/**
 * The oldest package version whose runs this one resumes. Raising it (step 2 of the way out above) is
 * what lets a patch go: `generate` refuses a run recorded by an older version in one line naming the
 * version that finishes it, before any work starts. Every run so far was started by 0.1.0.
 */
export const OLDEST_RESUMABLE_VERSION = '0.1.0';

export const PATCHES = {
  /**
   * With no storage queue in the config, storage activities go to the shared storage queue that
   * `worker` serves rather than to the workflow's own queue. Since 6f9d775.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in intent/options.ts, then removal.
   */
  storageQueueDefault: 'storage-queue-default',
  /**
   * A run tells a child the pause state it missed while being started. Since 8e0c173; its new path
   * is replayed by the `late-child-pause` histories.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts, then removal.
   */
  lateChildGetsPause: 'late-child-gets-pause',
  /**
   * A run returns only after its signal and update handlers have finished. Since 8e0c173.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts, then removal.
   */
  runWaitsForHandlers: 'run-waits-for-handlers',
  /**
   * A `setConcurrency` signal whose argument is not a finite number is logged and ignored. Since 8e0c173.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts and intent/workflow.ts
   * together, then removal.
   */
  ignoreBadConcurrencySignal: 'ignore-bad-concurrency-signal',
  /**
   * A storage batch is cut at `STORE_BATCH_BYTES` as well as at `STORE_BATCH` records. Since 66a78ce;
   * its new path has no committed history: one that takes it carries over 1 MiB of records twice (the
   * replies and the storage input), and a recording of 80 long dialogues came to 7 MB, past the
   * client's 4 MB history fetch. test/workflow/store-batch.test.ts runs the path.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in intent/storage.ts (with
   * no history of its new path, store-batch.test.ts is what runs it), then removal.
   */
  storeBatchBytes: 'store-batch-bytes',
  /**
   * An intent reports its progress to the run every so many finished dialogues. Since 5fa1ae1.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in intent/reporter.ts, then removal.
   */
  intentReportsProgress: 'intent-reports-progress',
  /**
   * The run keeps `paused` in its memo, so the workflow list tells paused runs from running ones. Since 5fa1ae1.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts, then removal.
   */
  runMemoPaused: 'run-memo-paused',
  /**
   * Intents schedule a few LLM activities beyond their share and tell the activities the run's bound,
   * which each worker enforces (src/activities/run-gate.ts); the run tells its intents when it changes.
   * Since adc60e2.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts and intent/workflow.ts
   * together (a gated run's intents are gated), then removal.
   */
  workerGate: 'worker-gate',
  /**
   * While LLM calls are still finishing, a storage batch waits up to `STORE_GROUP_MS` for more records.
   * Since 1d62975.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in intent/workflow.ts, then removal.
   */
  storeGroupWindow: 'store-group-window',
  /**
   * An intent reports its progress to the run at most once per 2 s (see `report-interval-5s`). Since 1361685.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in intent/reporter.ts
   * with `report-interval-5s` (they guard one branch), then removal.
   */
  reportInterval: 'report-interval',
  /**
   * The least time between an intent's progress reports goes from 2 s to `MIN_REPORT_INTERVAL_MS` (5 s).
   * Since 61d5481; `report-interval` can go in the same release as this one (both guard one branch).
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in intent/reporter.ts
   * with `report-interval`, then removal.
   */
  reportInterval5s: 'report-interval-5s',
  /**
   * An intent reports as soon as it has started its last dialogue, and the run then leaves it out of the
   * concurrency shares: a share signal arriving while an intent completes fails that workflow task, and
   * the retry replays the intent's whole history (seconds at the end of every large run). Since 47c3eb4.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts and intent/reporter.ts
   * together, then removal.
   */
  finishingIntents: 'finishing-intents',
  /**
   * An intent awaits a `condition()` only when it must wait (paused, no free slot) and settles each
   * dialogue in one async function: the SDK captures a stack trace for every promise workflow code
   * creates, and these were 11 of the 39 per dialogue. Since 6d6235f.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in intent/workflow.ts, then removal.
   */
  leanDialogueLoop: 'lean-dialogue-loop',
  /**
   * A run whose input asks for topic expansion grows each intent's topics into a tree before starting
   * its child (src/workflows/topics.ts), which then plans over the leaves. Runs without `expand` in their
   * input never reach the check. Since a1c5dc2 (issue 22's topics stage).
   * Way out: no version to wait for: a run started before a1c5dc2 has no `expand` in its (strict) input,
   * so no history reaches the call without the marker; `deprecatePatch` in run.ts in any release, then
   * removal a release later.
   */
  topicExpansion: 'topic-expansion',
  /**
   * Topic expansion spreads a run's missing leaves over as many parents as about one call per 100
   * dialogues allows (`subtopicsToAsk` in src/method/expansion.ts), where every call asked
   * `subtopicsPerCall` before, so that smaller runs no longer grow a few seeds 20-fold. Asked where an
   * intent starts expanding; histories that expanded without it keep full-size calls.
   * Way out: oldest resumable > the release that adds it, then `deprecatePatch` in topics.ts, then removal.
   */
  expansionSpread: 'expansion-spread',
  /**
   * The run asks the storage queue to open its output directory before starting any intent, so a
   * refused directory fails it before the first LLM call (src/workflows/storage-check.ts).
   * Since 3368968. Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts, then removal.
   */
  storageCheckFirst: 'storage-check-first',
  /**
   * A finished run's last step has the storage queue write summary.json, and run.json and the method
   * copies when no client wrote them (src/workflows/run-files.ts), whoever started the run (issue 27
   * item 9).
   * Since 27fba6f. Way out: oldest resumable > 0.1.0, then `deprecatePatch` in run.ts, then removal.
   */
  runWritesFiles: 'run-writes-files',
  /**
   * A run with a judge scores the calibration set with its judge model before starting any intent
   * (src/workflows/calibration.ts), unless its input says `judge.calibrate: false`; runs without a
   * judge never reach the check. Since issue 23's run-start calibration.
   */
  judgeCalibration: 'judge-calibration',
  /**
   * The batch intent's activities retry at most `BATCH_ACTIVITY_ATTEMPTS` times (about a day of an
   * unreachable provider), so a fault that no retry fixes ends instead of retrying for ever. Called at the batch intent's start: every new batch history carries the marker (issue 25).
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in batch-intent.ts, then removal.
   */
  batchBoundedRetries: 'batch-bounded-retries',
  /**
   * A batch that fails validation has the batch intent cancel the wave's other open batches and take in
   * what they finished before it fails with that batch's error (before: it failed at once, leaving them
   * running at the provider). Asked at the batch intent's start (issue 25).
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in batch-intent.ts, then removal.
   */
  batchFailureCancelsOthers: 'batch-failure-cancels-others',
  /**
   * The batch intent removes a responses batch's staged replies once its dialogues are stored, and its
   * `.batch/<intent>/` directory when it completes (activity `clearStaging`). Asked at the batch
   * intent's start (issue 25).
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in batch-intent.ts, then removal.
   */
  batchClearsStaging: 'batch-clears-staging',
  /**
   * The batch intent continues as new when its history is full (the real-time intent's budget,
   * HISTORY_BUDGET, or the server's suggestion), carrying its open batches, what is known of the stage
   * and its failures; its pollers wait on `condition` so they stop at once. Asked at the batch intent's
   * start (issue 25); its new path is replayed by the `batch-continue-as-new` histories.
   * Way out: oldest resumable > 0.1.0, then `deprecatePatch` in batch-intent.ts, then removal.
   */
  batchContinueAsNew: 'batch-continue-as-new',
} as const;
