/**
 * Ids given to `patched()` for changes that alter the commands a workflow emits. A history recorded
 * before a change replays on its old path; new executions take the new one. Never rename or reuse an
 * id; once no open run predates a change, its call becomes `deprecatePatch(id)` (README, "Design notes").
 */
export const PATCHES = {
  /**
   * With no storage queue in the config, storage activities go to the shared storage queue that
   * `worker` serves rather than to the workflow's own queue.
   */
  storageQueueDefault: 'storage-queue-default',
  /** A run tells a child the pause state it missed while being started. */
  lateChildGetsPause: 'late-child-gets-pause',
  /** A run returns only after its signal and update handlers have finished. */
  runWaitsForHandlers: 'run-waits-for-handlers',
  /** A `setConcurrency` signal whose argument is not a finite number is logged and ignored. */
  ignoreBadConcurrencySignal: 'ignore-bad-concurrency-signal',
  /** A storage batch is cut at `STORE_BATCH_BYTES` as well as at `STORE_BATCH` records. */
  storeBatchBytes: 'store-batch-bytes',
  /** An intent reports its progress to the run every so many finished dialogues. */
  intentReportsProgress: 'intent-reports-progress',
  /** The run keeps `paused` in its memo, so the workflow list tells paused runs from running ones. */
  runMemoPaused: 'run-memo-paused',
  /**
   * Intents schedule a few LLM activities beyond their share and tell the activities the run's bound,
   * which each worker enforces (src/activities/run-gate.ts); the run tells its intents when it changes.
   */
  workerGate: 'worker-gate',
  /** While LLM calls are still finishing, a storage batch waits up to `STORE_GROUP_MS` for more records. */
  storeGroupWindow: 'store-group-window',
  /** An intent reports its progress to the run at most once per 2 s (see `report-interval-5s`). */
  reportInterval: 'report-interval',
  /** The least time between an intent's progress reports goes from 2 s to `MIN_REPORT_INTERVAL_MS` (5 s). */
  reportInterval5s: 'report-interval-5s',
  /**
   * An intent reports as soon as it has started its last dialogue, and the run then leaves it out of the
   * concurrency shares: a share signal arriving while an intent completes fails that workflow task, and
   * the retry replays the intent's whole history (seconds at the end of every large run).
   */
  finishingIntents: 'finishing-intents',
  /**
   * An intent awaits a `condition()` only when it must wait (paused, no free slot) and settles each
   * dialogue in one async function: the SDK captures a stack trace for every promise workflow code
   * creates, and these were 11 of the 39 per dialogue.
   */
  leanDialogueLoop: 'lean-dialogue-loop',
} as const;
