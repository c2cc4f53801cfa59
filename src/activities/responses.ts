import {
  RESPONSES_SCHEMA_NAME,
  checkResponses,
  responsesJsonSchema,
  responsesMessages,
  responsesReplySchema,
} from '../method';
import type { ResponsesInput, ResponsesResult } from '../run/schemas';
import { completeJson, type LlmDeps } from './llm-call';

/** Stage 2: one assistant response per query, written while seeing the whole skeleton. */
export function createGenerateResponses(deps: LlmDeps) {
  return async function generateResponses(input: ResponsesInput): Promise<ResponsesResult> {
    const n = input.skeleton.queries.length;
    const { value, usage, failedAttempts } = await completeJson(deps, {
      stage: 'responses',
      settings: input.llm,
      messages: responsesMessages(input.plan, input.skeleton, input.prompt),
      schemaName: RESPONSES_SCHEMA_NAME,
      jsonSchema: responsesJsonSchema(n),
      schema: responsesReplySchema(n),
      check: (value) => checkResponses(input.skeleton.queries, value.responses),
    });
    return { responses: value.responses, usage, failedAttempts };
  };
}
