/** Cancels a provider batch: it ends as `cancelled` with what it finished in its output file. */
import type { BatchDeps } from './batch-submit';
import { toBatchFailure } from './errors';

const ENDED = new Set(['completed', 'failed', 'expired', 'cancelled', 'cancelling']);

export function createCancelBatch(deps: BatchDeps) {
  return async function cancelBatch(input: { batchId: string }): Promise<{ status: string }> {
    try {
      const batch = await deps.openai.batches.retrieve(input.batchId);
      if (ENDED.has(batch.status)) return { status: batch.status };
      return { status: (await deps.openai.batches.cancel(input.batchId)).status };
    } catch (error) {
      throw toBatchFailure(error);
    }
  };
}
