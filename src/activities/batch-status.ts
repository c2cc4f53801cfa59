/** Looks at a provider batch once: its state and request counts (the workflow's timers do the waiting). */
import type { BatchStatus } from '../run/batch';
import type { BatchDeps } from './batch-submit';
import { toBatchFailure } from './errors';

export function createBatchStatus(deps: BatchDeps) {
  return async function batchStatus(input: { batchId: string }): Promise<BatchStatus> {
    try {
      const batch = await deps.openai.batches.retrieve(input.batchId);
      const first = batch.errors?.data?.[0];
      return {
        id: batch.id,
        status: batch.status,
        counts: batch.request_counts ?? { total: 0, completed: 0, failed: 0 },
        ...(first && {
          error: `line ${first.line ?? '?'}${first.param ? `, field ${first.param}` : ''}: ${first.code ?? 'invalid'}: ${first.message ?? ''}`,
        }),
      };
    } catch (error) {
      throw toBatchFailure(error);
    }
  };
}
