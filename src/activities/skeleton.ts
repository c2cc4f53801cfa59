import {
  SKELETON_SCHEMA_NAME,
  checkSkeleton,
  promptContext,
  skeletonJsonSchema,
  skeletonMessages,
  skeletonReplySchema,
} from '../method';
import type { SkeletonInput, SkeletonResult } from '../run/schemas';
import { completeJson, type LlmDeps } from './llm-call';

/** Stage 1: the user side of one dialogue, exactly `numTurns` queries plus its category label. */
export function createGenerateSkeleton(deps: LlmDeps) {
  return async function generateSkeleton(input: SkeletonInput): Promise<SkeletonResult> {
    const context = input.prompt ?? promptContext('skeleton', input.plan);
    const { value, usage, failedAttempts } = await completeJson(deps, {
      stage: 'skeleton',
      settings: input.llm,
      messages: skeletonMessages(input.plan, input.numTurns, context),
      schemaName: SKELETON_SCHEMA_NAME,
      jsonSchema: skeletonJsonSchema(input.numTurns),
      schema: skeletonReplySchema(input.numTurns),
      check: (skeleton) => checkSkeleton(skeleton, context.infoFlow.steps),
    });
    return { skeleton: value, usage, failedAttempts };
  };
}
