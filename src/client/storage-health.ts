/**
 * Storage that is not getting through, seen from the client: a storage activity retrying (permission
 * denied, a directory locked by another process) or waiting with no worker on its task queue. Storage
 * retries without end on purpose (its worker may come back), so without this a run would look merely
 * slow while LLM calls are paid; `status` and the progress view print what this finds.
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';

/** Enum values of the Temporal API (temporal.api.enums.v1), without a dependency on its proto package. */
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;
const PENDING_ACTIVITY_STATE_SCHEDULED = 1;
type PendingActivity = NonNullable<WorkflowExecutionDescription['raw']['pendingActivities']>[number];

// A run's first step asks storage for its directory: stuck there, no intent has started yet.
const STORAGE_ACTIVITIES = new Set(['checkOutputDirectory', 'storeDialogues', 'storeFailures']);
/** A storage activity waiting this long for a worker (one never started) is reported. @default 60 s */
export const STORAGE_STUCK_AFTER_MS = 60_000;

export interface StorageIssue {
  workflowId: string;
  activity: string;
  /** The storage task queue, when the server reports it. */
  taskQueue?: string;
  attempt: number;
  lastFailure?: string;
  /** How long the current attempt has been waiting for a worker, if it was never picked up. */
  waitingMs?: number;
  /** No worker polls the storage task queue right now. */
  noWorker: boolean;
}

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined =>
  t?.seconds == null ? undefined : Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);

/** The storage activities of these workflows that failed at least once or wait for a worker too long. */
export async function readStorageIssues(
  client: Client,
  workflowIds: string[],
  options: { now?: number; stuckAfterMs?: number } = {},
): Promise<StorageIssue[]> {
  const now = options.now ?? Date.now();
  const stuckAfterMs = options.stuckAfterMs ?? STORAGE_STUCK_AFTER_MS;
  const pollers = new Map<string, Promise<boolean>>();
  const hasWorker = (taskQueue: string) => {
    let found = pollers.get(taskQueue);
    if (!found) {
      found = client.workflowService
        .describeTaskQueue({
          namespace: client.options.namespace,
          taskQueue: { name: taskQueue, kind: TASK_QUEUE_KIND_NORMAL },
          taskQueueType: TASK_QUEUE_TYPE_ACTIVITY,
        })
        .then(
          (r) => (r.pollers ?? []).length > 0,
          () => true, // unknown: say nothing rather than something wrong
        );
      pollers.set(taskQueue, found);
    }
    return found;
  };
  const perWorkflow = await Promise.all(
    workflowIds.map(async (workflowId) => {
      let pending: PendingActivity[];
      try {
        pending = (await client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
      } catch {
        return []; // not started yet, or between two runs of a continue-as-new
      }
      const issues: StorageIssue[] = [];
      for (const p of pending) {
        const activity = p.activityType?.name ?? '';
        if (!STORAGE_ACTIVITIES.has(activity)) continue;
        const attempt = p.attempt ?? 1;
        const taskQueue = p.activityOptions?.taskQueue?.name ?? undefined;
        const neverStarted =
          (p.state as number) === PENDING_ACTIVITY_STATE_SCHEDULED && ms(p.lastStartedTime) === undefined;
        const scheduled = ms(p.scheduledTime);
        const waitingMs = neverStarted && scheduled !== undefined ? Math.max(0, now - scheduled) : undefined;
        const noWorker = taskQueue ? !(await hasWorker(taskQueue)) : false;
        if (attempt > 1 || noWorker || (waitingMs ?? 0) >= stuckAfterMs) {
          issues.push({
            workflowId,
            activity,
            taskQueue,
            attempt,
            lastFailure: p.lastFailure?.message ?? undefined,
            waitingMs,
            noWorker,
          });
        }
      }
      return issues;
    }),
  );
  return perWorkflow.flat();
}

/** One line per issue, e.g. `storage stuck: run.transaction storeDialogues attempt 7: EACCES ...`. */
export function formatStorageIssue(issue: StorageIssue): string {
  const parts = [`storage stuck: ${issue.workflowId} ${issue.activity} attempt ${issue.attempt}`];
  if (issue.noWorker) parts.push(`no worker serves its task queue ${issue.taskQueue}`);
  else if (issue.waitingMs !== undefined && issue.attempt === 1)
    parts.push(
      `waiting ${Math.round(issue.waitingMs / 1000)} s for a worker on ${issue.taskQueue ?? 'its task queue'}`,
    );
  if (issue.lastFailure) parts.push(`last failure: ${issue.lastFailure}`);
  return parts.join('; ');
}
