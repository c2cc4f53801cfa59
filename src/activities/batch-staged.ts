/**
 * Reads one dialogue's staged skeleton: past the deadline of a hybrid run, its responses call goes in
 * real time and needs it in its input (a real-time call's payload, as in real-time runs).
 */
import type { StagedSkeletonInput } from '../run/batch';
import type { Skeleton } from '../run/schemas';
import { withStaging } from './batch-staging';
import type { BatchDeps } from './batch-submit';
import { toBatchFailure } from './errors';

export function createStagedSkeleton(deps: BatchDeps) {
  return async function stagedSkeleton(input: StagedSkeletonInput): Promise<Skeleton | null> {
    try {
      return await withStaging(deps.root, input.outDir, input.intent, async (staging) => {
        return (await staging.replies<Skeleton>('skeleton')).get(input.index) ?? null;
      });
    } catch (error) {
      throw toBatchFailure(error);
    }
  };
}
