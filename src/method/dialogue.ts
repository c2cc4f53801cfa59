import type { DialoguePlan, DialogueRecord, Skeleton } from '../shared/schemas';
import { INFO_FLOWS, INTENTS } from './intents';

/** Interleaves the skeleton's queries with the responses into the seed's output record. */
export function toDialogueRecord(args: {
  plan: DialoguePlan;
  skeleton: Skeleton;
  responses: readonly string[];
  model: string;
}): DialogueRecord {
  const { plan, skeleton, responses, model } = args;
  if (responses.length !== skeleton.queries.length) {
    throw new Error(`${skeleton.queries.length} queries but ${responses.length} responses for ${plan.id}`);
  }
  return {
    id: plan.id,
    category: skeleton.category,
    conversation: skeleton.queries.flatMap((query, i) => [
      { role: 'user' as const, value: query },
      { role: 'assistant' as const, value: responses[i]! },
    ]),
    intent: INTENTS[plan.intent].name,
    info_flow: INFO_FLOWS[plan.infoFlow].name,
    topic: plan.topic,
    model,
  };
}
