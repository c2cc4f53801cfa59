import {
  JUDGE_SCHEMA_NAME,
  judgeJsonSchema,
  judgeMessages,
  judgeReplySchema,
  toJudgeVerdict,
} from '../method';
import type { JudgeInput, JudgeResult } from '../run/schemas';
import { completeJson, type LlmDeps } from './llm-call';

/**
 * Stage 3 (optional): the judge scores the finished dialogue's consistency. Its calls go to the judge's
 * endpoint when the worker has one (`deps`, built from `CONSISTENT_CHAT_JUDGE_*`), else to the run's.
 */
export function createJudgeDialogue(deps: LlmDeps) {
  return async function judgeDialogue(input: JudgeInput): Promise<JudgeResult> {
    const n = input.responses.length;
    const { value, usage, failedAttempts } = await completeJson(deps, {
      stage: 'judge',
      settings: input.llm,
      messages: judgeMessages(input.context, input.skeleton, input.responses),
      schemaName: JUDGE_SCHEMA_NAME,
      jsonSchema: judgeJsonSchema(n),
      schema: judgeReplySchema(n),
    });
    return { verdict: toJudgeVerdict(value, input.llm.model), usage, failedAttempts };
  };
}
