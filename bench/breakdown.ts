/**
 * Where an LLM call's time goes, read from one workflow's history: how long a scheduled activity waits
 * for a worker, how long it runs, and how long the workflow takes to react to its completion (the
 * next workflow task completed after it). Their sum beyond the LLM's own latency is the overhead
 * that keeps a slot empty.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;

interface Timestamp {
  seconds?: { toNumber(): number } | number | null;
  nanos?: number | null;
}
const ms = (t: Timestamp | null | undefined): number => {
  const s = t?.seconds;
  const seconds = typeof s === 'number' ? s : (s?.toNumber() ?? 0);
  return seconds * 1000 + (t?.nanos ?? 0) / 1e6;
};

const median = (xs: number[]): number => {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export interface CallBreakdown {
  activities: number;
  /** Scheduled → started: waiting for a worker's poll (and a free task slot). */
  scheduleToStartMs: { median: number; mean: number };
  /** Started → completed, as the server saw it. */
  runMs: { median: number; mean: number };
  /** Completed → the workflow's next task completed (the moment a follow-up can be scheduled). */
  reactionMs: { median: number; mean: number };
  /** Workflow tasks per activity completion: below 1 when one task handles several completions. */
  workflowTasksPerCompletion: number;
  /** Events of the whole history and storage activities, per LLM call: the orchestration's work. */
  eventsPerCall: number;
  storageActivitiesPerCall: number;
}

export async function callBreakdown(
  client: Client,
  workflowId: string,
  activityTypes: readonly string[],
): Promise<CallBreakdown> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<number, { at: number; type: string }>();
  const started = new Map<number, number>();
  const scheduleToStart: number[] = [];
  const run: number[] = [];
  const reaction: number[] = [];
  const waitingForReaction: number[] = [];
  let workflowTasks = 0;
  let completions = 0;
  let storageActivities = 0;
  for (const e of events) {
    const id = Number(e.eventId);
    const at = ms(e.eventTime);
    switch (e.eventType) {
      case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        if (/^store/.test(e.activityTaskScheduledEventAttributes?.activityType?.name ?? ''))
          storageActivities++;
        scheduled.set(id, { at, type: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '' });
        break;
      case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        started.set(Number(e.activityTaskStartedEventAttributes?.scheduledEventId), at);
        break;
      case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
        const scheduledId = Number(e.activityTaskCompletedEventAttributes?.scheduledEventId);
        const s = scheduled.get(scheduledId);
        const st = started.get(scheduledId);
        if (!s || st === undefined || !activityTypes.includes(s.type)) break;
        completions++;
        scheduleToStart.push(st - s.at);
        run.push(at - st);
        waitingForReaction.push(at);
        break;
      }
      case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        if (waitingForReaction.length > 0) workflowTasks++;
        for (const t of waitingForReaction.splice(0)) reaction.push(at - t);
        break;
    }
  }
  const stat = (xs: number[]) => ({ median: Math.round(median(xs)), mean: Math.round(mean(xs)) });
  return {
    activities: completions,
    scheduleToStartMs: stat(scheduleToStart),
    runMs: stat(run),
    reactionMs: stat(reaction),
    workflowTasksPerCompletion: completions ? Math.round((workflowTasks / completions) * 100) / 100 : 0,
    eventsPerCall: completions ? Math.round((events.length / completions) * 100) / 100 : 0,
    storageActivitiesPerCall: completions ? Math.round((storageActivities / completions) * 100) / 100 : 0,
  };
}

/** Every event of a workflow with its offset from `sinceMs` (epoch ms): where the start and end of a run go. */
export async function timeline(
  client: Client,
  workflowId: string,
  sinceMs: number,
): Promise<{ offsetMs: number; type: string; detail?: string }[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).map((e) => ({
    offsetMs: Math.round(ms(e.eventTime as Timestamp) - sinceMs),
    type: (EventType[e.eventType ?? 0] ?? String(e.eventType)).replace('EVENT_TYPE_', ''),
    detail: e.activityTaskScheduledEventAttributes?.activityType?.name ?? undefined,
  }));
}
