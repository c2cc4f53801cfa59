/**
 * Ids given to `patched()` for changes that alter the commands a workflow emits. A history recorded
 * before a change replays on its old path; new executions take the new one. Never rename or reuse an
 * id (README, "Design notes").
 *
 * The way out, the same for every id: each is needed only by runs started before its change, and every
 * change so far landed within version 0.1.0 (on 23 Nov 2026, commit named per id), so the oldest
 * resumable version that still needs any of them is 0.1.0 from before that commit. Once the oldest
 * version a run may be resumed with is a release after the change (no open run predates it):
 *   1. replace `patched(id)` by `deprecatePatch(id)` and keep only the new path, for one release, so
 *      runs started with the marker still replay;
 *   2. then drop the call, the id, and the committed histories recorded without the marker.
 * Until then both paths stay, and both stay replayed by test/replay.
 */
export const PATCHES = {
  /**
   * With no storage queue in the config, storage activities go to the shared storage queue that
   * `worker` serves rather than to the workflow's own queue. Since 6f9d775.
   */
  storageQueueDefault: 'storage-queue-default',
  /**
   * A run tells a child the pause state it missed while being started. Since 8e0c173; its new path
   * is replayed by the `late-child-pause` histories.
   */
  lateChildGetsPause: 'late-child-gets-pause',
  /** A run returns only after its signal and update handlers have finished. Since 8e0c173. */
  runWaitsForHandlers: 'run-waits-for-handlers',
  /** A `setConcurrency` signal whose argument is not a finite number is logged and ignored. Since 8e0c173. */
  ignoreBadConcurrencySignal: 'ignore-bad-concurrency-signal',
  /**
   * A storage batch is cut at `STORE_BATCH_BYTES` as well as at `STORE_BATCH` records. Since 66a78ce;
   * its new path has no committed history: one that takes it carries over 1 MiB of records twice (the
   * replies and the storage input), and a recording of 80 long dialogues came to 7 MB, past the
   * client's 4 MB history fetch. test/workflow/store-batch.test.ts runs the path.
   */
  storeBatchBytes: 'store-batch-bytes',
  /** An intent reports its progress to the run every so many finished dialogues. Since 5fa1ae1. */
  intentReportsProgress: 'intent-reports-progress',
  /** The run keeps `paused` in its memo, so the workflow list tells paused runs from running ones. Since 5fa1ae1. */
  runMemoPaused: 'run-memo-paused',
  /**
   * Intents schedule a few LLM activities beyond their share and tell the activities the run's bound,
   * which each worker enforces (src/activities/run-gate.ts); the run tells its intents when it changes.
   * Since adc60e2.
   */
  workerGate: 'worker-gate',
  /**
   * While LLM calls are still finishing, a storage batch waits up to `STORE_GROUP_MS` for more records.
   * Since 1d62975.
   */
  storeGroupWindow: 'store-group-window',
  /** An intent reports its progress to the run at most once per 2 s (see `report-interval-5s`). Since 1361685. */
  reportInterval: 'report-interval',
  /**
   * The least time between an intent's progress reports goes from 2 s to `MIN_REPORT_INTERVAL_MS` (5 s).
   * Since 61d5481; `report-interval` can go in the same release as this one (both guard one branch).
   */
  reportInterval5s: 'report-interval-5s',
  /**
   * An intent reports as soon as it has started its last dialogue, and the run then leaves it out of the
   * concurrency shares: a share signal arriving while an intent completes fails that workflow task, and
   * the retry replays the intent's whole history (seconds at the end of every large run). Since 47c3eb4.
   */
  finishingIntents: 'finishing-intents',
  /**
   * An intent awaits a `condition()` only when it must wait (paused, no free slot) and settles each
   * dialogue in one async function: the SDK captures a stack trace for every promise workflow code
   * creates, and these were 11 of the 39 per dialogue. Since 6d6235f.
   */
  leanDialogueLoop: 'lean-dialogue-loop',
  /**
   * A run whose input asks for topic expansion grows each intent's topics into a tree before starting
   * its child (src/workflows/topics.ts), which then plans over the leaves. Runs without `expand` in their
   * input never reach the check. Since issue 22's topics stage.
   */
  topicExpansion: 'topic-expansion',
  /**
   * The run asks the storage queue to open its output directory before starting any intent, so a
   * refused directory fails it before the first LLM call (src/workflows/storage-check.ts).
   */
  storageCheckFirst: 'storage-check-first',
  /**
   * A finished run's last step has the storage queue write summary.json, and run.json and the method
   * copies when no client wrote them (src/workflows/run-files.ts), whoever started the run (issue 27
   * item 9).
   */
  runWritesFiles: 'run-writes-files',
  /**
   * A run with a judge scores the calibration set with its judge model before starting any intent
   * (src/workflows/calibration.ts), unless its input says `judge.calibrate: false`; runs without a
   * judge never reach the check. Since issue 23's run-start calibration.
   */
  judgeCalibration: 'judge-calibration',
} as const;
