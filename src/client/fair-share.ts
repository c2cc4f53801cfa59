/**
 * A run's place among the runs sharing one task queue: Temporal's task priority and fairness key,
 * set on the run workflow when it starts. The server hands them down to the run's intent workflows and
 * their activities (children and activities without their own take their workflow's), so no workflow
 * code changes and no history needs a patch. Activities started eagerly on a worker skip the queue and
 * its order: `worker --queued-activities`, and `generate` with a share on a named cluster, turn that
 * off (QUEUED_ACTIVITIES, src/worker.ts). What the server does with them depends on its matcher
 * settings (README "Fair sharing").
 */
import type { Priority } from '@temporalio/common';
import { z } from 'zod';
import { ConfigError } from '../shared/errors';

/** Temporal's default priority when none is set. @default 3 */
export const DEFAULT_PRIORITY = 3;

export const fairShareSchema = z.object({
  /** 1 (first) to 5 (last). @default DEFAULT_PRIORITY (the server's default) */
  priority: z.number().int().min(1).max(5).optional(),
  /** Runs with the same key share one fair share. @default the run id */
  fairnessKey: z.string().min(1).max(64).optional(),
  /** This key's share relative to others'. @default 1 */
  fairnessWeight: z.number().min(0.001).max(1000).optional(),
});
export type FairShare = z.infer<typeof fairShareSchema>;

const FLAGS: Record<keyof FairShare, string> = {
  priority: '--priority',
  fairnessKey: '--fairness-key',
  fairnessWeight: '--fairness-weight',
};

/** Checks the flags' values (already numbers where numeric); the error names the flag. */
export function parseFairShare(raw: {
  priority?: number;
  fairnessKey?: string;
  fairnessWeight?: number;
}): FairShare {
  const parsed = fairShareSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path[0] as keyof FairShare;
  throw new ConfigError(FLAGS[field] ?? String(field), issue.message);
}

/** Whether the run asked for a priority, a fairness key or a weight of its own. */
export function asksForShare(share: FairShare | undefined): boolean {
  return share !== undefined && Object.values(share).some((v) => v !== undefined);
}

/** The run workflow's start option: the run's own fairness key unless another is given. */
export function runPriority(share: FairShare | undefined, runId: string): Priority {
  return {
    ...(share?.priority !== undefined && { priorityKey: share.priority }),
    fairnessKey: share?.fairnessKey ?? runId,
    ...(share?.fairnessWeight !== undefined && { fairnessWeight: share.fairnessWeight }),
  };
}
