/** Defaults and limits shared by the CLI, the client API, the workflows and the activities. */

/** @default 20, as in the reference operator. */
export const DEFAULT_DIALOGS_PER_INTENT = 20;
/** Upper bound on `numDialogsPerIntent`; histories stay bounded far beyond it through continue-as-new. */
export const MAX_DIALOGS_PER_INTENT = 1_000_000;
/** @default 6, as in the reference operator. */
export const DEFAULT_TURNS_PER_DIALOG = 6;
export const MIN_TURNS_PER_DIALOG = 1;
export const MAX_TURNS_PER_DIALOG = 20;
/** @default 0.9, as in the reference operator (which never sent it). */
export const DEFAULT_TEMPERATURE = 0.9;
export const MAX_TEMPERATURE = 2;
/** LLM calls in flight for a whole run. @default 16 */
export const DEFAULT_CONCURRENCY = 16;
/** Keeps every workflow far below Temporal's 2,000 pending activities per workflow. */
export const MAX_CONCURRENCY = 1_000;

export const DEFAULT_TASK_QUEUE = 'consistent-chat';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

/** Workflow type names, as used with `temporal workflow start --type`. */
export const WORKFLOW_TYPES = {
  run: 'consistentChatRun',
  intent: 'consistentChatIntent',
  /** `generate --retry-failed`: a finished run's failed dialogues, once each. */
  retry: 'consistentChatRetry',
  /** `judge DIR`: a finished run's stored dialogues without a verdict, once each. */
  judgeRecords: 'consistentChatJudgeRecords',
  /** An intent of a `--batch` run: its calls through the provider's batch API. */
  batchIntent: 'consistentChatBatchIntent',
} as const;

export const RESPONSE_FORMAT_MODES = ['auto', 'json_schema', 'json_object', 'text'] as const;

/** Retry policy of the LLM activities. Temporal owns retries; the OpenAI client never retries. */
export const DEFAULT_LLM_RETRY = {
  maximumAttempts: 6,
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
} as const;

/** Timeouts of the LLM activities. The heartbeat timeout catches a dead worker; the idle timeout a hung connection. */
export const DEFAULT_LLM_TIMEOUTS = {
  startToCloseMs: 5 * 60_000,
  heartbeatMs: 30_000,
  /** No byte from the endpoint for this long (including before the first token) means a hung call. */
  idleMs: 90_000,
} as const;

/**
 * When a workflow run continues as new. Well under Temporal's hard limits (51,200 events / 50 MB) and
 * under the project's own bound of 10,000 events and 10 MB per history.
 */
export const HISTORY_BUDGET = {
  maxEvents: 8_000,
  maxBytes: 8 * 1024 * 1024,
} as const;

/** Output files inside a run's directory. */
export const OUTPUT_FILES = {
  dialogues: 'dialogs.jsonl',
  failures: 'failures.jsonl',
  /** The leaves of a run's topic expansion, each with its path (issue 22). */
  topics: 'topics.jsonl',
  /**
   * `consistent-chat judge DIR`'s verdicts while it runs, `{"id", "line", "judge"}` in the order of
   * dialogs.jsonl; merged into dialogs.jsonl and removed when it finishes.
   */
  judgments: 'judgments.jsonl',
  run: 'run.json',
} as const;

// Worker settings (src/worker.ts), here so that the CLI's help names them without loading the SDK's worker.
/** LLM activities one worker runs at once; the run's own bound is usually lower. @default 500 */
export const DEFAULT_MAX_CONCURRENT_LLM_CALLS = 500;
/**
 * Workflows a worker keeps in memory between their tasks (one evicted is replayed from its history
 * at its next task). A run has ten open at a time: the run and its nine intents. @default 100
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 100;
/** At most this long between two heartbeats of an activity, so cancellation reaches it within seconds. */
export const HEARTBEAT_THROTTLE_MS = 5_000;
/** How long a stopping worker lets LLM calls in flight finish. @default 30 seconds */
export const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;

/** The version of the run's `progress` query shape and of `status --json` (src/run/status.ts). */
export const STATUS_SCHEMA_VERSION = 1 as const;
