import {
  checkSubtopics,
  expansionMessages,
  type ExpansionRequest,
  screenSubtopics,
  TOPICS_SCHEMA_NAME,
  topicsJsonSchema,
  topicsReplySchema,
} from '../method/expansion';
import type { AttemptUsage, LlmCallSettings, Usage } from '../run/schemas';
import { completeJson, type LlmDeps } from './llm-call';

export interface ExpandTopicInput extends ExpansionRequest {
  llm: LlmCallSettings;
}

export interface ExpandTopicResult {
  /** The subtopics that passed the reply's checks, in the reply's order; not yet deduplicated. */
  subtopics: string[];
  /** Subtopics dropped by the checks (restating the parent, another language). */
  dropped: number;
  usage: Usage;
  failedAttempts: AttemptUsage;
}

/** The `topics` stage: one parent topic into narrower ones, through the same call as the dialogues' stages. */
export function createExpandTopic(deps: LlmDeps) {
  return async function expandTopic(input: ExpandTopicInput): Promise<ExpandTopicResult> {
    const { value, usage, failedAttempts } = await completeJson(deps, {
      stage: 'topics',
      settings: input.llm,
      messages: expansionMessages(input),
      schemaName: TOPICS_SCHEMA_NAME,
      jsonSchema: topicsJsonSchema(input.count),
      schema: topicsReplySchema(input.count),
      check: checkSubtopics(input.path, input.count),
    });
    const { kept } = screenSubtopics(input.path, value.subtopics);
    return { subtopics: kept, dropped: value.subtopics.length - kept.length, usage, failedAttempts };
  };
}
