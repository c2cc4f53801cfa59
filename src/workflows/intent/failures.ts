/** What a failed LLM activity tells the books: its failure type and reason, and the attempts it paid. */
import { type ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { type AttemptUsage, attemptUsageSchema } from '../../run/schemas';

/** The failure's type (`Llm.RateLimit`, …) and message, from the activity's cause. */
export function failureOf(error: ActivityFailure): { type: string; reason: string } {
  const cause = error.cause;
  const type = cause instanceof ApplicationFailure ? (cause.type ?? 'Error') : (cause?.name ?? 'Error');
  return { type, reason: cause?.message ?? error.message };
}

/** The failed attempts a final activity failure carries (its details, or a timeout's last heartbeat). */
export function paidByFailure(error: ActivityFailure): AttemptUsage | undefined {
  const cause = error.cause;
  if (cause instanceof TimeoutFailure) {
    const before = attemptUsageSchema.safeParse(cause.lastHeartbeatDetails);
    const earlier = before.success ? before.data : { calls: 0, promptTokens: 0, completionTokens: 0 };
    return { ...earlier, calls: earlier.calls + 1 };
  }
  const parsed = attemptUsageSchema.safeParse(
    cause instanceof ApplicationFailure ? cause.details?.[0] : undefined,
  );
  return parsed.success ? parsed.data : undefined;
}
